//! Bounded admission: what a `/dcompact` request holds before the worker
//! reads anything for it.
//!
//! Admitting a job mounts the hoster's storage (`NFS_DYNAMIC_MOUNT`) and
//! reads its `CURRENT`, input files and OPTIONS file on a blocking thread,
//! perhaps from a slow or dead NFS server. Two bounds keep many submissions,
//! or one bad server, from taking the worker's threads:
//!
//! - a [`Reservation`] of one of the queue's places
//!   (`MAX_PARALLEL_COMPACTIONS` + `MAX_WAITING_COMPACTIONS`), taken first,
//!   so a full worker answers 503 before it touches a file. The request
//!   holds it while its job is admitted, then the queue entry holds it until
//!   the attempt ends; wherever it is dropped (admission failed, the client
//!   went away, the attempt ended) the place is free again.
//! - an [`AdmissionPermit`] (`MAX_ADMISSIONS`), taken next and held by the
//!   admission work itself until it returns, even when the request that
//!   started it is gone: no more than `MAX_ADMISSIONS` threads are ever
//!   admitting, and a request beyond that is answered 503 at once rather
//!   than queued.
//!
//! Both are counts with a cap ([`Limit`]); taking one never waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A count of things held, never above its capacity.
#[derive(Debug)]
pub struct Limit {
    held: AtomicUsize,
    capacity: usize,
}

impl Limit {
    pub fn new(capacity: usize) -> Arc<Limit> {
        Arc::new(Limit {
            held: AtomicUsize::new(0),
            capacity,
        })
    }

    /// One more held, unless all are.
    fn try_hold(self: &Arc<Self>) -> Option<Held> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Held(self.clone()))
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// One unit of a [`Limit`], given back when dropped.
#[derive(Debug)]
struct Held(Arc<Limit>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place in the queue (running or waiting), from before admission until
/// the attempt ends.
#[derive(Debug)]
#[must_use = "the place is given back when the reservation is dropped"]
pub struct Reservation {
    _place: Held,
}

/// The right to run admission work on a blocking thread.
#[derive(Debug)]
#[must_use = "the permit is given back when dropped"]
pub struct AdmissionPermit {
    _permit: Held,
}

/// The queue's places and the admission permits.
#[derive(Debug)]
pub struct AdmissionGate {
    places: Arc<Limit>,
    admissions: Arc<Limit>,
}

/// Why a submission could not enter admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Every place is taken by a running, waiting or admitting attempt.
    QueueFull,
    /// `MAX_ADMISSIONS` admissions are in progress.
    AdmissionsFull,
}

impl AdmissionGate {
    /// `places`: `MAX_PARALLEL_COMPACTIONS + MAX_WAITING_COMPACTIONS`;
    /// `admissions`: `MAX_ADMISSIONS`.
    pub fn new(places: usize, admissions: usize) -> Self {
        AdmissionGate {
            places: Limit::new(places),
            admissions: Limit::new(admissions),
        }
    }

    /// A place, then a permit; neither when either is wanting.
    pub fn enter(&self) -> Result<(Reservation, AdmissionPermit), Closed> {
        let place = self.places.try_hold().ok_or(Closed::QueueFull)?;
        let permit = self.admissions.try_hold().ok_or(Closed::AdmissionsFull)?;
        Ok((
            Reservation { _place: place },
            AdmissionPermit { _permit: permit },
        ))
    }

    /// Places taken: attempts running, waiting or being admitted.
    pub fn places_taken(&self) -> usize {
        self.places.held()
    }

    /// Admissions in progress (their blocking work not yet returned).
    pub fn admitting(&self) -> usize {
        self.admissions.held()
    }

    pub fn max_admissions(&self) -> usize {
        self.admissions.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_refused_before_a_permit_is_taken() {
        let gate = AdmissionGate::new(2, 4);
        let a = gate.enter().unwrap();
        let b = gate.enter().unwrap();
        assert_eq!(gate.enter().unwrap_err(), Closed::QueueFull);
        assert_eq!((gate.places_taken(), gate.admitting()), (2, 2));
        // Admission of `a` ended; its job waits in the queue, still
        // holding its place.
        let (place_a, permit_a) = a;
        drop(permit_a);
        assert_eq!(gate.enter().unwrap_err(), Closed::QueueFull);
        assert_eq!(gate.admitting(), 1, "a refused entry holds no permit");
        // The attempt ended: the place is free.
        drop(place_a);
        let c = gate.enter().unwrap();
        drop((b, c));
        assert_eq!((gate.places_taken(), gate.admitting()), (0, 0));
    }

    #[test]
    fn beyond_the_admissions_a_request_is_refused_and_gives_its_place_back() {
        let gate = AdmissionGate::new(10, 2);
        let held: Vec<_> = (0..2).map(|_| gate.enter().unwrap()).collect();
        assert_eq!(gate.enter().unwrap_err(), Closed::AdmissionsFull);
        assert_eq!(
            gate.places_taken(),
            2,
            "the refused request's place was given back"
        );
        assert_eq!(gate.max_admissions(), 2);
        drop(held);
        assert!(gate.enter().is_ok());
    }

    #[test]
    fn holds_never_exceed_the_capacity_under_contention() {
        let gate = Arc::new(AdmissionGate::new(3, 3));
        let peak = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (gate, peak) = (gate.clone(), peak.clone());
                s.spawn(move || {
                    for _ in 0..10_000 {
                        if let Ok(held) = gate.enter() {
                            peak.fetch_max(gate.places_taken(), Ordering::Relaxed);
                            drop(held);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 3);
        assert_eq!((gate.places_taken(), gate.admitting()), (0, 0));
    }
}
