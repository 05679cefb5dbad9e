//! The hoster's Prometheus metrics, on a registry the application owns
//! (`FarmService::register_metrics`), so it can expose them with its own.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `farm_hoster_compactions_remote_total` | counter | |
//! | `farm_hoster_compactions_local_total` | counter | `reason` (a [`FallbackReason`] name: bounded) |
//! | `farm_hoster_remote_seconds` | histogram | |
//! | `farm_hoster_remote_read_bytes_total`, `farm_hoster_remote_written_bytes_total` | counter | |
//! | `farm_hoster_done_seen_total` | counter | `by`: `watch` (etcd's event woke the wait) or `probe` |

use super::stats::FallbackReason;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use std::time::Duration;

#[derive(Debug)]
pub struct HosterMetrics {
    remote: IntCounter,
    local: IntCounterVec,
    remote_seconds: Histogram,
    read_bytes: IntCounter,
    written_bytes: IntCounter,
    done_seen: IntCounterVec,
}

impl HosterMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = HosterMetrics {
            remote: IntCounter::new(
                "farm_hoster_compactions_remote_total",
                "Compactions whose remote output was installed",
            )?,
            local: IntCounterVec::new(
                Opts::new(
                    "farm_hoster_compactions_local_total",
                    "Compactions run locally, by reason",
                ),
                &["reason"],
            )?,
            remote_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "farm_hoster_remote_seconds",
                    "From submission to a verified result of installed remote compactions",
                )
                .buckets(prometheus::exponential_buckets(0.01, 2.0, 16)?),
            )?,
            read_bytes: IntCounter::new(
                "farm_hoster_remote_read_bytes_total",
                "Input bytes of installed remote compactions",
            )?,
            written_bytes: IntCounter::new(
                "farm_hoster_remote_written_bytes_total",
                "Output bytes of installed remote compactions",
            )?,
            done_seen: IntCounterVec::new(
                Opts::new(
                    "farm_hoster_done_seen_total",
                    "Remote attempts found done, by what woke the wait",
                ),
                &["by"],
            )?,
        };
        registry.register(Box::new(m.remote.clone()))?;
        registry.register(Box::new(m.local.clone()))?;
        registry.register(Box::new(m.remote_seconds.clone()))?;
        registry.register(Box::new(m.read_bytes.clone()))?;
        registry.register(Box::new(m.written_bytes.clone()))?;
        registry.register(Box::new(m.done_seen.clone()))?;
        for by in ["watch", "probe"] {
            m.done_seen.with_label_values(&[by]);
        }
        for r in FallbackReason::ALL {
            m.local.with_label_values(&[r.name()]);
        }
        Ok(m)
    }

    pub fn local(&self, reason: FallbackReason) {
        self.local.with_label_values(&[reason.name()]).inc();
    }

    pub fn done_seen(&self, woken: bool) {
        let by = if woken { "watch" } else { "probe" };
        self.done_seen.with_label_values(&[by]).inc();
    }

    pub fn installed(&self, elapsed: Duration, bytes_read: u64, bytes_written: u64) {
        self.remote.inc();
        self.remote_seconds.observe(elapsed.as_secs_f64());
        self.read_bytes.inc_by(bytes_read);
        self.written_bytes.inc_by(bytes_written);
    }
}
