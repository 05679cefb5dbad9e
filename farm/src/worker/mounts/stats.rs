//! What the mount table counts, for `/stat` (and later `/metrics`).
//!
//! | name | kind | meaning |
//! | --- | --- | --- |
//! | `active` | gauge | mounts held now (in use or idle in the cache) |
//! | `mounted` | counter | successful mounts, remounts included |
//! | `unmounted` | counter | successful unmounts (eviction, remount, shutdown) |
//! | `failed` | counter | mounts and unmounts that failed |
//! | `remounted` | counter | remounts after a stale file handle |

use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Serialize)]
pub struct MountCounters {
    pub mounted: u64,
    pub unmounted: u64,
    pub failed: u64,
    pub remounted: u64,
}

/// One mount in `/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct MountRow {
    pub instance: String,
    pub source: String,
    pub target: PathBuf,
    /// Jobs holding it now.
    pub users: usize,
    /// Remounts so far.
    pub generation: u64,
}

/// `/stat?html=0`'s `mounts`.
#[derive(Debug, Clone, Serialize)]
pub struct MountsSnapshot {
    /// `NFS_MOUNT_CACHE`.
    pub capacity: usize,
    pub active: usize,
    #[serde(flatten)]
    pub counters: MountCounters,
    pub mounts: Vec<MountRow>,
}
