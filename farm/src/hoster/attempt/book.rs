//! What a service shares with its remote attempts: the attempt numbers of
//! each job, how many attempts are in flight, and the wake-ups etcd's
//! "done" events deliver.

use crate::hoster::completions::Completions;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct AttemptBook {
    /// The next attempt number of each job.
    numbers: Mutex<HashMap<u64, u32>>,
    /// Attempts between a successful submission and their end.
    in_flight: AtomicUsize,
    completions: Arc<Completions>,
}

impl AttemptBook {
    pub fn new(completions: Arc<Completions>) -> Arc<Self> {
        Arc::new(AttemptBook {
            completions,
            ..Default::default()
        })
    }

    /// The next attempt number of job `job_id`: 0, 1, ...
    pub fn next_attempt(&self, job_id: u64) -> u32 {
        let mut numbers = self.numbers.lock().unwrap_or_else(|p| p.into_inner());
        let n = numbers.entry(job_id).or_insert(0);
        let this = *n;
        *n += 1;
        this
    }

    /// A job's attempts are numbered while it lives; RocksDB never reuses a
    /// job id within one open DB.
    pub fn forget_job(&self, job_id: u64) {
        self.numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job_id);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(super) fn enter_flight(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn leave_flight(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn completions(&self) -> &Arc<Completions> {
        &self.completions
    }
}
