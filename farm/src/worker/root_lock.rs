//! One live worker per `WORKER_DB_ROOT`.
//!
//! A worker holds an exclusive `flock` on its root's marker file for as
//! long as it runs; the kernel releases it when the worker dies, however
//! it dies. So a worker that gets the lock knows that whatever a previous
//! worker left under this root (attempt directories, children's cgroups
//! and their processes) belongs to nobody alive and may be ended, and two
//! workers never share a root (they would remove each other's attempts).

use crate::worker::beneath::{self, Crossing};
use crate::worker::root_guard::{WorkerRoot, ROOT_MARKER};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RootLockError {
    #[error("WORKER_DB_ROOT={path} is in use by another running worker (its {ROOT_MARKER} is locked): two workers on one root would remove each other's attempts and children")]
    Held { path: PathBuf },
    #[error("WORKER_DB_ROOT={path}: failed to lock its {ROOT_MARKER}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The lock; released when dropped or when the process ends.
#[derive(Debug)]
pub struct RootLock {
    _held: Flock<File>,
}

/// How long a starting worker waits for a predecessor that is still
/// dying (a restart right after a kill) to release the lock.
pub const CLAIM_WAIT: Duration = Duration::from_secs(5);

impl RootLock {
    /// Takes the root's lock, waiting up to `wait` for a holder to go
    /// away; or says that a live worker holds it.
    pub fn claim(root: &WorkerRoot, wait: Duration) -> Result<RootLock, RootLockError> {
        let io_error = |source| RootLockError::Io {
            path: root.path().to_owned(),
            source,
        };
        let mut marker =
            beneath::open_file(root.fd(), Path::new(ROOT_MARKER), Crossing::SameFilesystem)
                .map_err(io_error)?;
        let until = Instant::now() + wait;
        loop {
            match Flock::lock(marker, FlockArg::LockExclusiveNonblock) {
                Ok(held) => return Ok(RootLock { _held: held }),
                Err((file, Errno::EWOULDBLOCK)) if Instant::now() < until => {
                    marker = file;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(RootLockError::Held {
                        path: root.path().to_owned(),
                    })
                }
                Err((_, e)) => return Err(io_error(io::Error::from(e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root");
        let root = WorkerRoot::open(&path).unwrap();
        let first = RootLock::claim(&root, Duration::ZERO).unwrap();
        let again = WorkerRoot::open(&path).unwrap();
        let e = RootLock::claim(&again, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, RootLockError::Held { .. }), "{e}");
        assert!(e.to_string().contains("another running worker"), "{e}");
        // A holder that goes away while the claim waits.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(first);
        });
        RootLock::claim(&again, Duration::from_secs(10)).unwrap();
        release.join().unwrap();
    }
}
