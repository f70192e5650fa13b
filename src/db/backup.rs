//! `qip-pool backup`: a consistent online copy of the SQLite database through SQLite's backup API, taken while
//! the server keeps running; PostgreSQL is backed up with its own tools (docs/OPERATIONS.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a finished backup copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub source: String,
    pub destination: String,
    pub pages: i32,
    pub bytes: u64,
    pub duration_ms: u128,
    /// `PRAGMA integrity_check` on the copy.
    pub integrity: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose a new file (a backup never overwrites)")]
    DestinationExists(PathBuf),
    #[error("backup failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("backup failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the copy failed its integrity check: {0}")]
    Corrupt(String),
}

/// Copies `source` to `destination` in one step, inside one read transaction of the source: the copy is the
/// database as of one instant, whatever writers do meanwhile (in WAL mode they are not blocked). The copy is
/// written beside the destination and renamed into place only after it passes `integrity_check`, so a
/// failed backup never leaves a file that looks like a good one.
pub fn backup_sqlite(source: &Path, destination: &Path) -> Result<BackupReport, BackupError> {
    if destination.exists() {
        return Err(BackupError::DestinationExists(destination.to_owned()));
    }
    let started = Instant::now();
    let partial = destination.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(Duration::from_secs(10))?;
    let pages = {
        let mut dst = Connection::open(&partial)?;
        let backup = Backup::new(&src, &mut dst)?;
        // -1: every page in one step, so the copy is one snapshot rather than a restartable page walk.
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        backup.progress().pagecount
    };
    let copy = Connection::open(&partial)?;
    let integrity: String = copy.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    drop(copy);
    if integrity != "ok" {
        let _ = std::fs::remove_file(&partial);
        return Err(BackupError::Corrupt(integrity));
    }
    std::fs::rename(&partial, destination)?;
    let bytes = std::fs::metadata(destination)?.len();
    Ok(BackupReport {
        source: source.display().to_string(),
        destination: destination.display().to_string(),
        pages,
        bytes,
        duration_ms: started.elapsed().as_millis(),
        integrity,
    })
}
