//! Whether the worker's children get cgroups (`CHILD_CGROUP`), decided
//! once at start and said once in the log.

use super::limits::{CgroupMode, ChildLimits};
use crate::worker::cgroup::error::CgroupError;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::root_guard::WorkerRoot;
use crate::worker::root_lock::RootLock;
use std::sync::Arc;

/// The home of the children's cgroups, after ending what a previous worker
/// on this root left; `None` where children get resource limits instead.
/// An error only with `CHILD_CGROUP=required`.
pub fn child_cgroups(
    limits: &ChildLimits,
    root: &WorkerRoot,
    lock: &RootLock,
) -> Result<Option<Arc<CgroupHome>>, CgroupError> {
    if limits.cgroup == CgroupMode::Off {
        tracing::warn!("CHILD_CGROUP=off: children's memory is capped by RLIMIT_AS only (CHILD_MEMORY_LIMIT), with no process limit and no CPU weight; their descendants are found by their marker");
        return Ok(None);
    }
    match CgroupHome::open(root, lock, limits.cgroup_limits()) {
        Ok((home, swept)) => {
            tracing::info!(cgroups = %home.describe(), "each child runs in a cgroup of its own");
            if swept.cgroups > 0 {
                tracing::warn!(
                    cgroups = swept.cgroups,
                    processes = swept.processes,
                    "ended the children a previous worker on this root left, and removed their cgroups"
                );
            }
            Ok(Some(Arc::new(home)))
        }
        Err(e) if limits.cgroup == CgroupMode::Auto => {
            tracing::warn!(error = &e as &dyn std::error::Error, "no cgroup for children: their memory is capped by RLIMIT_AS only (CHILD_MEMORY_LIMIT), with no process limit and no CPU weight; their descendants are found by their marker");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
