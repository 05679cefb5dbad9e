//! The end of one run of an attempt, reported exactly once.
//!
//! Three parties may end a run: its thread when the attempt returns, its
//! watchdog when the attempt is abandoned at its deadline (see
//! [`crate::worker::deadline`]), and the drop of an
//! [`super::owned::Attempt`] that never reported (a bug, said so in the
//! log). The first report gives back the run's queue place and hands the
//! end to its sink (the supervisor: the running slot, the counters, the
//! `/probe` answer, the next attempt); any later report is dropped.

use crate::worker::admission_gate::Reservation;
use crate::worker::outcome::Outcome;
use crate::worker::runner::RunResult;
use base64::Engine;
use std::sync::{Arc, Mutex};

/// How a run ended: what the supervisor records and `/probe` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub outcome: Outcome,
    /// RocksDB's serialized result in base64, when succeeded.
    pub result: Option<String>,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl Ended {
    /// An end with no result and nothing read or written.
    pub fn failed(outcome: Outcome) -> Self {
        Ended {
            outcome,
            result: None,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// The end a runner's result makes (its RocksDB result in base64).
    pub fn of_run(r: &RunResult) -> Self {
        Ended {
            outcome: r.outcome.clone(),
            result: r
                .result
                .as_ref()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            bytes_read: r.bytes_read,
            bytes_written: r.bytes_written,
        }
    }
}

/// Where a run's end goes: the supervisor's record of the attempt.
pub type Sink = Box<dyn FnOnce(Ended) + Send>;

/// The once-only end of one run.
pub struct AttemptEnd {
    /// Taken by the first report.
    open: Mutex<Option<(Reservation, Sink)>>,
}

impl AttemptEnd {
    /// The end of a run that holds the queue place `place`.
    pub fn new(place: Reservation, sink: Sink) -> Arc<Self> {
        Arc::new(AttemptEnd {
            open: Mutex::new(Some((place, sink))),
        })
    }

    /// Reports `ended` if the run has not ended yet; `false` (and nothing
    /// done) when it has.
    pub fn report(&self, ended: Ended) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some((place, sink)) = open else {
            return false;
        };
        drop(place);
        sink(ended);
        true
    }

    /// Whether the run has ended.
    pub fn is_reported(&self) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::admission_gate::AdmissionGate;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn only_the_first_report_counts_and_it_gives_the_place_back() {
        let gate = AdmissionGate::new(1, 1);
        let (place, permit) = gate.enter().unwrap();
        drop(permit);
        let reports = Arc::new(AtomicUsize::new(0));
        let seen = reports.clone();
        let end = AttemptEnd::new(
            place,
            Box::new(move |e: Ended| {
                assert_eq!(e.outcome, Outcome::TimedOut);
                seen.fetch_add(1, Ordering::AcqRel);
            }),
        );
        assert!(gate.enter().is_err(), "the place is held until the end");
        assert!(!end.is_reported());
        assert!(end.report(Ended::failed(Outcome::TimedOut)));
        assert!(!end.report(Ended::failed(Outcome::Succeeded)));
        assert!(end.is_reported());
        assert_eq!(reports.load(Ordering::Acquire), 1);
        assert!(gate.enter().is_ok(), "the place is free again");
    }
}
