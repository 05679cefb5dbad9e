//! The memory budget: bytes of blocks (input plus output capacity) the
//! zipserver works on at once: blocks being compressed from rings, and
//! blocks read from sockets until they are answered. A block that does not
//! fit waits until others finish; the client's own time bound turns a long
//! wait into an in-process fallback. One block larger than the whole budget
//! is refused.
//!
//! A block that fits takes its bytes with one atomic update and gives them
//! back with another: no lock and no system call on the path every block
//! takes. Only a block that must wait takes the lock, and only then does a
//! release wake anyone (the waiter count and the used bytes are sequentially
//! consistent, so either the releaser sees the waiter, or the waiter sees
//! the bytes given back).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

pub struct Budget {
    limit: u64,
    used: AtomicU64,
    /// Reservations waiting for bytes.
    waiting: AtomicUsize,
    /// Held by a waiter between its last look and its sleep, and by a
    /// releaser that wakes waiters, so no wake-up is lost.
    lock: Mutex<()>,
    freed: Condvar,
}

pub struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    /// Takes `bytes`, waiting until they fit; `None` when they never can.
    pub fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        if bytes > self.limit {
            return None;
        }
        if !self.try_take(bytes) {
            let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.waiting.fetch_add(1, Ordering::SeqCst);
            while !self.try_take(bytes) {
                guard = self.freed.wait(guard).unwrap_or_else(|p| p.into_inner());
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        Some(Reservation {
            budget: self,
            bytes,
        })
    }

    /// Takes `bytes` if they fit now.
    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used + bytes <= self.limit).then_some(used + bytes)
            })
            .is_ok()
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let b = self.budget;
        b.used.fetch_sub(self.bytes, Ordering::SeqCst);
        if b.waiting.load(Ordering::SeqCst) > 0 {
            // Taking the lock waits out a waiter between its last look and
            // its sleep, so the notification reaches it.
            drop(b.lock.lock().unwrap_or_else(|p| p.into_inner()));
            b.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn waits_until_bytes_fit_and_refuses_the_impossible() {
        let b = Arc::new(Budget::new(100));
        assert!(b.reserve(101).is_none());
        let first = b.reserve(60).unwrap();
        let waiter = std::thread::spawn({
            let b = b.clone();
            move || {
                let _r = b.reserve(60).unwrap();
                b.used()
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.waiting() == 0 {
            assert!(Instant::now() < deadline, "the second reservation waits");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(b.used(), 60, "nothing taken while it waits");
        drop(first);
        assert_eq!(waiter.join().unwrap(), 60);
        assert_eq!((b.used(), b.waiting()), (0, 0));
    }
}
