//! The worker list and the choice of a worker for each job.
//!
//! `load_balance`:
//! - `kRoundRobin` (default): in turn, from a random start, so many hosters
//!   do not all begin with the same worker;
//! - `kWeight`: smooth weighted round robin (as nginx does it): every pick
//!   adds each worker's weight to its credit, takes the worker with the most
//!   credit and charges it the total. Over any run of picks each worker's
//!   share is its weight's share, exactly and deterministically, and
//!   heavy workers' turns are spread out rather than bunched.
//!
//! Either way a worker that failed is skipped for `worker_backoff`.

use super::config::WorkerEndpoint;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How jobs are spread over workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalance {
    RoundRobin,
    Weight,
}

impl LoadBalance {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "kRoundRobin" | "RoundRobin" | "round_robin" => Some(LoadBalance::RoundRobin),
            "kWeight" | "Weight" | "weight" => Some(LoadBalance::Weight),
            _ => None,
        }
    }
}

struct Slot {
    endpoint: WorkerEndpoint,
    /// Found in etcd rather than listed in `http_workers`.
    discovered: bool,
    /// Smooth weighted round robin credit.
    credit: i64,
    /// Until when the worker is skipped.
    backoff_until: Option<Instant>,
    /// Its last registration in etcd said every slot and every waiting
    /// place was taken: chosen only when no other worker is available.
    full: bool,
}

struct State {
    next: usize,
    /// Static workers first, then those discovered in etcd.
    slots: Vec<Slot>,
}

/// The workers a hoster may choose: `http_workers` merged with those
/// registered in etcd. Identified by `base_url`; a worker listed in both is
/// one worker (its static weight wins).
pub struct Workers {
    balance: LoadBalance,
    backoff: Duration,
    state: Mutex<State>,
}

impl Workers {
    pub fn new(endpoints: Vec<WorkerEndpoint>, balance: LoadBalance, backoff: Duration) -> Self {
        let n = endpoints.len();
        Workers {
            state: Mutex::new(State {
                next: if n == 0 { 0 } else { fastrand::usize(..n) },
                slots: endpoints
                    .into_iter()
                    .map(|endpoint| Slot {
                        endpoint,
                        discovered: false,
                        credit: 0,
                        backoff_until: None,
                        full: false,
                    })
                    .collect(),
            }),
            balance,
            backoff,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every worker in rotation, backing off or not.
    pub fn list(&self) -> Vec<WorkerEndpoint> {
        self.lock()
            .slots
            .iter()
            .map(|s| s.endpoint.clone())
            .collect()
    }

    /// Replaces the discovered workers with `found`, keeping the credit and
    /// backoff of those that stay.
    pub fn set_discovered(&self, found: Vec<WorkerEndpoint>) {
        let mut st = self.lock();
        st.slots
            .retain(|s| !s.discovered || found.iter().any(|f| f.base_url == s.endpoint.base_url));
        for f in found {
            match st
                .slots
                .iter_mut()
                .find(|s| s.endpoint.base_url == f.base_url)
            {
                Some(s) if s.discovered => s.endpoint = f,
                Some(_) => {}
                None => st.slots.push(Slot {
                    endpoint: f,
                    discovered: true,
                    credit: 0,
                    backoff_until: None,
                    full: false,
                }),
            }
        }
    }

    /// Records what the worker at `base_url` last registered: whether all
    /// its slots and waiting places were taken (it would answer 503).
    pub fn set_full(&self, base_url: &str, full: bool) {
        let mut st = self.lock();
        if let Some(s) = st
            .slots
            .iter_mut()
            .find(|s| s.endpoint.base_url == base_url)
        {
            s.full = full;
        }
    }

    /// The next worker not backing off, or `None`. Workers registered as
    /// full are passed over while another one is available (their
    /// registration may be up to a moment old, so they stay a last resort).
    pub fn pick(&self) -> Option<WorkerEndpoint> {
        let now = Instant::now();
        let mut st = self.lock();
        let n = st.slots.len();
        let live: Vec<bool> = st
            .slots
            .iter()
            .map(|s| s.backoff_until.is_none_or(|t| t <= now))
            .collect();
        let roomy: Vec<bool> = st
            .slots
            .iter()
            .zip(&live)
            .map(|(s, live)| *live && !s.full)
            .collect();
        let available = if roomy.contains(&true) { roomy } else { live };
        let chosen = match self.balance {
            LoadBalance::RoundRobin => (0..n).find_map(|_| {
                let i = st.next % n;
                st.next = st.next.wrapping_add(1);
                available[i].then_some(i)
            }),
            LoadBalance::Weight => {
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in (0..n).filter(|i| available[*i]) {
                    let w = i64::from(st.slots[i].endpoint.weight.max(1));
                    st.slots[i].credit += w;
                    total += w;
                    if best.is_none_or(|b| st.slots[i].credit > st.slots[b].credit) {
                        best = Some(i);
                    }
                }
                let b = best?;
                st.slots[b].credit -= total;
                Some(b)
            }
        };
        chosen.map(|i| st.slots[i].endpoint.clone())
    }

    /// Skips the worker at `base_url` for the backoff period.
    pub fn failed(&self, base_url: &str) {
        let until = Instant::now() + self.backoff;
        let mut st = self.lock();
        if let Some(s) = st
            .slots
            .iter_mut()
            .find(|s| s.endpoint.base_url == base_url)
        {
            s.backoff_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(u: &str, weight: u32) -> WorkerEndpoint {
        WorkerEndpoint::at(u, weight)
    }

    #[test]
    fn round_robin_skips_failed_workers() {
        let w = Workers::new(
            vec![
                ep("http://a:1", 1),
                ep("http://b:1", 1),
                ep("http://c:1", 1),
            ],
            LoadBalance::RoundRobin,
            Duration::from_secs(60),
        );
        let mut seen: Vec<String> = (0..3)
            .filter_map(|_| w.pick())
            .map(|e| e.base_url)
            .collect();
        seen.sort();
        assert_eq!(seen, ["http://a:1", "http://b:1", "http://c:1"]);
        w.failed("http://b:1");
        assert!((0..6)
            .filter_map(|_| w.pick())
            .all(|e| e.base_url != "http://b:1"));
        w.failed("http://a:1");
        w.failed("http://c:1");
        assert_eq!(w.pick(), None);
        assert_eq!(
            Workers::new(vec![], LoadBalance::RoundRobin, Duration::ZERO).pick(),
            None
        );
    }

    #[test]
    fn weights_give_exact_smooth_shares() {
        let w = Workers::new(
            vec![ep("http://a:1", 1), ep("http://b:1", 3)],
            LoadBalance::Weight,
            Duration::from_secs(60),
        );
        let picks: Vec<usize> = (0..40)
            .filter_map(|_| w.pick())
            .map(|e| usize::from(e.base_url == "http://b:1"))
            .collect();
        assert_eq!(picks.iter().filter(|i| **i == 0).count(), 10);
        assert_eq!(picks.iter().filter(|i| **i == 1).count(), 30);
        // Smooth: the light worker's turns are spread out, one in every four.
        for chunk in picks.chunks(4) {
            assert_eq!(chunk.iter().filter(|i| **i == 0).count(), 1, "{picks:?}");
        }
        w.failed("http://b:1");
        assert!((0..5)
            .filter_map(|_| w.pick())
            .all(|e| e.base_url == "http://a:1"));
        assert_eq!(LoadBalance::parse("kWeight"), Some(LoadBalance::Weight));
        assert_eq!(LoadBalance::parse("kRandom"), None);
    }

    #[test]
    fn full_workers_are_a_last_resort() {
        for balance in [LoadBalance::RoundRobin, LoadBalance::Weight] {
            let w = Workers::new(
                vec![ep("http://a:1", 1), ep("http://b:1", 3)],
                balance,
                Duration::from_secs(60),
            );
            w.set_full("http://b:1", true);
            assert!(
                (0..8)
                    .filter_map(|_| w.pick())
                    .all(|e| e.base_url == "http://a:1"),
                "{balance:?}"
            );
            // Nothing else available: the full one is still tried.
            w.failed("http://a:1");
            assert_eq!(w.pick().map(|e| e.base_url).as_deref(), Some("http://b:1"));
            w.set_full("http://b:1", false);
            w.set_full("http://nobody:1", true);
            assert_eq!(w.pick().map(|e| e.base_url).as_deref(), Some("http://b:1"));
        }
    }

    #[test]
    fn discovered_workers_merge_with_static_ones() {
        let w = Workers::new(
            vec![ep("http://a:1", 1)],
            LoadBalance::RoundRobin,
            Duration::from_secs(60),
        );
        w.set_discovered(vec![ep("http://a:1", 9), ep("http://b:1", 2)]);
        let urls =
            |w: &Workers| -> Vec<String> { w.list().into_iter().map(|e| e.base_url).collect() };
        assert_eq!(urls(&w), ["http://a:1", "http://b:1"]);
        assert_eq!(w.list()[0].weight, 1, "the static entry wins");
        w.failed("http://b:1");
        w.set_discovered(vec![ep("http://b:1", 2), ep("http://c:1", 1)]);
        assert_eq!(urls(&w), ["http://a:1", "http://b:1", "http://c:1"]);
        assert!(
            (0..6)
                .filter_map(|_| w.pick())
                .all(|e| e.base_url != "http://b:1"),
            "backoff kept"
        );
        w.set_discovered(vec![]);
        assert_eq!(urls(&w), ["http://a:1"]);
    }
}
