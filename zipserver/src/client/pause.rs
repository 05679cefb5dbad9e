//! After a failure the client compresses in-process for a pause before it
//! tries the zipserver again ([`FIRST_PAUSE`], doubling with each failure
//! in a row up to [`MAX_PAUSE`], back to none on a success), so a dead
//! zipserver costs one failed connect per pause, and a stalled one one
//! `client_timeout` wait per pause, not one per block.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the client compresses in-process after a first failure.
pub const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause, after many failures in a row.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    until: Option<Instant>,
    /// The pause after the next failure; zero after a success.
    next: Duration,
}

#[derive(Default)]
pub struct Pause {
    state: Mutex<State>,
    /// Whether the last try failed (so a success resets the pause; checked
    /// without the lock on every block).
    failing: AtomicBool,
}

impl Pause {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether to leave the zipserver alone for now.
    pub fn active(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
            && self.lock().until.is_some_and(|t| Instant::now() < t)
    }

    pub fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            self.lock().next = Duration::ZERO;
        }
    }

    pub fn failed(&self) {
        self.failing.store(true, Ordering::Relaxed);
        let mut p = self.lock();
        let pause = p.next.max(FIRST_PAUSE);
        p.until = Some(Instant::now() + pause);
        p.next = (pause * 2).min(MAX_PAUSE);
    }

    /// The pause the next failure starts.
    pub fn next(&self) -> Duration {
        self.lock().next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_and_a_success_resets_them() {
        let p = Pause::default();
        assert!(!p.active());
        p.failed();
        assert!(p.active());
        assert_eq!(p.next(), FIRST_PAUSE * 2);
        p.failed();
        assert_eq!(p.next(), FIRST_PAUSE * 4);
        p.succeeded();
        assert!(!p.active());
        assert_eq!(p.next(), Duration::ZERO);
    }
}
