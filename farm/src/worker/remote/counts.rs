//! What one remote job fetched and pushed, and the sum over jobs.
//!
//! | counter | meaning |
//! | --- | --- |
//! | `metadata_bytes` | bytes of `CURRENT`, the MANIFEST and the OPTIONS file fetched |
//! | `input_bytes` | bytes of input SSTs fetched |
//! | `requests` | ranged GETs (and the file list) sent |
//! | `fetch_us` | time spent in them, summed |
//! | `fetch_us_max` | the slowest one |
//! | `cache_hits`, `cache_misses` | block lookups answered from the job's cache or not |
//! | `pushed_bytes`, `pushed_files` | outputs (and result files) sent to the hoster |
//! | `manifest_trims` | jobs whose MANIFEST the secondary open got trimmed (`cpp/farm_manifest_trim.cc`) |
//! | `manifest_tables_left_out` | live tables those trimmed MANIFESTs left out |

use crate::rocks::remote_fs::ManifestServed;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of the counters (also the child's `remote_counts.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCounts {
    pub jobs: u64,
    pub metadata_bytes: u64,
    pub input_bytes: u64,
    pub requests: u64,
    pub fetch_us: u64,
    pub fetch_us_max: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub pushed_bytes: u64,
    pub pushed_files: u64,
    #[serde(default)]
    pub manifest_trims: u64,
    #[serde(default)]
    pub manifest_tables_left_out: u64,
}

impl RemoteCounts {
    /// Adds `other` (the maximum is kept as a maximum).
    pub fn add(&mut self, other: &RemoteCounts) {
        self.jobs += other.jobs;
        self.metadata_bytes += other.metadata_bytes;
        self.input_bytes += other.input_bytes;
        self.requests += other.requests;
        self.fetch_us += other.fetch_us;
        self.fetch_us_max = self.fetch_us_max.max(other.fetch_us_max);
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.pushed_bytes += other.pushed_bytes;
        self.pushed_files += other.pushed_files;
        self.manifest_trims += other.manifest_trims;
        self.manifest_tables_left_out += other.manifest_tables_left_out;
    }

    /// One line for an attempt's `LOG`.
    pub fn describe(&self) -> String {
        format!(
            "remote metadata_bytes={} input_bytes={} requests={} fetch_ms={} fetch_ms_max={} cache_hits={} cache_misses={} pushed_bytes={} pushed_files={} manifest_tables_left_out={}",
            self.metadata_bytes,
            self.input_bytes,
            self.requests,
            self.fetch_us / 1000,
            self.fetch_us_max / 1000,
            self.cache_hits,
            self.cache_misses,
            self.pushed_bytes,
            self.pushed_files,
            self.manifest_tables_left_out
        )
    }
}

/// The live counters of one job.
#[derive(Debug, Default)]
pub struct Counters {
    metadata_bytes: AtomicU64,
    input_bytes: AtomicU64,
    requests: AtomicU64,
    fetch_us: AtomicU64,
    fetch_us_max: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    pushed_bytes: AtomicU64,
    pushed_files: AtomicU64,
    manifest_trims: AtomicU64,
    manifest_tables_left_out: AtomicU64,
}

impl Counters {
    /// One request that took `took` and brought `bytes` of an input SST
    /// (`input`) or of metadata.
    pub fn fetched(&self, bytes: u64, input: bool, took: Duration) {
        let field = if input {
            &self.input_bytes
        } else {
            &self.metadata_bytes
        };
        field.fetch_add(bytes, Ordering::Relaxed);
        self.request(took);
    }

    /// One request that took `took`.
    pub fn request(&self, took: Duration) {
        let us = took.as_micros() as u64;
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.fetch_us.fetch_add(us, Ordering::Relaxed);
        self.fetch_us_max.fetch_max(us, Ordering::Relaxed);
    }

    pub fn lookup(&self, hit: bool) {
        let field = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        field.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pushed(&self, bytes: u64) {
        self.pushed_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.pushed_files.fetch_add(1, Ordering::Relaxed);
    }

    /// How the secondary open got the MANIFEST.
    pub fn manifest(&self, served: &ManifestServed) {
        if let ManifestServed::Trimmed { live, kept } = served {
            self.manifest_trims.fetch_add(1, Ordering::Relaxed);
            self.manifest_tables_left_out
                .fetch_add(live.saturating_sub(*kept), Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> RemoteCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RemoteCounts {
            jobs: 1,
            metadata_bytes: get(&self.metadata_bytes),
            input_bytes: get(&self.input_bytes),
            requests: get(&self.requests),
            fetch_us: get(&self.fetch_us),
            fetch_us_max: get(&self.fetch_us_max),
            cache_hits: get(&self.cache_hits),
            cache_misses: get(&self.cache_misses),
            pushed_bytes: get(&self.pushed_bytes),
            pushed_files: get(&self.pushed_files),
            manifest_trims: get(&self.manifest_trims),
            manifest_tables_left_out: get(&self.manifest_tables_left_out),
        }
    }
}
