//! The exclusive run lock of a checkpoint directory: `flock(LOCK_EX | LOCK_NB)` on
//! `<dir>/.lock`. The kernel releases it when the file is closed or the process dies, so a
//! crashed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
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
        // SAFETY: `file` is an open file descriptor owned by this function for the whole call;
        // flock does not retain the pointer-free fd argument beyond the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::checkpoint(
                    dir,
                    "another query run is active on this checkpoint (its lock file .lock is held); \
                     stop that query first, or use a different checkpoint location",
                ));
            }
            return Err(Error::io(&path, err));
        }
        Ok(DirLock {
            _file: file,
            _path: path,
        })
    }
}
