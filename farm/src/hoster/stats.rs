//! The hoster's counters: compactions that ran remotely, and those that fell
//! back to local compaction, by reason. An application reads them as a
//! [`StatsSnapshot`] through [`FarmService::stats`](super::FarmService::stats),
//! or on its Prometheus registry
//! ([`FarmService::register_metrics`](super::FarmService::register_metrics)).

use super::metrics::HosterMetrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Why a compaction ran locally. Closed: every fallback has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackReason {
    /// The output level is outside `dcompact_min_level..=dcompact_max_level`.
    Level,
    /// No worker is configured, or every worker is backing off.
    NoWorker,
    /// Workers answered 503 on every try.
    Busy,
    /// A worker refused the job (412).
    Refused,
    /// A worker answered another HTTP error status.
    HttpStatus,
    /// The connection failed or broke.
    Connection,
    /// A request or the whole attempt took too long.
    Timeout,
    /// A worker answered something that is not the protocol.
    Protocol,
    /// The attempt failed on the worker.
    RemoteFailed,
    /// The worker no longer knows the attempt.
    NotFound,
    /// An output file was missing, of the wrong size or corrupt.
    VerifyFailed,
    /// The result named one output file twice.
    DuplicateOutput,
    /// An output's keys lie outside the union of the inputs' key ranges.
    OutsideKeyRange,
    /// More output files or bytes than a sane multiple of the input.
    ImplausibleOutput,
    /// The result's totals (files, records) do not add up.
    TotalsMismatch,
    /// RocksDB cancelled the wait (closing or pausing).
    Cancelled,
    /// With `storage: "http"`: the job's files could not be pinned (a
    /// MANIFEST rolled under every try, an input or OPTIONS file gone).
    Snapshot,
    /// A bug in the client (a caught panic).
    Internal,
}

impl FallbackReason {
    /// Every reason, in the order of [`StatsSnapshot::fallbacks`].
    pub const ALL: [FallbackReason; 18] = [
        FallbackReason::Level,
        FallbackReason::NoWorker,
        FallbackReason::Busy,
        FallbackReason::Refused,
        FallbackReason::HttpStatus,
        FallbackReason::Connection,
        FallbackReason::Timeout,
        FallbackReason::Protocol,
        FallbackReason::RemoteFailed,
        FallbackReason::NotFound,
        FallbackReason::VerifyFailed,
        FallbackReason::DuplicateOutput,
        FallbackReason::OutsideKeyRange,
        FallbackReason::ImplausibleOutput,
        FallbackReason::TotalsMismatch,
        FallbackReason::Cancelled,
        FallbackReason::Snapshot,
        FallbackReason::Internal,
    ];

    /// The reason's name in [`StatsSnapshot::fallbacks`], the logs and the
    /// `reason` label of `farm_hoster_compactions_local_total`.
    pub fn name(self) -> &'static str {
        match self {
            FallbackReason::Level => "level",
            FallbackReason::NoWorker => "no_worker",
            FallbackReason::Busy => "busy",
            FallbackReason::Refused => "refused",
            FallbackReason::HttpStatus => "http_status",
            FallbackReason::Connection => "connection",
            FallbackReason::Timeout => "timeout",
            FallbackReason::Protocol => "protocol",
            FallbackReason::RemoteFailed => "remote_failed",
            FallbackReason::NotFound => "not_found",
            FallbackReason::VerifyFailed => "verify_failed",
            FallbackReason::DuplicateOutput => "duplicate_output",
            FallbackReason::OutsideKeyRange => "outside_key_range",
            FallbackReason::ImplausibleOutput => "implausible_output",
            FallbackReason::TotalsMismatch => "totals_mismatch",
            FallbackReason::Cancelled => "cancelled",
            FallbackReason::Snapshot => "snapshot",
            FallbackReason::Internal => "internal",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .expect("ALL lists every reason")
    }
}

/// The live counters of one [`FarmService`](super::FarmService); the
/// service updates them, the application reads [`HosterStats::snapshot`].
#[derive(Debug, Default)]
pub struct HosterStats {
    scheduled: AtomicU64,
    remote_installed: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    verify_micros: AtomicU64,
    done_by_watch: AtomicU64,
    done_by_probe: AtomicU64,
    submit_failures: AtomicU64,
    probes: AtomicU64,
    fallbacks: [AtomicU64; FallbackReason::ALL.len()],
    last_errors: Mutex<BTreeMap<&'static str, String>>,
    metrics: OnceLock<HosterMetrics>,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// Jobs a worker accepted.
    pub scheduled: u64,
    /// Compactions whose remote output RocksDB installed.
    pub remote_installed: u64,
    /// Input bytes of installed remote compactions.
    pub remote_bytes_read: u64,
    /// Output bytes of installed remote compactions.
    pub remote_bytes_written: u64,
    /// Time spent verifying outputs before installing them.
    pub verify_micros: u64,
    /// Finished attempts whose wait was woken by etcd's "done" event.
    pub done_by_watch: u64,
    /// Finished attempts a probe found finished before any event.
    pub done_by_probe: u64,
    /// Submissions a worker did not accept (each retried elsewhere or
    /// ending in a fallback).
    pub submit_failures: u64,
    /// `/probe` requests sent.
    pub probes: u64,
    /// Local fallbacks by reason; every reason listed, zeroes included.
    pub fallbacks: BTreeMap<&'static str, u64>,
    /// The last error behind each reason that occurred.
    pub last_errors: BTreeMap<&'static str, String>,
}

impl StatsSnapshot {
    /// Compactions that ran locally, whatever the reason.
    pub fn local_total(&self) -> u64 {
        self.fallbacks.values().sum()
    }
}

impl HosterStats {
    /// A worker accepted a job.
    pub fn scheduled(&self) {
        self.scheduled.fetch_add(1, Ordering::Relaxed);
    }

    /// A compaction runs locally for `reason`.
    pub fn fallback(&self, reason: FallbackReason) {
        self.fallbacks[reason.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.local(reason);
        }
    }

    /// Also reports to Prometheus from now on; `false` if already set.
    pub fn set_metrics(&self, metrics: HosterMetrics) -> bool {
        self.metrics.set(metrics).is_ok()
    }

    /// A fallback with what went wrong, kept as the reason's last error.
    pub fn fallback_because(&self, reason: FallbackReason, why: String) {
        self.fallback(reason);
        let mut last = self.last_errors.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(reason.name(), why);
    }

    /// RocksDB installed a remote result that took `elapsed` from
    /// submission.
    pub fn installed(&self, elapsed: Duration, bytes_read: u64, bytes_written: u64) {
        if let Some(m) = self.metrics.get() {
            m.installed(elapsed, bytes_read, bytes_written);
        }
        self.remote_installed.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes_read, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(bytes_written, Ordering::Relaxed);
    }

    /// A probe found an attempt done; `woken`: after its etcd event.
    pub fn done_seen(&self, woken: bool) {
        let c = if woken {
            &self.done_by_watch
        } else {
            &self.done_by_probe
        };
        c.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.done_seen(woken);
        }
    }

    /// A `/probe` was sent.
    pub fn probed(&self) {
        self.probes.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker did not accept a submission.
    pub fn submit_failed(&self) {
        self.submit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Verifying a result's outputs took `micros`.
    pub fn verified(&self, micros: u64) {
        self.verify_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A copy of every counter now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            scheduled: self.scheduled.load(Ordering::Relaxed),
            remote_installed: self.remote_installed.load(Ordering::Relaxed),
            remote_bytes_read: self.bytes_read.load(Ordering::Relaxed),
            remote_bytes_written: self.bytes_written.load(Ordering::Relaxed),
            verify_micros: self.verify_micros.load(Ordering::Relaxed),
            done_by_watch: self.done_by_watch.load(Ordering::Relaxed),
            done_by_probe: self.done_by_probe.load(Ordering::Relaxed),
            submit_failures: self.submit_failures.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            fallbacks: FallbackReason::ALL
                .iter()
                .map(|r| (r.name(), self.fallbacks[r.index()].load(Ordering::Relaxed)))
                .collect(),
            last_errors: self
                .last_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
