//! The memory budget: bytes of blocks (input plus output capacity) held by
//! the zipserver at once. A request that does not fit waits until others
//! finish; the client's own time bound turns a long wait into an
//! in-process fallback. One request larger than the whole budget is refused.

use std::sync::{Condvar, Mutex};

pub struct Budget {
    limit: u64,
    used: Mutex<u64>,
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
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit; `None` when they never can.
    pub fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        if bytes > self.limit {
            return None;
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used + bytes > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += bytes;
        Some(Reservation {
            budget: self,
            bytes,
        })
    }

    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|p| p.into_inner());
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

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
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.used(), 60, "the second reservation waits");
        drop(first);
        assert_eq!(waiter.join().unwrap(), 60);
        assert_eq!(b.used(), 0);
    }
}
