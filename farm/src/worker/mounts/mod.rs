//! `NFS_DYNAMIC_MOUNT`: the worker mounts each hoster instance's shared
//! storage itself, on `${NFS_MOUNT_ROOT}/${instance_name}`, from the job's
//! `nfs_type`, `nfs_mnt_src` and `nfs_mnt_opt` (ToplingDB's names), within
//! what the worker's configuration allows.
//!
//! The trust boundary is the configuration, never the request:
//! - `MOUNT_ALLOWED_TYPES` (default `nfs,nfs4`): only types whose sources
//!   the worker can check may be listed, and those are NFS: a source is
//!   `host:/absolute/path` (a host name, IPv4 or `[IPv6]`, not loopback).
//!   A local path, `none`/`bind`, a block device, `tmpfs` or `fuse.*` is
//!   refused, at start-up when an operator lists it, with 412 when a job
//!   asks for it.
//! - `MOUNT_ALLOWED_OPTIONS`: an allow-list of option names (default: the
//!   usual NFS client options); `name=value` options are checked by name.
//!   `bind`, `rbind`, `remount`, `move`, propagation changes, `X-*`,
//!   `suid`, `dev`, `exec`, `defaults`, `user(s)`, `owner`, `group`,
//!   `helper`, `uhelper`, loop options and SELinux contexts are never
//!   allowed, even when listed (the worker refuses to start).
//! - `nosuid,nodev,noexec` go after the job's options on every mount.
//! - Mount options never appear in `/stat`, `/metrics`, `job.json`, logs
//!   or error messages: they may hold credentials.
//!
//! Lifecycle of a mount:
//! - **Admission** takes a [`table::MountLease`] before it maps any path:
//!   the first job of an instance mounts, later ones share the mount (a
//!   job that arrives while the mount is in progress waits for it, and
//!   gets its error if it fails). Path mapping, the space guard and the
//!   OPTIONS file are then read through the mount. A mount that fails
//!   refuses the job (412, the mount error).
//! - The lease travels with the prepared job: queued, running, and in
//!   MULTI_PROCESS through the child's life (the child is forked by this
//!   worker, in the same mount namespace, after the mount exists). It ends
//!   when the attempt ends, or when a queued attempt is cancelled.
//! - **Eviction**: at most `NFS_MOUNT_CACHE` mounts are kept; the least
//!   recently used idle one is unmounted first (by the table's evictor
//!   thread when a lease ends). A mount with a lease is never unmounted.
//! - **Stale handle**: an attempt that fails with `ESTALE` remounts its
//!   instance (once for all jobs that met the same stale mount) and runs
//!   once more; a second stale handle fails the attempt, and the hoster
//!   compacts locally. Admission that meets `ESTALE` reading the DB
//!   remounts and looks once more too. A remount goes on top of the stale
//!   mount, so the mount point is never bare while jobs use it; the stale
//!   layers go when the mount is unmounted.
//! - **Shutdown**: after the last attempt has ended, every mount is
//!   unmounted.
//! - **Locks**: no mount or unmount command runs under a lock: a command
//!   in progress is a state of its slot, so a helper that hangs (until
//!   `MOUNT_TIMEOUT` kills it) holds back only the jobs of its instance,
//!   never `/stat`, `/metrics`, `/probe` or other instances.
//!
//! Parts: [`policy`] (the allow-lists), [`source`] (NFS sources),
//! [`spec`] (what a job asks for, checked), [`mounter`] (the helper or
//! `mount` command and `umount2`), [`table`] (leases, waiting, LRU, the
//! evictor) over `slots` (the state under the table's lock),
//! [`mountinfo`] (what is mounted), [`stale`] (recognising `ESTALE`),
//! [`stats`] (counters and rows), `sys` (the system calls).

pub mod mounter;
pub mod mountinfo;
pub mod policy;
mod slots;
pub mod source;
pub mod spec;
pub mod stale;
pub mod stats;
mod sys;
pub mod table;
