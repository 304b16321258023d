//! The exclusive run lock of a checkpoint directory: a non-blocking exclusive file lock
//! (`File::try_lock`, `flock` on Linux) on `<dir>/.lock`. The kernel releases it when the file is
//! closed or the process dies, so a crashed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    _path: PathBuf,
}

impl DirLock {
    /// Locks `dir`, failing at once if another open checkpoint (in this or another process)
    /// holds the lock.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::checkpoint(
                    dir,
                    "another query run is active on this checkpoint (its lock file .lock is held); \
                     stop that query first, or use a different checkpoint location",
                ));
            }
            Err(TryLockError::Error(err)) => return Err(Error::io(&path, err)),
        }
        Ok(DirLock {
            _file: file,
            _path: path,
        })
    }
}
