//! What can go wrong with the children's cgroups.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("failed to read {what} of this process: {source}")]
    Proc {
        what: &'static str,
        #[source]
        source: procfs::ProcError,
    },
    #[error("no cgroup hierarchy the worker can use: {0}")]
    Unavailable(Unavailable),
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the processes of cgroup {path} did not all end within {waited_ms} ms")]
    Unkillable { path: PathBuf, waited_ms: u64 },
}

/// Why no cgroup hierarchy fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Neither a cgroup v2 hierarchy offering `memory` and `pids` to the
    /// worker's cgroup nor the v1 controllers `memory`, `pids`, `freezer`.
    NoControllers { missing_v1: Vec<&'static str> },
    /// The v2 hierarchy has the controllers, but the worker's cgroup holds
    /// other processes, so it cannot hand them to children.
    NotDelegated { cgroup: PathBuf, others: usize },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoControllers { missing_v1 } => write!(
                f,
                "no cgroup v2 hierarchy offers memory and pids to the worker's cgroup, and cgroup v1 lacks {}",
                missing_v1.join(", ")
            ),
            Unavailable::NotDelegated { cgroup, others } => write!(
                f,
                "the worker's cgroup v2 {} holds {others} other processes, so it cannot enable controllers for children (give the worker a delegated cgroup of its own, e.g. systemd Delegate=yes)",
                cgroup.display()
            ),
        }
    }
}

impl CgroupError {
    pub(super) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| CgroupError::Io {
            action,
            path,
            source,
        }
    }
}
