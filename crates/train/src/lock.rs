//! One writer per results directory: `OUT/.gradscope.lock`.
//!
//! [`ResultsLock::acquire`] takes an advisory lock (`flock`, through std's
//! `File::try_lock`) on that file and writes into it who holds it
//! ([`Holder`]: pid, host, start time, command), so that a second
//! `gradscope run` on the same directory can refuse with a message naming the
//! holder.
//!
//! Why `flock` rather than "create the file with `create_new` and check the
//! pid in it": the kernel drops the lock when its process dies, however it
//! dies (SIGKILL included), so a lock file left behind by a dead process is
//! recognised as stale without guessing from a pid, which the system may
//! already have given to another process. Taking the lock is race-free: two
//! processes may both open (or create) the file, but only one `try_lock`
//! succeeds. The holder removes the file before it unlocks; a process that
//! opened the old file in between finds, after locking it, that the path no
//! longer leads to the file it locked, and starts over.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use gradscope_format::files::LOCK_FILE;

/// Who holds (or held) a results directory: the content of the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// UTC, `2026-11-27T13:20:05Z`.
    pub started: String,
    pub command: String,
}

impl Holder {
    /// This process, running `command`.
    pub fn current(command: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            started: utc_now(),
            command: command.to_string(),
        }
    }
}

/// Who holds `dir`'s lock, read without taking it (`gradscope report
/// --watch` must never block the writer): `None` when there is no lock file
/// or it does not parse, or its holder is a process of this host that no
/// longer runs (a sweep killed with SIGKILL leaves its file behind). A
/// holder on another host is taken to be alive: its pid means nothing here.
pub fn live_holder(dir: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    let holder: Holder = serde_json::from_str(text.trim()).ok()?;
    let here = holder.host == host_name();
    (!here || gradscope_format::durable::process_alive(holder.pid)).then_some(holder)
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {}, started {}, command `{}`",
            self.pid, self.host, self.started, self.command
        )
    }
}

/// The lock on a results directory, held until dropped (which removes the
/// lock file, then unlocks).
#[derive(Debug)]
pub struct ResultsLock {
    path: PathBuf,
    file: Option<File>,
}

impl ResultsLock {
    /// Takes the lock of `dir` (which must exist) for `holder`.
    ///
    /// Returns the lock and, when the file was there from a process that
    /// died without removing it, who that was (the caller may say so).
    /// Fails with [`TrainError::Locked`] while another process holds it.
    pub fn acquire(
        dir: &Path,
        holder: &Holder,
    ) -> Result<(ResultsLock, Option<Holder>), TrainError> {
        let path = dir.join(LOCK_FILE);
        let io = |e| TrainError::Io {
            path: path.clone(),
            source: e,
        };
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(TrainError::Locked {
                        path: path.clone(),
                        holder: read_holder_of_live_lock(&path),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            // The previous holder may have removed the file between our open
            // and our lock: then we locked a file nobody else can see.
            let locked = file.metadata().map_err(io)?;
            match std::fs::metadata(&path) {
                Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {}
                _ => continue,
            }
            let mut old = String::new();
            // Unreadable old content only loses the "stale lock" note.
            let stale = file
                .read_to_string(&mut old)
                .ok()
                .and_then(|_| serde_json::from_str::<Holder>(&old).ok());
            let text = serde_json::to_string(holder).expect("a Holder serializes");
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(format!("{text}\n").as_bytes()).map_err(io)?;
            file.sync_data().map_err(io)?;
            return Ok((
                ResultsLock {
                    path,
                    file: Some(file),
                },
                stale,
            ));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ResultsLock {
    fn drop(&mut self) {
        // Remove first, then unlock (by closing): see the module comment.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// What a live lock file says about its holder. The holder writes it just
/// after locking, so an empty file may be one being written: read again for
/// up to a second before giving up.
fn read_holder_of_live_lock(path: &Path) -> Option<Holder> {
    for _ in 0..20 {
        if let Some(h) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            return Some(h);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// This machine's name (Linux), for the lock message; `unknown` elsewhere.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The current time in UTC as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_from_unix(secs)
}

/// Formats seconds since 1970 as UTC (H. Hinnant's civil-from-days).
fn utc_from_unix(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants (checked with `date -u -d @SECS`).
    #[test]
    fn utc_formatting() {
        assert_eq!(utc_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_from_unix(1_798_373_999), "2026-12-27T12:19:59Z");
    }

    /// Within one process a second `flock` on a new open file description
    /// conflicts too, so two acquisitions model two processes.
    #[test]
    fn second_acquire_is_refused_naming_the_holder_then_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let me = Holder::current("gradscope run a.json");
        let (lock, stale) = ResultsLock::acquire(dir.path(), &me).unwrap();
        assert_eq!(stale, None);
        let err = ResultsLock::acquire(dir.path(), &Holder::current("second")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("pid {}", me.pid)), "{text}");
        assert!(text.contains("gradscope run a.json"), "{text}");
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists(), "removed on drop");
        let (_again, stale) = ResultsLock::acquire(dir.path(), &me).unwrap();
        assert_eq!(stale, None);
    }

    /// A lock file nobody holds (its writer was killed) is taken over and
    /// reported.
    #[test]
    fn stale_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = Holder {
            pid: 999_999_999,
            host: "h".into(),
            started: "2000-01-01T00:00:00Z".into(),
            command: "gradscope run old.json".into(),
        };
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_string(&dead).unwrap(),
        )
        .unwrap();
        let me = Holder::current("now");
        let (_lock, stale) = ResultsLock::acquire(dir.path(), &me).unwrap();
        assert_eq!(stale, Some(dead));
        let on_disk: Holder =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap())
                .unwrap();
        assert_eq!(on_disk, me);
    }
}
