//! `NFS_DYNAMIC_MOUNT`: the worker mounts each hoster instance's shared
//! storage itself, on `${NFS_MOUNT_ROOT}/${instance_name}`, from the job's
//! `nfs_type`, `nfs_mnt_src` and `nfs_mnt_opt`.
//!
//! Lifecycle of a mount:
//! - **Admission** takes a [`table::MountLease`] before it maps any path:
//!   the first job of an instance mounts, later ones share the mount. Path
//!   mapping, the space guard and the OPTIONS file are then read through
//!   the mount. A mount that fails refuses the job (412, the mount error).
//! - The lease travels with the prepared job: queued, running, and in
//!   MULTI_PROCESS through the child's life (the child is forked by this
//!   worker, in the same mount namespace, after the mount exists). It ends
//!   when the attempt ends, or when a queued attempt is cancelled.
//! - **Eviction**: at most `NFS_MOUNT_CACHE` mounts are kept; the least
//!   recently used idle one is unmounted first. A mount with a lease is
//!   never unmounted.
//! - **Stale handle**: an attempt that fails with `ESTALE` remounts its
//!   instance (once for all jobs that met the same stale mount) and runs
//!   once more; a second stale handle fails the attempt, and the hoster
//!   compacts locally. Admission that meets `ESTALE` reading the DB
//!   remounts and looks once more too. A remount goes on top of the stale
//!   mount, so the mount point is never bare while jobs use it; the stale
//!   layers go when the mount is unmounted.
//! - **Shutdown**: after the last attempt has ended, every mount is
//!   unmounted.
//!
//! Parts: [`spec`] (what a job asks for, checked), [`mounter`] (the
//! helper or `mount` command and `umount2`), [`table`] (leases, LRU),
//! [`mountinfo`] (what is mounted), [`stale`] (recognising `ESTALE`),
//! [`stats`] (counters), `sys` (the system calls).

pub mod mounter;
pub mod mountinfo;
pub mod spec;
pub mod stale;
pub mod stats;
mod sys;
pub mod table;
