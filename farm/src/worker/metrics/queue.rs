//! The supervisor's queue as gauges, read at scrape time.
//!
//! | metric | type |
//! | --- | --- |
//! | `farm_worker_attempts_running`, `farm_worker_attempts_waiting` | gauge |
//! | `farm_worker_attempts_running_high_water` | gauge: the most ever running at once |
//! | `farm_worker_max_parallel_compactions`, `farm_worker_max_waiting_compactions` | gauge: the limits |
//! | `farm_worker_stopping` | gauge: 1 once shutdown began |
//! | `farm_worker_draining` | gauge: 1 once a drain began (`POST /drain`, SIGUSR1, SIGTERM, a termination notice) |
//! | `farm_worker_admissions_in_progress`, `farm_worker_max_admissions` | gauge: jobs being admitted (their storage mounted and read), and `MAX_ADMISSIONS` |

use super::snapshot::{Family, Kind, Sample, SnapshotCollector};
use crate::worker::supervisor::Supervisor;
use std::sync::Weak;

/// What the gauges show.
#[derive(Debug, Clone, Copy)]
pub struct QueueState {
    pub running: usize,
    pub waiting: usize,
    pub running_high_water: usize,
    pub max_parallel: usize,
    pub max_waiting: usize,
    pub stopping: bool,
    /// A drain began: new jobs are answered 503 `stopping`.
    pub draining: bool,
    /// Admissions in progress, and `MAX_ADMISSIONS`.
    pub admitting: usize,
    pub max_admissions: usize,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: Kind::Gauge,
        labels: &[],
    }
}

const FAMILIES: [Family; 9] = [
    gauge("farm_worker_attempts_running", "Attempts running now"),
    gauge(
        "farm_worker_attempts_waiting",
        "Attempts accepted and waiting for a slot",
    ),
    gauge(
        "farm_worker_attempts_running_high_water",
        "The most attempts ever running at once",
    ),
    gauge(
        "farm_worker_max_parallel_compactions",
        "MAX_PARALLEL_COMPACTIONS",
    ),
    gauge(
        "farm_worker_max_waiting_compactions",
        "MAX_WAITING_COMPACTIONS",
    ),
    gauge("farm_worker_stopping", "1 once the worker began to stop"),
    gauge(
        "farm_worker_admissions_in_progress",
        "Jobs being admitted: storage mounted and read",
    ),
    gauge("farm_worker_max_admissions", "MAX_ADMISSIONS"),
    gauge(
        "farm_worker_draining",
        "1 once the worker began to drain: it takes no new jobs and exits when its attempts are done and collected",
    ),
];

/// Samples of `q`, in `FAMILIES` order.
pub fn samples(q: &QueueState) -> Vec<Sample> {
    let values = [
        q.running as f64,
        q.waiting as f64,
        q.running_high_water as f64,
        q.max_parallel as f64,
        q.max_waiting as f64,
        f64::from(u8::from(q.stopping)),
        q.admitting as f64,
        q.max_admissions as f64,
        f64::from(u8::from(q.draining)),
    ];
    FAMILIES
        .iter()
        .zip(values)
        .map(|(f, v)| Sample::new(f.name, v))
        .collect()
}

/// The gauges of `sup`'s queue; empty once the supervisor is gone.
pub fn collector(sup: Weak<Supervisor>) -> Result<SnapshotCollector, prometheus::Error> {
    SnapshotCollector::new(FAMILIES.to_vec(), move || {
        sup.upgrade()
            .map(|s| samples(&s.queue_state()))
            .unwrap_or_default()
    })
}
