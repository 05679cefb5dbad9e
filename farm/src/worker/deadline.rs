//! The deadline of an in-process attempt.
//!
//! A child (`MULTI_PROCESS`) is killed at its deadline by its supervisor
//! (`child::supervise`). An attempt that runs on one of the worker's own
//! threads cannot be killed; its [`Watchdog`] does what can be done:
//!
//! 1. at the deadline (`ATTEMPT_TIMEOUT_*`), it sets the attempt's cancel
//!    flag, which RocksDB checks as it compacts: a compaction that is only
//!    slow stops, and the attempt ends `timed_out`;
//! 2. when the attempt has still not returned `CANCEL_GRACE` later (plugin
//!    code that hangs, a read from dead storage), it calls its `abandon`
//!    action: the supervisor ends the attempt `timed_out` and frees its
//!    slot, and whatever the thread returns later is dropped.
//!
//! The thread itself stays until its code returns; shutdown waits for it
//! only a bounded time (see `Supervisor::shutdown`).

use crate::rocks::open_and_compact::CancelFlag;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Watches one in-process attempt; dropping it (the attempt returned)
/// ends the watch.
pub struct Watchdog {
    /// Dropped when the attempt returns: the watching thread wakes and ends.
    _returned: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching `name`: `timeout` from now the attempt is cancelled,
    /// and `grace` after that `abandon` runs unless the watchdog was
    /// dropped in between.
    pub fn start(
        name: String,
        cancel: Arc<CancelFlag>,
        timeout: Duration,
        grace: Duration,
        abandon: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Watchdog> {
        let (returned, watch) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        std::thread::Builder::new()
            .name("attempt-deadline".into())
            .spawn(move || {
                if !passes(&watch, timeout) {
                    return;
                }
                flag.store(true, Ordering::Release);
                tracing::warn!(attempt = %name, timeout_ms = timeout.as_millis() as u64, "attempt deadline passed: cancelling");
                cancel.cancel();
                if passes(&watch, grace) {
                    tracing::error!(
                        attempt = %name,
                        grace_ms = grace.as_millis() as u64,
                        "attempt still running CANCEL_GRACE after its deadline: ending it timed_out and abandoning its thread"
                    );
                    abandon();
                }
            })?;
        Ok(Watchdog {
            _returned: returned,
            fired,
        })
    }

    /// Whether the deadline passed before the attempt returned: it is
    /// `timed_out`, whatever it returns.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

/// Waits `span` for the attempt to return; `true` when it did not.
fn passes(watch: &mpsc::Receiver<()>, span: Duration) -> bool {
    matches!(watch.recv_timeout(span), Err(RecvTimeoutError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn counter() -> (Arc<AtomicBool>, impl FnOnce() + Send + 'static) {
        let abandoned = Arc::new(AtomicBool::new(false));
        let a = abandoned.clone();
        (abandoned, move || a.store(true, Ordering::Release))
    }

    #[test]
    fn an_attempt_that_returns_in_time_is_left_alone() {
        let cancel = Arc::new(CancelFlag::new());
        let (abandoned, abandon) = counter();
        let w = Watchdog::start(
            "a".into(),
            cancel.clone(),
            Duration::from_millis(200),
            Duration::from_millis(50),
            abandon,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!w.fired());
        drop(w);
        std::thread::sleep(Duration::from_millis(400));
        assert!(!cancel.is_set());
        assert!(!abandoned.load(Ordering::Acquire));
    }

    #[test]
    fn the_deadline_cancels_and_the_grace_abandons() {
        let cancel = Arc::new(CancelFlag::new());
        let (abandoned, abandon) = counter();
        let t = Instant::now();
        let w = Watchdog::start(
            "b".into(),
            cancel.clone(),
            Duration::from_millis(50),
            Duration::from_millis(50),
            abandon,
        )
        .unwrap();
        while !abandoned.load(Ordering::Acquire) {
            assert!(t.elapsed() < Duration::from_secs(5), "never abandoned");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(cancel.is_set());
        assert!(w.fired());
    }

    #[test]
    fn an_attempt_that_stops_when_cancelled_is_not_abandoned() {
        let cancel = Arc::new(CancelFlag::new());
        let (abandoned, abandon) = counter();
        let w = Watchdog::start(
            "c".into(),
            cancel.clone(),
            Duration::from_millis(30),
            Duration::from_millis(300),
            abandon,
        )
        .unwrap();
        while !cancel.is_set() {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(w.fired());
        drop(w);
        std::thread::sleep(Duration::from_millis(500));
        assert!(!abandoned.load(Ordering::Acquire));
    }
}
