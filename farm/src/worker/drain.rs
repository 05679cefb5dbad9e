//! Draining: how a worker leaves the farm without losing an attempt.
//!
//! A drain begins on `POST /drain`, SIGUSR1, the first SIGTERM or SIGINT
//! (what `systemctl stop` sends), or a termination notice
//! (`TERMINATION_CHECK_URL`, see [`crate::worker::termination_check`]).
//! From then on the worker
//!
//! 1. leaves etcd (hosters that discover workers there stop picking it);
//! 2. answers every new `/dcompact` with 503 `{"status":"stopping"}`, the
//!    answer after which a hoster tries another worker, and `/health` with
//!    412 `stopping`;
//! 3. runs the attempts it accepted, queued ones included, for at most
//!    `SHUTDOWN_GRACE`, then cancels what still runs;
//! 4. keeps answering `/probe` until every succeeded attempt's result was
//!    collected (a probe answered it, or its hoster cancelled it) or is
//!    older than `RESULT_RETENTION`;
//! 5. exits.
//!
//! A second SIGTERM or SIGINT (or [`Drain::stop_now`]) skips what is left
//! of 3 and 4: running attempts are cancelled at once. The steps after the
//! trigger are [`crate::worker::drain_wait`]; this file holds the trigger
//! and the state `/stat`, `/metrics` and the web view show.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// What began a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainCause {
    /// `POST /drain`.
    Request,
    /// A signal: SIGUSR1, SIGTERM or SIGINT.
    Signal(&'static str),
    /// `TERMINATION_CHECK_URL` answered 200.
    TerminationNotice,
}

impl std::fmt::Display for DrainCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainCause::Request => f.write_str("POST /drain"),
            DrainCause::Signal(name) => f.write_str(name),
            DrainCause::TerminationNotice => f.write_str("TERMINATION_CHECK_URL"),
        }
    }
}

/// `/stat`'s `drain`: present once a drain began.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DrainSnapshot {
    /// What began it: `POST /drain`, `SIGUSR1`, `SIGTERM`, `SIGINT` or
    /// `TERMINATION_CHECK_URL`.
    pub cause: String,
    /// When it began, milliseconds since the Unix epoch.
    pub since_unix_ms: u64,
    /// How long ago it began.
    pub elapsed_ms: u64,
}

struct Began {
    cause: DrainCause,
    at: Instant,
    wall: SystemTime,
}

/// The drain trigger, shared by the signal handlers, `POST /drain`, the
/// termination check and the supervisor (which shows it).
#[derive(Default)]
pub struct Drain {
    began: Mutex<Option<Began>>,
    /// Cancelled when the drain begins.
    begun: CancellationToken,
    /// Cancelled when the rest of the drain is to be skipped.
    now: CancellationToken,
}

impl Drain {
    pub fn new() -> Arc<Drain> {
        Arc::new(Drain::default())
    }

    /// Begins the drain; `false` when it had begun already.
    pub fn begin(&self, cause: DrainCause) -> bool {
        let mut began = self.began.lock().unwrap_or_else(|p| p.into_inner());
        if began.is_some() {
            return false;
        }
        *began = Some(Began {
            cause,
            at: Instant::now(),
            wall: SystemTime::now(),
        });
        drop(began);
        tracing::info!(%cause, "drain begun: leaving etcd, refusing new jobs, finishing accepted attempts");
        self.begun.cancel();
        true
    }

    /// Begins the drain if it had not, and skips its waits: running
    /// attempts are cancelled at once.
    pub fn stop_now(&self, cause: DrainCause) {
        self.begin(cause);
        if !self.now.is_cancelled() {
            tracing::warn!(%cause, "stopping now: cancelling running attempts");
        }
        self.now.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.begun.is_cancelled()
    }

    /// Resolves once the drain began.
    pub async fn begun(&self) {
        self.begun.cancelled().await
    }

    /// Resolves once [`Drain::stop_now`] was called.
    pub async fn stopped_now(&self) {
        self.now.cancelled().await
    }

    pub fn is_stopping_now(&self) -> bool {
        self.now.is_cancelled()
    }

    /// The cause, `None` before the drain began.
    pub fn cause(&self) -> Option<DrainCause> {
        self.lock().as_ref().map(|b| b.cause)
    }

    pub fn snapshot(&self) -> Option<DrainSnapshot> {
        self.lock().as_ref().map(|b| DrainSnapshot {
            cause: b.cause.to_string(),
            since_unix_ms: b
                .wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            elapsed_ms: b.at.elapsed().as_millis() as u64,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Began>> {
        self.began.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begins_once_and_keeps_the_first_cause() {
        let d = Drain::new();
        assert!(!d.is_draining());
        assert_eq!(d.snapshot(), None);
        assert!(d.begin(DrainCause::Signal("SIGUSR1")));
        assert!(!d.begin(DrainCause::Request));
        assert!(d.is_draining());
        assert_eq!(d.cause(), Some(DrainCause::Signal("SIGUSR1")));
        assert_eq!(d.snapshot().unwrap().cause, "SIGUSR1");
        assert!(!d.is_stopping_now());
    }

    #[test]
    fn stop_now_begins_the_drain_too() {
        let d = Drain::new();
        d.stop_now(DrainCause::Signal("SIGTERM"));
        assert!(d.is_draining() && d.is_stopping_now());
        assert_eq!(d.cause(), Some(DrainCause::Signal("SIGTERM")));
    }
}
