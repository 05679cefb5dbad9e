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

struct State {
    next: usize,
    /// Smooth weighted round robin credit per worker.
    credit: Vec<i64>,
    /// Until when each worker is skipped.
    backoff_until: Vec<Option<Instant>>,
}

pub struct Workers {
    endpoints: Vec<WorkerEndpoint>,
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
                credit: vec![0; n],
                backoff_until: vec![None; n],
            }),
            endpoints,
            balance,
            backoff,
        }
    }

    pub fn endpoint(&self, index: usize) -> &WorkerEndpoint {
        &self.endpoints[index]
    }

    /// The next worker not backing off, or `None`.
    pub fn pick(&self) -> Option<usize> {
        let n = self.endpoints.len();
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let available: Vec<bool> = st
            .backoff_until
            .iter()
            .map(|u| u.is_none_or(|t| t <= now))
            .collect();
        match self.balance {
            LoadBalance::RoundRobin => {
                for _ in 0..n {
                    let i = st.next % n;
                    st.next = st.next.wrapping_add(1);
                    if available[i] {
                        return Some(i);
                    }
                }
                None
            }
            LoadBalance::Weight => {
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in (0..n).filter(|i| available[*i]) {
                    let w = i64::from(self.endpoints[i].weight.max(1));
                    st.credit[i] += w;
                    total += w;
                    if best.is_none_or(|b| st.credit[i] > st.credit[b]) {
                        best = Some(i);
                    }
                }
                let b = best?;
                st.credit[b] -= total;
                Some(b)
            }
        }
    }

    /// Skips worker `index` for the backoff period.
    pub fn failed(&self, index: usize) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = st.backoff_until.get_mut(index) {
            *slot = Some(Instant::now() + self.backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(u: &str, weight: u32) -> WorkerEndpoint {
        WorkerEndpoint {
            base_url: u.into(),
            web_url: None,
            weight,
        }
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
        let mut seen: Vec<usize> = (0..3).filter_map(|_| w.pick()).collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2]);
        w.failed(1);
        assert!((0..6).filter_map(|_| w.pick()).all(|i| i != 1));
        w.failed(0);
        w.failed(2);
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
        let picks: Vec<usize> = (0..40).filter_map(|_| w.pick()).collect();
        assert_eq!(picks.iter().filter(|i| **i == 0).count(), 10);
        assert_eq!(picks.iter().filter(|i| **i == 1).count(), 30);
        // Smooth: the light worker's turns are spread out, one in every four.
        for chunk in picks.chunks(4) {
            assert_eq!(chunk.iter().filter(|i| **i == 0).count(), 1, "{picks:?}");
        }
        w.failed(1);
        assert!((0..5).filter_map(|_| w.pick()).all(|i| i == 0));
        assert_eq!(LoadBalance::parse("kWeight"), Some(LoadBalance::Weight));
        assert_eq!(LoadBalance::parse("kRandom"), None);
    }
}
