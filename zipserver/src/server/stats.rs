//! The zipserver's counters: totals and gauges as Prometheus metrics (built
//! with [`ZipStats::new`] on a registry the caller owns), and per-client
//! counts for `/stat`, kept for the most recent [`MAX_CLIENTS`] clients
//! (clients are attempts: an unbounded label set would grow forever).
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `zipserver_requests_total` | counter | blocks compressed |
//! | `zipserver_bytes_in_total` | counter | uncompressed bytes received |
//! | `zipserver_bytes_out_total` | counter | compressed bytes sent back |
//! | `zipserver_errors_total` | counter | requests answered with an error |
//! | `zipserver_clients_total` | counter | clients (attempts) that said hello |
//! | `zipserver_connections` | gauge | open client connections |
//! | `zipserver_queue_depth` | gauge | blocks waiting for budget or a compression slot |
//! | `zipserver_waiting_bytes` | gauge | bytes of blocks waiting |
//! | `zipserver_working_bytes` | gauge | bytes of blocks being compressed |
//! | `zipserver_budget_bytes` | gauge | memory budget in use |
//! | `zipserver_budget_max_bytes` | gauge | the most memory budget ever in use at once |
//! | `zipserver_rings` | gauge | shared-memory rings of connected children |
//! | `zipserver_ring_requests_total` | counter | blocks of those compressed (part of `zipserver_requests_total`) |
//! | `zipserver_wakeups_total` | counter | times a sleeping compression thread was woken: blocks per wake-up = ring requests / wake-ups |
//! | `zipserver_abandoned_total` | counter | blocks answered after their client had stopped waiting (counted as requests too) |

use prometheus::{IntCounter, IntGauge, Registry};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Clients whose counts `/stat` keeps.
pub const MAX_CLIENTS: usize = 1000;

pub struct ZipStats {
    pub requests: IntCounter,
    pub bytes_in: IntCounter,
    pub bytes_out: IntCounter,
    pub errors: IntCounter,
    pub clients_total: IntCounter,
    pub connections: IntGauge,
    pub queue_depth: IntGauge,
    pub waiting_bytes: IntGauge,
    pub working_bytes: IntGauge,
    pub budget_bytes: IntGauge,
    pub budget_max_bytes: IntGauge,
    pub rings: IntGauge,
    pub ring_requests: IntCounter,
    pub wakeups: IntCounter,
    pub abandoned: IntCounter,
    /// The most recent clients, oldest first.
    clients: Mutex<VecDeque<(String, Arc<ClientAtomics>)>>,
}

#[derive(Default)]
struct ClientAtomics {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// One client's counters, held by its connection.
pub struct ClientCounters {
    own: Arc<ClientAtomics>,
    requests: IntCounter,
    bytes_in: IntCounter,
    bytes_out: IntCounter,
}

impl ClientCounters {
    /// Counts one compressed block.
    pub fn count(&self, bytes_in: usize, bytes_out: usize) {
        let (i, o) = (bytes_in as u64, bytes_out as u64);
        self.own.requests.fetch_add(1, Ordering::Relaxed);
        self.own.bytes_in.fetch_add(i, Ordering::Relaxed);
        self.own.bytes_out.fetch_add(o, Ordering::Relaxed);
        self.requests.inc();
        self.bytes_in.inc_by(i);
        self.bytes_out.inc_by(o);
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
    pub budget_max_bytes: i64,
    pub rings: i64,
    /// Blocks in the rings waiting for or under compression (filled in by
    /// the caller, which sees the rings).
    pub ring_in_flight: u64,
    pub requests: u64,
    pub ring_requests: u64,
    pub wakeups: u64,
    pub abandoned: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// bytes_out / bytes_in (0 before any request).
    pub ratio: f64,
    pub errors: u64,
    pub clients_total: u64,
    /// The most recent clients (attempt names), up to [`MAX_CLIENTS`].
    pub clients: BTreeMap<String, ClientSnapshot>,
}

impl ZipStats {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let s = ZipStats {
            requests: IntCounter::new("zipserver_requests_total", "Blocks compressed")?,
            bytes_in: IntCounter::new("zipserver_bytes_in_total", "Uncompressed bytes received")?,
            bytes_out: IntCounter::new("zipserver_bytes_out_total", "Compressed bytes sent back")?,
            errors: IntCounter::new("zipserver_errors_total", "Requests answered with an error")?,
            clients_total: IntCounter::new(
                "zipserver_clients_total",
                "Clients (attempts) that said hello",
            )?,
            connections: IntGauge::new("zipserver_connections", "Open client connections")?,
            queue_depth: IntGauge::new(
                "zipserver_queue_depth",
                "Blocks waiting for budget or a compression slot",
            )?,
            waiting_bytes: IntGauge::new("zipserver_waiting_bytes", "Bytes of blocks waiting")?,
            working_bytes: IntGauge::new(
                "zipserver_working_bytes",
                "Bytes of blocks being compressed",
            )?,
            budget_bytes: IntGauge::new("zipserver_budget_bytes", "Memory budget in use")?,
            budget_max_bytes: IntGauge::new(
                "zipserver_budget_max_bytes",
                "The most memory budget ever in use at once",
            )?,
            rings: IntGauge::new(
                "zipserver_rings",
                "Shared-memory rings of connected children",
            )?,
            ring_requests: IntCounter::new(
                "zipserver_ring_requests_total",
                "Blocks compressed from shared-memory rings",
            )?,
            wakeups: IntCounter::new(
                "zipserver_wakeups_total",
                "Times a sleeping compression thread was woken",
            )?,
            abandoned: IntCounter::new(
                "zipserver_abandoned_total",
                "Blocks compressed after their client had stopped waiting",
            )?,
            clients: Mutex::new(VecDeque::new()),
        };
        for c in [
            &s.requests,
            &s.bytes_in,
            &s.bytes_out,
            &s.errors,
            &s.clients_total,
            &s.ring_requests,
            &s.wakeups,
            &s.abandoned,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        for g in [
            &s.connections,
            &s.queue_depth,
            &s.waiting_bytes,
            &s.working_bytes,
            &s.budget_bytes,
            &s.budget_max_bytes,
            &s.rings,
        ] {
            registry.register(Box::new(g.clone()))?;
        }
        Ok(s)
    }

    /// The counters of `client` (a child opens several connections under
    /// one name; they share its counts).
    pub fn client(&self, client: &str) -> ClientCounters {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let own = match clients.iter().find(|(n, _)| n == client) {
            Some((_, own)) => own.clone(),
            None => {
                self.clients_total.inc();
                let own = Arc::new(ClientAtomics::default());
                clients.push_back((client.to_owned(), own.clone()));
                if clients.len() > MAX_CLIENTS {
                    clients.pop_front();
                }
                own
            }
        };
        ClientCounters {
            own,
            requests: self.requests.clone(),
            bytes_in: self.bytes_in.clone(),
            bytes_out: self.bytes_out.clone(),
        }
    }

    /// Records the budget in use, and the most ever.
    pub fn set_budget(&self, used: u64) {
        let used = used as i64;
        self.budget_bytes.set(used);
        if used > self.budget_max_bytes.get() {
            self.budget_max_bytes.set(used);
        }
    }

    pub fn snapshot(
        &self,
        num_threads: usize,
        memory_budget: u64,
        unix_socket: String,
    ) -> StatSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, c)| {
                let s = ClientSnapshot {
                    requests: get(&c.requests),
                    bytes_in: get(&c.bytes_in),
                    bytes_out: get(&c.bytes_out),
                };
                (n.clone(), s)
            })
            .collect();
        let (bytes_in, bytes_out) = (self.bytes_in.get(), self.bytes_out.get());
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
            budget_max_bytes: self.budget_max_bytes.get(),
            rings: self.rings.get(),
            ring_in_flight: 0,
            requests: self.requests.get(),
            ring_requests: self.ring_requests.get(),
            wakeups: self.wakeups.get(),
            abandoned: self.abandoned.get(),
            bytes_in,
            bytes_out,
            ratio: if bytes_in == 0 {
                0.0
            } else {
                bytes_out as f64 / bytes_in as f64
            },
            errors: self.errors.get(),
            clients_total: self.clients_total.get(),
            clients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_share_counts_by_name_and_are_bounded() {
        let s = ZipStats::new(&Registry::new()).unwrap();
        let a1 = s.client("a");
        let a2 = s.client("a");
        a1.count(100, 10);
        a2.count(50, 5);
        s.client("b").count(7, 7);
        let snap = s.snapshot(2, 1, String::new());
        assert_eq!(snap.clients["a"].bytes_in, 150);
        assert_eq!(snap.clients["a"].requests, 2);
        assert_eq!((snap.requests, snap.bytes_in, snap.bytes_out), (3, 157, 22));
        for i in 0..MAX_CLIENTS {
            s.client(&format!("c{i}"));
        }
        let snap = s.snapshot(2, 1, String::new());
        assert_eq!(snap.clients.len(), MAX_CLIENTS);
        assert!(!snap.clients.contains_key("a"), "the oldest went first");
        assert_eq!(snap.bytes_in, 157, "totals keep every client");
        assert_eq!(snap.clients_total, 2 + MAX_CLIENTS as u64);
    }
}
