//! Cancels of attempts the worker does not know yet.
//!
//! A hoster whose `/dcompact` timed out compacts locally and sends
//! `/shutdown` for the attempt, in case the worker got the job after all.
//! The worker may still be admitting it then (mounting, reading OPTIONS):
//! the cancel finds no attempt. It is kept here as a tombstone, and the
//! submission that arrives later is refused instead of running an attempt
//! whose output nobody reads.
//!
//! Tombstones live `ttl` (`RESULT_RETENTION`) and at most `capacity` are
//! kept, the oldest dropped first, so cancels of made-up keys cost a bounded
//! amount of memory.

use crate::protocol::attempt::AttemptKey;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The most tombstones kept at once.
pub const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct Tombstones {
    at: HashMap<AttemptKey, Instant>,
    /// Keys oldest first (with the instant they were recorded at, so that a
    /// key recorded twice is dropped by its newest record only).
    order: VecDeque<(AttemptKey, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl Tombstones {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Tombstones {
            at: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            ttl,
        }
    }

    /// Records a cancel of `key`, which the worker does not know.
    pub fn record(&mut self, key: AttemptKey) {
        let now = Instant::now();
        self.at.insert(key.clone(), now);
        self.order.push_back((key, now));
        while self.at.len() > self.capacity {
            self.drop_oldest();
        }
    }

    /// Whether `key` was cancelled before it arrived; the tombstone is
    /// used up.
    pub fn take(&mut self, key: &AttemptKey) -> bool {
        self.prune();
        self.at.remove(key).is_some()
    }

    /// Drops tombstones older than the ttl.
    pub fn prune(&mut self) {
        while let Some((_, at)) = self.order.front() {
            if at.elapsed() < self.ttl {
                break;
            }
            self.drop_oldest();
        }
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    fn drop_oldest(&mut self) {
        let Some((key, at)) = self.order.pop_front() else {
            return;
        };
        if self.at.get(&key) == Some(&at) {
            self.at.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(job: u64) -> AttemptKey {
        AttemptKey {
            instance_name: "i".into(),
            start_time: 1,
            dbname: "/data/db".into(),
            job_id: job << 32,
            attempt: 0,
        }
    }

    #[test]
    fn a_tombstone_refuses_its_key_once() {
        let mut t = Tombstones::new(10, Duration::from_secs(60));
        t.record(key(1));
        assert!(!t.take(&key(2)));
        assert!(t.take(&key(1)));
        assert!(!t.take(&key(1)));
    }

    #[test]
    fn the_oldest_go_first_beyond_the_capacity() {
        let mut t = Tombstones::new(3, Duration::from_secs(60));
        for j in 0..5 {
            t.record(key(j));
        }
        assert_eq!(t.len(), 3);
        assert!(!t.take(&key(0)) && !t.take(&key(1)));
        assert!(t.take(&key(4)));
        // A key recorded again counts from its newest record.
        let mut t = Tombstones::new(2, Duration::from_secs(60));
        t.record(key(1));
        t.record(key(2));
        t.record(key(1));
        t.record(key(3));
        assert!(t.take(&key(1)) && t.take(&key(3)));
    }

    #[test]
    fn tombstones_expire() {
        let mut t = Tombstones::new(10, Duration::from_millis(20));
        t.record(key(1));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!t.take(&key(1)));
        assert!(t.is_empty());
    }
}
