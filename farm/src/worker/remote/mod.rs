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
//!
//! The secondary open reads the job's MANIFEST trimmed to the tables that
//! can affect the compaction (`cpp/farm_manifest_trim.cc`): [`note_manifest`]
//! counts and tells how it was served.

pub mod admission;
pub mod cache;
pub mod child;
pub mod counts;
pub mod error;
pub mod push;
pub mod source;

use crate::rocks::remote_fs::{ManifestServed, Registration};
use source::RemoteSource;

/// Counts how the secondary open got the MANIFEST of `registration` and
/// says it in one line for the attempt's log; `None` before the open.
pub fn note_manifest(registration: &Registration, source: &RemoteSource) -> Option<String> {
    let served = registration.manifest_served()?;
    source.counters().manifest(&served);
    Some(match served {
        ManifestServed::Trimmed { live, kept } => {
            format!("MANIFEST trimmed: {kept} of the {live} live tables named in the open")
        }
        ManifestServed::Whole(why) => format!("MANIFEST opened whole: {why}"),
    })
}
