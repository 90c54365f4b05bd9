//! Durable atomic writes: a reader sees a file's old content or its new
//! content, never a part, and after a power loss the file is not empty.
//!
//! [`write_atomic`] writes a temporary file beside the target (named with
//! the process id and a counter, so two writers never share one), syncs
//! it (`sync_all`), renames it over the target, and syncs the folder, so
//! that the rename itself is on disk. A rename without the first sync can
//! leave an empty file after a crash on ext4 and XFS; without the second,
//! the old file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` durably and atomically (see the module). On
/// error the temporary file is removed, and the error says which path
/// failed: the temporary file or the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err((path.to_path_buf(), e));
    }
    sync_dir(path);
    Ok(())
}

/// Syncs the folder holding `path`, so that a rename into it is durable.
/// Best effort: some file systems refuse to sync a directory, and the
/// data itself is already on disk.
pub fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("gs-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("run.json");
        write_atomic(&f, b"old").unwrap();
        write_atomic(&f, b"new content").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new content");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // A target in a folder that does not exist: the error names the
        // temporary file, and nothing is left.
        let (at, _) = write_atomic(&dir.join("missing/x.json"), b"x").unwrap_err();
        assert!(
            at.to_string_lossy().contains(".x.json.tmp-"),
            "{}",
            at.display()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
