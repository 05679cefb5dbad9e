//! The worker's own counters, served by `/stat`.

use crate::rocks::open_race::OpenRace;
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a `/dcompact` request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// 400: not a job.
    Malformed,
    /// 401: missing or wrong token.
    Unauthorized,
    /// 412: a job the worker will not run (paths, names, stopping, duplicate).
    Refused,
    /// 503: the queue is full (running, waiting and being admitted).
    Busy,
    /// 503: `MAX_ADMISSIONS` jobs are being admitted.
    AdmissionsFull,
    /// 408: the request body did not arrive within `HTTP_BODY_TIMEOUT`.
    Timeout,
    /// 503 `stopping`: the worker drains.
    Draining,
    /// 500: admission panicked (a bug); the worker keeps serving.
    Panicked,
}

impl RejectReason {
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Unauthorized => "unauthorized",
            RejectReason::Refused => "refused",
            RejectReason::Busy => "busy",
            RejectReason::AdmissionsFull => "admissions_full",
            RejectReason::Timeout => "timeout",
            RejectReason::Draining => "draining",
            RejectReason::Panicked => "panicked",
        }
    }

    pub const ALL: [RejectReason; 8] = [
        RejectReason::Malformed,
        RejectReason::Unauthorized,
        RejectReason::Refused,
        RejectReason::Busy,
        RejectReason::AdmissionsFull,
        RejectReason::Timeout,
        RejectReason::Draining,
        RejectReason::Panicked,
    ];
}

/// Counters since start; a snapshot is `/stat?html=0`'s `counters`.
#[derive(Debug, Clone, Serialize)]
pub struct Counters {
    pub accepted: u64,
    pub succeeded: u64,
    /// By outcome name.
    pub failed: BTreeMap<&'static str, u64>,
    /// By reject reason.
    pub rejected: BTreeMap<&'static str, u64>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Secondary opens run again after losing a race with the primary, by
    /// race ([`OpenRace`] names, zeroes included).
    pub open_retries: BTreeMap<&'static str, u64>,
    /// Attempts that still lost the race after their last retry.
    pub open_races_unresolved: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            accepted: 0,
            succeeded: 0,
            failed: super::outcome::Outcome::FAILURE_NAMES
                .iter()
                .map(|n| (*n, 0))
                .collect(),
            rejected: RejectReason::ALL.iter().map(|r| (r.name(), 0)).collect(),
            bytes_read: 0,
            bytes_written: 0,
            open_retries: OpenRace::ALL.iter().map(|r| (r.name(), 0)).collect(),
            open_races_unresolved: 0,
        }
    }
}

impl Counters {
    pub fn reject(&mut self, reason: RejectReason) {
        *self.rejected.entry(reason.name()).or_default() += 1;
    }

    /// One attempt's open retries, and whether it lost after the last.
    pub fn open_races(&mut self, retried: &[OpenRace], unresolved: bool) {
        for race in retried {
            *self.open_retries.entry(race.name()).or_default() += 1;
        }
        self.open_races_unresolved += u64::from(unresolved);
    }
}
