//! The memory budget: bytes of blocks (input plus output capacity) the
//! zipserver works on at once: blocks being compressed from rings, and
//! blocks read from sockets until they are answered. A block that does not
//! fit waits until others finish; the client's own time bound turns a long
//! wait into an in-process fallback. One block larger than the whole budget
//! is refused.

use std::sync::{Condvar, Mutex};

struct State {
    used: u64,
    waiting: usize,
}

pub struct Budget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

/// Bytes taken from the budget, given back when dropped.
pub struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget {
            limit,
            state: Mutex::new(State {
                used: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit; `None` when they never can.
    pub fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        if bytes > self.limit {
            return None;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.used + bytes > self.limit {
            s.waiting += 1;
            while s.used + bytes > self.limit {
                s = self.freed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            s.waiting -= 1;
        }
        s.used += bytes;
        Some(Reservation {
            budget: self,
            bytes,
        })
    }

    pub fn used(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).used
    }

    /// Reservations waiting for bytes to fit.
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).waiting
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut s = self.budget.state.lock().unwrap_or_else(|p| p.into_inner());
        s.used -= self.bytes;
        self.budget.freed.notify_all();
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
