//! One engine per cache (SPEC §7): an exclusive advisory lock on `<cache>.lock`, held for
//! the engine's lifetime. A second process that would ingest into the same file is refused
//! before it changes anything; readers (`stats`, `export`, …) never take the lock.
//!
//! The OS releases the lock when the process dies, however it dies, so a crashed engine
//! never leaves a stale lock behind; the PID written into the file is only for the message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the cache could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another engine holds it.
    #[error("cache {cache} is in use by process {pid}")]
    InUse {
        /// The cache file.
        cache: PathBuf,
        /// The holder, as it wrote itself into the lock file (`?` when unreadable).
        pid: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock cache {cache} ({lock}): {source}")]
    Io {
        /// The cache file.
        cache: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the cache.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
    path: PathBuf,
}

impl CacheLock {
    /// Takes the engine lock of the cache at `cache`, or says who holds it.
    pub fn acquire(cache: &Path) -> Result<CacheLock, LockError> {
        let mut lock = cache.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let io = |source| LockError::Io {
            cache: cache.to_path_buf(),
            lock: lock.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::InUse {
                    cache: cache.to_path_buf(),
                    pid: if pid.is_empty() {
                        "?".into()
                    } else {
                        pid.into()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(CacheLock {
            _file: file,
            path: lock,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_pid() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache.sqlite");
        let held = CacheLock::acquire(&cache).unwrap();
        let e = CacheLock::acquire(&cache).unwrap_err().to_string();
        assert!(
            e.contains("is in use by process") && e.contains(&std::process::id().to_string()),
            "{e}"
        );
        drop(held);
        CacheLock::acquire(&cache).unwrap();
    }
}
