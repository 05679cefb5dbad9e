//! What the supervisor counts about attempts, on a registry it is given
//! (the worker's own, or a test's).
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `farm_worker_attempts_accepted_total` | counter | |
//! | `farm_worker_attempts_total` | counter | `outcome` (an [`Outcome`] name, or `succeeded`) |
//! | `farm_worker_rejected_total` | counter | `reason` (a [`RejectReason`] name) |
//! | `farm_worker_attempt_seconds` | histogram | `outcome`: from start to end of the run |
//! | `farm_worker_attempt_queue_seconds` | histogram | from acceptance to start |
//! | `farm_worker_attempt_read_bytes`, `farm_worker_attempt_written_bytes` | histogram | succeeded attempts |
//! | `farm_worker_read_bytes_total`, `farm_worker_written_bytes_total` | counter | succeeded attempts |
//! | `farm_worker_open_retries_total` | counter | `race` (an [`OpenRace`] name): secondary opens run again after losing a race with the primary |
//! | `farm_worker_open_races_unresolved_total` | counter | attempts that still lost the race after their last retry |
//! | `farm_worker_child_spawn_seconds` | histogram | MULTI_PROCESS: fork+exec of a child |
//! | `farm_worker_retained_attempt_dirs`, `farm_worker_retained_attempt_bytes` | gauge | kept attempt directories, at the last retention sweep |
//! | `farm_worker_retention_removed_total` | counter | attempt directories removed by age or size |
//! | `farm_worker_finished_retained`, `farm_worker_finished_retained_bytes` | gauge | finished attempts kept for `/probe`, and their bytes |
//! | `farm_worker_finished_evicted_total` | counter | finished attempts forgotten before `RESULT_RETENTION`, oldest first, to stay within the bounds of [`crate::worker::finished_bound`] |
//!
//! Labels take values from closed sets only: no attempt or job ids, so the
//! number of series is fixed.
//!
//! [`Outcome`]: crate::worker::outcome::Outcome

use crate::rocks::open_race::OpenRace;
use crate::worker::outcome::Outcome;
use crate::worker::retention::SweepReport;
use crate::worker::stats::RejectReason;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry,
};
use std::time::Duration;

#[derive(Debug)]
pub struct AttemptMetrics {
    accepted: IntCounter,
    ended: IntCounterVec,
    rejected: IntCounterVec,
    seconds: HistogramVec,
    queue_seconds: Histogram,
    read_bytes: Histogram,
    written_bytes: Histogram,
    read_total: IntCounter,
    written_total: IntCounter,
    spawn_seconds: Histogram,
    open_retries: IntCounterVec,
    open_races_unresolved: IntCounter,
    retained_dirs: IntGauge,
    retained_bytes: IntGauge,
    retention_removed: IntCounter,
    finished_retained: IntGauge,
    finished_retained_bytes: IntGauge,
    finished_evicted: IntCounter,
}

/// Every outcome name, success first.
fn outcome_names() -> impl Iterator<Item = &'static str> {
    std::iter::once(Outcome::Succeeded.name()).chain(Outcome::FAILURE_NAMES)
}

impl AttemptMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let seconds_buckets = exponential_buckets(0.01, 2.0, 20)?;
        let bytes_buckets = exponential_buckets(4096.0, 4.0, 14)?;
        let m = AttemptMetrics {
            accepted: IntCounter::new(
                "farm_worker_attempts_accepted_total",
                "Attempts accepted by /dcompact",
            )?,
            ended: IntCounterVec::new(
                Opts::new("farm_worker_attempts_total", "Attempts ended, by outcome"),
                &["outcome"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "farm_worker_rejected_total",
                    "Submissions turned away, by reason",
                ),
                &["reason"],
            )?,
            seconds: HistogramVec::new(
                HistogramOpts::new(
                    "farm_worker_attempt_seconds",
                    "Run time of ended attempts, from start to end, by outcome",
                )
                .buckets(seconds_buckets.clone()),
                &["outcome"],
            )?,
            queue_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "farm_worker_attempt_queue_seconds",
                    "Time attempts waited for a slot, from acceptance to start",
                )
                .buckets(seconds_buckets),
            )?,
            read_bytes: Histogram::with_opts(
                HistogramOpts::new(
                    "farm_worker_attempt_read_bytes",
                    "Input bytes read by succeeded attempts",
                )
                .buckets(bytes_buckets.clone()),
            )?,
            written_bytes: Histogram::with_opts(
                HistogramOpts::new(
                    "farm_worker_attempt_written_bytes",
                    "Output bytes written by succeeded attempts",
                )
                .buckets(bytes_buckets),
            )?,
            read_total: IntCounter::new(
                "farm_worker_read_bytes_total",
                "Input bytes read by succeeded attempts",
            )?,
            written_total: IntCounter::new(
                "farm_worker_written_bytes_total",
                "Output bytes written by succeeded attempts",
            )?,
            spawn_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "farm_worker_child_spawn_seconds",
                    "MULTI_PROCESS: time to fork and exec an attempt's child",
                )
                .buckets(exponential_buckets(0.0001, 2.0, 16)?),
            )?,
            open_retries: IntCounterVec::new(
                Opts::new(
                    "farm_worker_open_retries_total",
                    "Secondary opens run again after losing a race with the hoster's primary, by race",
                ),
                &["race"],
            )?,
            open_races_unresolved: IntCounter::new(
                "farm_worker_open_races_unresolved_total",
                "Attempts whose secondary open still lost a race with the primary after the last retry",
            )?,
            retained_dirs: IntGauge::new(
                "farm_worker_retained_attempt_dirs",
                "Attempt directories kept for post-mortem, at the last retention sweep",
            )?,
            retained_bytes: IntGauge::new(
                "farm_worker_retained_attempt_bytes",
                "Bytes of attempt directories kept, at the last retention sweep",
            )?,
            retention_removed: IntCounter::new(
                "farm_worker_retention_removed_total",
                "Attempt directories removed by ATTEMPT_RETENTION_AGE or _BYTES",
            )?,
            finished_retained: IntGauge::new(
                "farm_worker_finished_retained",
                "Finished attempts kept for /probe",
            )?,
            finished_retained_bytes: IntGauge::new(
                "farm_worker_finished_retained_bytes",
                "Bytes held by finished attempts kept for /probe",
            )?,
            finished_evicted: IntCounter::new(
                "farm_worker_finished_evicted_total",
                "Finished attempts forgotten before RESULT_RETENTION to stay within the count and byte bounds, oldest first",
            )?,
        };
        registry.register(Box::new(m.accepted.clone()))?;
        registry.register(Box::new(m.ended.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        registry.register(Box::new(m.seconds.clone()))?;
        registry.register(Box::new(m.queue_seconds.clone()))?;
        registry.register(Box::new(m.read_bytes.clone()))?;
        registry.register(Box::new(m.written_bytes.clone()))?;
        registry.register(Box::new(m.read_total.clone()))?;
        registry.register(Box::new(m.written_total.clone()))?;
        registry.register(Box::new(m.spawn_seconds.clone()))?;
        registry.register(Box::new(m.open_retries.clone()))?;
        registry.register(Box::new(m.open_races_unresolved.clone()))?;
        registry.register(Box::new(m.retained_dirs.clone()))?;
        registry.register(Box::new(m.retained_bytes.clone()))?;
        registry.register(Box::new(m.retention_removed.clone()))?;
        registry.register(Box::new(m.finished_retained.clone()))?;
        registry.register(Box::new(m.finished_retained_bytes.clone()))?;
        registry.register(Box::new(m.finished_evicted.clone()))?;
        // Every series exists from the start, so a rate over a fresh worker
        // starts at zero rather than at "no data".
        for name in outcome_names() {
            m.ended.with_label_values(&[name]);
            m.seconds.with_label_values(&[name]);
        }
        for reason in RejectReason::ALL {
            m.rejected.with_label_values(&[reason.name()]);
        }
        for race in OpenRace::ALL {
            m.open_retries.with_label_values(&[race.name()]);
        }
        Ok(m)
    }

    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn rejected(&self, reason: RejectReason) {
        self.rejected.with_label_values(&[reason.name()]).inc();
    }

    pub fn started(&self, waited: Duration) {
        self.queue_seconds.observe(waited.as_secs_f64());
    }

    /// An attempt ended; `ran` is `None` for one cancelled while queued.
    pub fn ended(&self, outcome: &Outcome, ran: Option<Duration>, read: u64, written: u64) {
        let name = outcome.name();
        self.ended.with_label_values(&[name]).inc();
        if let Some(ran) = ran {
            self.seconds
                .with_label_values(&[name])
                .observe(ran.as_secs_f64());
        }
        if *outcome == Outcome::Succeeded {
            self.read_bytes.observe(read as f64);
            self.written_bytes.observe(written as f64);
            self.read_total.inc_by(read);
            self.written_total.inc_by(written);
        }
    }

    /// One attempt's open retries, and whether it lost after the last.
    pub fn open_races(&self, retried: &[OpenRace], unresolved: bool) {
        for race in retried {
            self.open_retries.with_label_values(&[race.name()]).inc();
        }
        if unresolved {
            self.open_races_unresolved.inc();
        }
    }

    pub fn child_spawned(&self, latency: Duration) {
        self.spawn_seconds.observe(latency.as_secs_f64());
    }

    /// The finished attempts kept, after `evicted` were forgotten early.
    pub fn finished_bounded(&self, kept: usize, kept_bytes: u64, evicted: usize) {
        self.finished_retained.set(kept as i64);
        self.finished_retained_bytes.set(kept_bytes as i64);
        self.finished_evicted.inc_by(evicted as u64);
    }

    /// A retention sweep of the attempt directories ended.
    pub fn swept(&self, report: &SweepReport) {
        self.retained_dirs.set(report.kept as i64);
        self.retained_bytes.set(report.kept_bytes as i64);
        self.retention_removed.inc_by(report.removed as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    fn text(registry: &Registry) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_by_closed_labels() {
        let registry = Registry::new();
        let m = AttemptMetrics::new(&registry).unwrap();
        m.accepted();
        m.accepted();
        m.ended(&Outcome::Succeeded, Some(Duration::from_secs(2)), 100, 40);
        m.ended(&Outcome::Cancelled, None, 0, 0);
        m.rejected(RejectReason::Busy);
        m.open_races(&[OpenRace::FileVanished, OpenRace::FileVanished], true);
        let t = text(&registry);
        assert!(
            t.contains("farm_worker_open_retries_total{race=\"file_vanished\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("farm_worker_open_retries_total{race=\"torn_metadata\"} 0"),
            "{t}"
        );
        assert!(
            t.contains("farm_worker_open_races_unresolved_total 1"),
            "{t}"
        );
        assert!(t.contains("farm_worker_attempts_accepted_total 2"), "{t}");
        assert!(
            t.contains("farm_worker_attempts_total{outcome=\"succeeded\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("farm_worker_attempts_total{outcome=\"cancelled\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("farm_worker_attempts_total{outcome=\"timed_out\"} 0"),
            "{t}"
        );
        assert!(t.contains("farm_worker_rejected_total{reason=\"busy\"} 1"));
        assert!(t.contains("farm_worker_read_bytes_total 100"));
        assert!(t.contains("farm_worker_attempt_seconds_count{outcome=\"succeeded\"} 1"));
        assert!(t.contains("farm_worker_attempt_seconds_count{outcome=\"cancelled\"} 0"));
    }
}
