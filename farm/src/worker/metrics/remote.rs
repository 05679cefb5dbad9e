//! What the HTTP storage mode fetched and pushed (`worker::remote`), as
//! metrics read at scrape time from the supervisor's sums.
//!
//! | metric | type |
//! | --- | --- |
//! | `farm_worker_remote_jobs_total` | counter: HTTP storage attempts that ended |
//! | `farm_worker_remote_bytes_total{kind}` | counter: bytes fetched from hosters: `metadata` (`CURRENT`, MANIFEST, OPTIONS) or `input` (input SSTs) |
//! | `farm_worker_remote_requests_total` | counter: ranged GETs and file lists sent |
//! | `farm_worker_remote_fetch_seconds_total` | counter: time spent in them (divided by the requests: the mean fetch latency) |
//! | `farm_worker_remote_fetch_seconds_max` | gauge: the slowest request so far |
//! | `farm_worker_remote_cache_total{result}` | counter: block lookups in the jobs' caches, `hit` or `miss` |
//! | `farm_worker_remote_pushed_bytes_total` | counter: bytes of outputs and results pushed to hosters |
//! | `farm_worker_remote_manifest_trims_total` | counter: attempts whose secondary open got a trimmed MANIFEST |
//! | `farm_worker_remote_manifest_tables_left_out_total` | counter: live tables those MANIFESTs left out |

use super::snapshot::{Family, Kind, Sample, SnapshotCollector};
use crate::worker::remote::counts::RemoteCounts;
use crate::worker::supervisor::Supervisor;
use std::sync::Weak;

const FAMILIES: [Family; 9] = [
    Family {
        name: "farm_worker_remote_jobs_total",
        help: "HTTP storage attempts that ended",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_remote_bytes_total",
        help: "Bytes fetched from hosters' file endpoints, by kind: metadata (CURRENT, MANIFEST, OPTIONS) or input (SSTs)",
        kind: Kind::Counter,
        labels: &["kind"],
    },
    Family {
        name: "farm_worker_remote_requests_total",
        help: "Requests sent to hosters' file endpoints",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_remote_fetch_seconds_total",
        help: "Time spent in those requests",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_remote_fetch_seconds_max",
        help: "The slowest request to a hoster's file endpoint",
        kind: Kind::Gauge,
        labels: &[],
    },
    Family {
        name: "farm_worker_remote_cache_total",
        help: "Block lookups in the jobs' caches, by result: hit or miss",
        kind: Kind::Counter,
        labels: &["result"],
    },
    Family {
        name: "farm_worker_remote_pushed_bytes_total",
        help: "Bytes of outputs and results pushed to hosters",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_remote_manifest_trims_total",
        help: "HTTP storage attempts whose secondary open got a trimmed MANIFEST",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_remote_manifest_tables_left_out_total",
        help: "Live tables the trimmed MANIFESTs left out",
        kind: Kind::Counter,
        labels: &[],
    },
];

/// Samples of `c`, in `FAMILIES` order.
pub fn samples(c: &RemoteCounts) -> Vec<Sample> {
    let label = |v: &str| vec![v.to_owned()];
    vec![
        Sample::new(FAMILIES[0].name, c.jobs as f64),
        Sample::labelled(FAMILIES[1].name, label("metadata"), c.metadata_bytes as f64),
        Sample::labelled(FAMILIES[1].name, label("input"), c.input_bytes as f64),
        Sample::new(FAMILIES[2].name, c.requests as f64),
        Sample::new(FAMILIES[3].name, c.fetch_us as f64 / 1e6),
        Sample::new(FAMILIES[4].name, c.fetch_us_max as f64 / 1e6),
        Sample::labelled(FAMILIES[5].name, label("hit"), c.cache_hits as f64),
        Sample::labelled(FAMILIES[5].name, label("miss"), c.cache_misses as f64),
        Sample::new(FAMILIES[6].name, c.pushed_bytes as f64),
        Sample::new(FAMILIES[7].name, c.manifest_trims as f64),
        Sample::new(FAMILIES[8].name, c.manifest_tables_left_out as f64),
    ]
}

/// The remote storage metrics of `sup`; empty once it is gone.
pub fn collector(sup: Weak<Supervisor>) -> Result<SnapshotCollector, prometheus::Error> {
    SnapshotCollector::new(FAMILIES.to_vec(), move || {
        sup.upgrade()
            .map(|s| samples(&s.remote_counts()))
            .unwrap_or_default()
    })
}
