//! The worker list: round robin from a random start, skipping workers that
//! failed within `worker_backoff`.

use super::config::WorkerEndpoint;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Workers {
    endpoints: Vec<WorkerEndpoint>,
    next: AtomicUsize,
    /// Until when each worker is skipped.
    backoff_until: Mutex<Vec<Option<Instant>>>,
    backoff: Duration,
}

impl Workers {
    pub fn new(endpoints: Vec<WorkerEndpoint>, backoff: Duration) -> Self {
        let n = endpoints.len();
        Workers {
            next: AtomicUsize::new(if n == 0 { 0 } else { fastrand::usize(..n) }),
            backoff_until: Mutex::new(vec![None; n]),
            endpoints,
            backoff,
        }
    }

    pub fn endpoint(&self, index: usize) -> &WorkerEndpoint {
        &self.endpoints[index]
    }

    /// The next worker not backing off, or `None`.
    pub fn pick(&self) -> Option<usize> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let now = Instant::now();
        let until = self.backoff_until.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..n {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
            if until[i].is_none_or(|t| t <= now) {
                return Some(i);
            }
        }
        None
    }

    /// Skips worker `index` for the backoff period.
    pub fn failed(&self, index: usize) {
        let mut until = self.backoff_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = until.get_mut(index) {
            *slot = Some(Instant::now() + self.backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(u: &str) -> WorkerEndpoint {
        WorkerEndpoint {
            base_url: u.into(),
            web_url: None,
            weight: 1,
        }
    }

    #[test]
    fn round_robin_skips_failed_workers() {
        let w = Workers::new(
            vec![ep("http://a:1"), ep("http://b:1"), ep("http://c:1")],
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
        assert_eq!(Workers::new(vec![], Duration::ZERO).pick(), None);
    }
}
