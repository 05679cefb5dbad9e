//! The hoster's side of the HTTP storage mode (`storage: "http"`,
//! `docs/REMOTE_STORAGE.md`): workers read a job's files from this
//! process and push its outputs here; no filesystem is shared.
//!
//! - [`snapshot`]: per attempt, the files the job may read, pinned by hard
//!   links (the MANIFEST with its length at schedule time) in a directory
//!   the attempt owns.
//! - [`capability`]: per attempt, a random token whose scope is that
//!   snapshot and that attempt's output directory, until an expiry;
//!   revoked when the attempt is dropped.
//! - [`endpoint`]: the small HTTP server that serves the snapshots and
//!   takes the pushed outputs, for the holders of a capability only.

pub mod capability;
pub mod endpoint;
pub mod snapshot;
