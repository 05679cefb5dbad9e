//! The worker's side of the HTTP storage mode (`docs/REMOTE_STORAGE.md`):
//! a job whose DB the worker reads from the hoster's file endpoint.
//!
//! - [`admission`]: admitting a job without reading the worker's storage.
//! - [`child`]: the same files opened again in an attempt child.
//! - [`source`]: one job's files: the list, ranged reads with read-ahead
//!   through a bounded [`cache`], what was fetched ([`counts`]).
//! - [`cache`]: the block cache of one job.
//! - [`counts`]: bytes fetched (metadata, inputs), requests, fetch time,
//!   cache hits; summed on `/stat` and `/metrics`.
//! - [`push`]: the outputs, `rpc.results` and `compact.done` sent to the
//!   hoster's output directory.
//! - [`error`]: what can go wrong, typed.

pub mod admission;
pub mod cache;
pub mod child;
pub mod counts;
pub mod error;
pub mod push;
pub mod source;
