//! What the mount table counts and shows, for `/stat` and `/metrics`.
//! Mount options are never part of it.
//!
//! | name | kind | meaning |
//! | --- | --- | --- |
//! | `active` | gauge | mounts in place now (in use or idle in the cache) |
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

/// One instance's mount in `/stat`: source and type, never the options.
#[derive(Debug, Clone, Serialize)]
pub struct MountRow {
    pub instance: String,
    /// `nfs_mnt_src`.
    pub source: String,
    /// `nfs_type`.
    #[serde(rename = "type")]
    pub fs_type: String,
    pub target: PathBuf,
    /// `mounting`, `mounted`, `remounting`, `unmounting` or `failed`.
    pub state: &'static str,
    /// Jobs holding it now.
    pub users: usize,
    /// Jobs waiting for its mount (or remount, or unmount) to end.
    pub waiting: usize,
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
