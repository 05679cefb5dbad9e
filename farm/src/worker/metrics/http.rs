//! What the HTTP listener counts, on a registry it is given.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `farm_worker_http_connections_open` | gauge | |
//! | `farm_worker_http_max_connections` | gauge | `MAX_CONNECTIONS` |
//! | `farm_worker_http_connections_total` | counter | connections accepted |
//! | `farm_worker_http_connection_limit_waits_total` | counter | times the listener stopped accepting because `MAX_CONNECTIONS` were open |
//! | `farm_worker_http_closed_total` | counter | `reason`: the worker closed a connection itself: `header_timeout`, `idle_timeout`, `write_timeout`, `shutdown` (still open after the drain) |
//! | `farm_worker_http_body_timeouts_total` | counter | request bodies that did not arrive within `HTTP_BODY_TIMEOUT` |

use crate::worker::listener::clock::Expiry;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Cheap to clone: every clone counts into the same metrics.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    open: IntGauge,
    max: IntGauge,
    accepted: IntCounter,
    limit_waits: IntCounter,
    closed: IntCounterVec,
    body_timeouts: IntCounter,
}

/// The reason label of a connection still open when the drain ended.
pub const SHUTDOWN: &str = "shutdown";

impl HttpMetrics {
    pub fn new(registry: &Registry, max_connections: usize) -> Result<Self, prometheus::Error> {
        let m = HttpMetrics {
            open: IntGauge::new(
                "farm_worker_http_connections_open",
                "HTTP connections open now",
            )?,
            max: IntGauge::new("farm_worker_http_max_connections", "MAX_CONNECTIONS")?,
            accepted: IntCounter::new(
                "farm_worker_http_connections_total",
                "HTTP connections accepted",
            )?,
            limit_waits: IntCounter::new(
                "farm_worker_http_connection_limit_waits_total",
                "Times the listener stopped accepting because MAX_CONNECTIONS were open",
            )?,
            closed: IntCounterVec::new(
                Opts::new(
                    "farm_worker_http_closed_total",
                    "HTTP connections the worker closed itself, by reason",
                ),
                &["reason"],
            )?,
            body_timeouts: IntCounter::new(
                "farm_worker_http_body_timeouts_total",
                "Request bodies that did not arrive within HTTP_BODY_TIMEOUT",
            )?,
        };
        registry.register(Box::new(m.open.clone()))?;
        registry.register(Box::new(m.max.clone()))?;
        registry.register(Box::new(m.accepted.clone()))?;
        registry.register(Box::new(m.limit_waits.clone()))?;
        registry.register(Box::new(m.closed.clone()))?;
        registry.register(Box::new(m.body_timeouts.clone()))?;
        m.max
            .set(i64::try_from(max_connections).unwrap_or(i64::MAX));
        for why in Expiry::ALL {
            m.closed.with_label_values(&[why.name()]);
        }
        m.closed.with_label_values(&[SHUTDOWN]);
        Ok(m)
    }

    /// A connection was accepted; it counts as open until the guard drops.
    pub fn opened(&self) -> OpenConnection {
        self.accepted.inc();
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    pub fn limit_reached(&self) {
        self.limit_waits.inc();
    }

    pub fn closed(&self, reason: &str) {
        self.closed.with_label_values(&[reason]).inc();
    }

    pub fn body_timed_out(&self) {
        self.body_timeouts.inc();
    }
}

/// Counts one open connection while it lives.
#[derive(Debug)]
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn every_series_exists_from_the_start() {
        let registry = Registry::new();
        let m = HttpMetrics::new(&registry, 64).unwrap();
        let open = m.opened();
        m.closed(Expiry::HeaderTimeout.name());
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains("farm_worker_http_connections_open 1"), "{t}");
        assert!(t.contains("farm_worker_http_max_connections 64"), "{t}");
        assert!(
            t.contains("farm_worker_http_closed_total{reason=\"header_timeout\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("farm_worker_http_closed_total{reason=\"write_timeout\"} 0"),
            "{t}"
        );
        drop(open);
        assert_eq!(m.open.get(), 0);
    }
}
