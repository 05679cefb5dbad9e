//! The worker's HTTP contract, written down in `docs/PROTOCOL.md`: other
//! clients and operators' scripts are written against these types, so
//! fields and endpoints are only ever added ([`version`]).
//!
//! - [`endpoints`]: every endpoint's method and path.
//! - [`job`]: the job JSON a hoster POSTs to `/dcompact`.
//! - [`attempt`]: the attempt's five-field identity and its name.
//! - [`answers`]: the JSON answers of `/dcompact`, `/probe`, `/shutdown`,
//!   `/health` and every error.
//! - [`limits`]: the bounds of every job field, checked at parse time.
//! - [`version`]: the protocol number each side announces.
//! - [`remote`]: the HTTP storage mode: a job's `remote` object and the
//!   hoster's file endpoint.
//! - [`mount_flags`]: ToplingDB's `nfs_mnt_flags` as the mount options a
//!   job carries.

pub mod answers;
pub mod attempt;
pub mod endpoints;
pub mod job;
pub mod limits;
pub mod mount_flags;
pub mod output_dir;
pub mod probe;
pub mod remote;
pub mod version;
