//! Durable atomic writes: a reader sees a file's old content or its new
//! content, never a part, and after a power loss the file is not empty.
//!
//! [`write_atomic`] writes a temporary file beside the target (named with
//! the process id and a counter, so two writers never share one), syncs
//! it (`sync_all`), renames it over the target, and syncs the folder, so
//! that the rename itself is on disk. A rename without the first sync can
//! leave an empty file after a crash on ext4 and XFS; without the second,
//! the old file. Temporary files of writers that died before their rename
//! are removed by the next write into the folder ([`remove_dead_temps`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How [`replace_with`] failed: the caller's writer, or the file system.
/// Both name the path: the temporary file the writer wrote, or the one
/// that could not be synced or renamed.
#[derive(Debug)]
pub enum ReplaceError<E> {
    Write(PathBuf, E),
    Io(PathBuf, std::io::Error),
}

/// The temporary file a writer of `path` writes first, beside it:
/// `.NAME.tmp-PID-N.EXT`, hidden (so globbing `*.png` skips it), unique
/// within the process (the counter) and across processes (the pid), and
/// ending in the target's extension, since some writers (the image
/// encoder) pick the format from it.
pub fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}{ext}", std::process::id()))
}

/// Replaces `path` durably and atomically with what `write` writes into
/// the temporary path it is given (see the module): every file gradscope
/// writes whole goes through here, so that a reader, a crash or Ctrl-C
/// never sees a part of one. On any error the temporary file is removed.
pub fn replace_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), ReplaceError<E>> {
    // A writer killed between its write and its rename (SIGKILL, Ctrl-C in
    // a command without a handler) left its temporary file: the next write
    // into the folder removes it.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        remove_dead_temps(dir);
    }
    let tmp = temp_beside(path);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReplaceError::Write(tmp, e));
    }
    if let Err(e) = std::fs::File::open(&tmp).and_then(|f| f.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReplaceError::Io(tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ReplaceError::Io(path.to_path_buf(), e));
    }
    sync_dir(path);
    Ok(())
}

/// Writes `bytes` to `path` durably and atomically ([`replace_with`]). The
/// error says which path failed: the temporary file or the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
    replace_with(path, |tmp| std::fs::write(tmp, bytes)).map_err(|e| match e {
        ReplaceError::Write(p, e) | ReplaceError::Io(p, e) => (p, e),
    })
}

/// Moves the file or folder `from` to `to` (on one file system: a rename)
/// and syncs the folder, so that the move is on disk: the one rename of
/// the code base outside [`replace_with`] (run folders are published from
/// `RUN.partial/` and set aside as `RUN.old/` this way).
pub fn move_to(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(to);
    Ok(())
}

/// The process id in the name of a writer's temporary file:
/// `.NAME.tmp-PID-N.EXT` ([`temp_beside`]), and the names older versions
/// wrote, `.NAME.tmp-PID` and `.NAME.PID-N.tmp.EXT`. `None` for any other
/// name.
pub fn temp_writer(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    if let Some((_, after)) = rest.rsplit_once(".tmp-") {
        return after.split('-').next()?.parse().ok();
    }
    let (before, _ext) = rest.rsplit_once(".tmp.")?;
    let (_, pid_n) = before.rsplit_once('.')?;
    pid_n.split_once('-')?.0.parse().ok()
}

/// How long a temporary file must have been left untouched before
/// [`remove_dead_temps`] takes its writer for dead.
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the temporary files (see [`temp_writer`]) in `dir` of writers
/// that no longer run: a process killed mid-write (SIGKILL, a power loss,
/// Ctrl-C between two charts) leaves its file, and the next writer into
/// the folder cleans it, so that nothing piles up (a checkpoint's is the
/// size of the network). A pid that runs here now, this process's
/// included, is left alone: it may be writing. So is a file written to in
/// the last [`STALE_TEMP`]: on a shared file system its pid may be a live
/// process of another host. Best effort; returns what was removed.
pub fn remove_dead_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer) else {
            continue;
        };
        let alive = pid == std::process::id() || process_alive(pid);
        let plain = entry.file_type().is_ok_and(|t| t.is_file());
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= STALE_TEMP));
        if !alive && plain && stale && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Whether process `pid` runs on this machine. Linux answers from
/// `/proc`; another Unix (macOS, the BSDs) from `kill -0`, which succeeds
/// for a process of the same user; elsewhere the answer is yes, so that
/// nothing is taken from a writer that may be alive (a lock stays held, a
/// temporary file stays until someone removes it).
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else if cfg!(unix) {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .map_or(true, |s| s.success())
    } else {
        true
    }
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

    #[test]
    fn temporary_files_of_dead_writers_are_removed_and_nothing_else() {
        assert_eq!(temp_writer(".checkpoint.pt.tmp-4242"), Some(4242));
        assert_eq!(temp_writer(".run.json.tmp-4242-3"), Some(4242));
        assert_eq!(temp_writer(".loss.png.tmp-4242-3.png"), Some(4242));
        let ours = temp_beside(Path::new("plots/loss.png"));
        let name = ours.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_writer(name), Some(std::process::id()));
        assert!(name.starts_with(".loss.png.tmp-") && name.ends_with(".png"));
        assert_eq!(
            temp_writer(".train_error_vs_step.4242-0.tmp.png"),
            Some(4242)
        );
        assert_eq!(temp_writer("metrics.csv"), None);
        assert_eq!(temp_writer("checkpoint.pt"), None);
        let dir = tempfile_dir("gs-temps");
        // No process has pid u32::MAX - 1 (Linux's pid_max is at most 2^22).
        let dead = u32::MAX - 1;
        let ours = std::process::id();
        let names = [
            format!(".checkpoint.pt.tmp-{dead}"),
            format!(".loss.{dead}-0.tmp.png"),
            format!(".checkpoint.pt.tmp-{ours}-0"),
            "metrics.csv".to_owned(),
        ];
        for n in &names {
            std::fs::write(dir.join(n), "x").unwrap();
        }
        // Just written: the writer may be alive on another host.
        assert!(remove_dead_temps(&dir).is_empty());
        for n in &names {
            age(&dir.join(n));
        }
        let removed = remove_dead_temps(&dir);
        assert_eq!(removed.len(), 2, "{removed:?}");
        for n in &names[2..] {
            assert!(dir.join(n).exists(), "{n} was removed");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Makes `file` look untouched for longer than [`STALE_TEMP`].
    fn age(file: &Path) {
        let then = std::time::SystemTime::now() - 2 * STALE_TEMP;
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        f.set_modified(then).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
