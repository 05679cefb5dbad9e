//! The zipserver's counters, kept in Prometheus metrics (built with
//! [`ZipStats::new`] on a registry the caller owns) and read back for
//! `/stat`.
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `zipserver_requests_total` | counter | blocks compressed (label `client`) |
//! | `zipserver_bytes_in_total` | counter | uncompressed bytes received (label `client`) |
//! | `zipserver_bytes_out_total` | counter | compressed bytes sent back (label `client`) |
//! | `zipserver_errors_total` | counter | requests answered with an error |
//! | `zipserver_connections` | gauge | open client connections |
//! | `zipserver_queue_depth` | gauge | blocks waiting for a thread |
//! | `zipserver_waiting_bytes` | gauge | bytes of blocks waiting |
//! | `zipserver_working_bytes` | gauge | bytes of blocks being compressed |
//! | `zipserver_budget_bytes` | gauge | memory budget in use |

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

pub struct ZipStats {
    pub requests: IntCounterVec,
    pub bytes_in: IntCounterVec,
    pub bytes_out: IntCounterVec,
    pub errors: IntCounter,
    pub connections: IntGauge,
    pub queue_depth: IntGauge,
    pub waiting_bytes: IntGauge,
    pub working_bytes: IntGauge,
    pub budget_bytes: IntGauge,
    /// Client names seen, so `/stat` can list them without walking labels.
    clients: Mutex<Vec<String>>,
}

/// One client's counters.
pub struct ClientCounters {
    requests: IntCounter,
    bytes_in: IntCounter,
    bytes_out: IntCounter,
}

impl ClientCounters {
    /// Counts one compressed block.
    pub fn count(&self, bytes_in: usize, bytes_out: usize) {
        self.requests.inc();
        self.bytes_in.inc_by(bytes_in as u64);
        self.bytes_out.inc_by(bytes_out as u64);
    }
}

/// Per-client figures in `/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSnapshot {
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// `/stat?html=0`.
#[derive(Debug, Clone, Serialize)]
pub struct StatSnapshot {
    pub pid: u32,
    pub num_threads: usize,
    pub memory_budget: u64,
    pub unix_socket: String,
    pub connections: i64,
    pub queue_depth: i64,
    pub waiting_bytes: i64,
    pub working_bytes: i64,
    pub budget_bytes: i64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// bytes_out / bytes_in (0 before any request).
    pub ratio: f64,
    pub errors: u64,
    pub clients: BTreeMap<String, ClientSnapshot>,
}

impl ZipStats {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let by_client =
            |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["client"]);
        let s = ZipStats {
            requests: by_client("zipserver_requests_total", "Blocks compressed")?,
            bytes_in: by_client("zipserver_bytes_in_total", "Uncompressed bytes received")?,
            bytes_out: by_client("zipserver_bytes_out_total", "Compressed bytes sent back")?,
            errors: IntCounter::new("zipserver_errors_total", "Requests answered with an error")?,
            connections: IntGauge::new("zipserver_connections", "Open client connections")?,
            queue_depth: IntGauge::new("zipserver_queue_depth", "Blocks waiting for a thread")?,
            waiting_bytes: IntGauge::new("zipserver_waiting_bytes", "Bytes of blocks waiting")?,
            working_bytes: IntGauge::new(
                "zipserver_working_bytes",
                "Bytes of blocks being compressed",
            )?,
            budget_bytes: IntGauge::new("zipserver_budget_bytes", "Memory budget in use")?,
            clients: Mutex::new(Vec::new()),
        };
        registry.register(Box::new(s.requests.clone()))?;
        registry.register(Box::new(s.bytes_in.clone()))?;
        registry.register(Box::new(s.bytes_out.clone()))?;
        registry.register(Box::new(s.errors.clone()))?;
        registry.register(Box::new(s.connections.clone()))?;
        registry.register(Box::new(s.queue_depth.clone()))?;
        registry.register(Box::new(s.waiting_bytes.clone()))?;
        registry.register(Box::new(s.working_bytes.clone()))?;
        registry.register(Box::new(s.budget_bytes.clone()))?;
        Ok(s)
    }

    pub fn add_client(&self, client: &str) {
        let mut c = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if !c.iter().any(|x| x == client) {
            c.push(client.to_owned());
        }
    }

    /// The counters of `client`, looked up once per connection (a label
    /// lookup per block would cost more than the block's round trip).
    pub fn client(&self, client: &str) -> ClientCounters {
        self.add_client(client);
        ClientCounters {
            requests: self.requests.with_label_values(&[client]),
            bytes_in: self.bytes_in.with_label_values(&[client]),
            bytes_out: self.bytes_out.with_label_values(&[client]),
        }
    }

    pub fn snapshot(
        &self,
        num_threads: usize,
        memory_budget: u64,
        unix_socket: String,
    ) -> StatSnapshot {
        let names = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let clients: BTreeMap<String, ClientSnapshot> = names
            .into_iter()
            .map(|n| {
                let c = ClientSnapshot {
                    requests: self.requests.with_label_values(&[&n]).get(),
                    bytes_in: self.bytes_in.with_label_values(&[&n]).get(),
                    bytes_out: self.bytes_out.with_label_values(&[&n]).get(),
                };
                (n, c)
            })
            .collect();
        let sum = |f: fn(&ClientSnapshot) -> u64| clients.values().map(f).sum::<u64>();
        let (bytes_in, bytes_out) = (sum(|c| c.bytes_in), sum(|c| c.bytes_out));
        StatSnapshot {
            pid: std::process::id(),
            num_threads,
            memory_budget,
            unix_socket,
            connections: self.connections.get(),
            queue_depth: self.queue_depth.get(),
            waiting_bytes: self.waiting_bytes.get(),
            working_bytes: self.working_bytes.get(),
            budget_bytes: self.budget_bytes.get(),
            requests: sum(|c| c.requests),
            bytes_in,
            bytes_out,
            ratio: if bytes_in == 0 {
                0.0
            } else {
                bytes_out as f64 / bytes_in as f64
            },
            errors: self.errors.get(),
            clients,
        }
    }
}
