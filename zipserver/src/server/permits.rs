//! `num_threads` compression permits: nothing in the zipserver compresses
//! (or polls for blocks to compress) without one, so its compression never
//! uses more than `num_threads` cores, however many children send.
//!
//! The ring threads hold a permit while awake and give it back before they
//! sleep; a socket connection takes one per block. A socket connection
//! waiting for a permit goes first: an awake ring thread hands its permit
//! over between two blocks (see [`Permits::socket_waiting`]), so blocks too
//! large for a ring slot are not starved by a steady flow of small ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

struct State {
    free: usize,
    socket_waiting: usize,
    /// Takers asleep on `released` (only then does a release wake anyone).
    sleeping: usize,
}

pub struct Permits {
    state: Mutex<State>,
    released: Condvar,
    /// `socket_waiting`, readable without the lock.
    socket_waiting: AtomicUsize,
}

/// Which kind of taker: sockets go before rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taker {
    Ring,
    Socket,
}

impl Permits {
    pub fn new(n: usize) -> Self {
        Permits {
            state: Mutex::new(State {
                free: n,
                socket_waiting: 0,
                sleeping: 0,
            }),
            released: Condvar::new(),
            socket_waiting: AtomicUsize::new(0),
        }
    }

    /// Waits for a permit.
    pub fn take(&self, who: Taker) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if who == Taker::Socket {
            s.socket_waiting += 1;
            self.socket_waiting
                .store(s.socket_waiting, Ordering::Relaxed);
        }
        while s.free == 0 || (who == Taker::Ring && s.socket_waiting > 0) {
            s.sleeping += 1;
            s = self.released.wait(s).unwrap_or_else(|p| p.into_inner());
            s.sleeping -= 1;
        }
        s.free -= 1;
        if who == Taker::Socket {
            s.socket_waiting -= 1;
            self.socket_waiting
                .store(s.socket_waiting, Ordering::Relaxed);
        }
    }

    /// Returns a permit, waking the takers waiting for one (a condition
    /// variable's notification is a system call even when nobody waits,
    /// and a ring thread gives its permit back before every sleep).
    pub fn give_back(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.free += 1;
        let wake = s.sleeping > 0;
        drop(s);
        if wake {
            self.released.notify_all();
        }
    }

    /// Whether a socket connection waits for a permit.
    pub fn socket_waiting(&self) -> bool {
        self.socket_waiting.load(Ordering::Relaxed) > 0
    }

    /// Permits nobody holds.
    pub fn free(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn eventually(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_waiting_socket_goes_before_rings() {
        let p = Arc::new(Permits::new(1));
        p.take(Taker::Ring);
        let socket = std::thread::spawn({
            let p = p.clone();
            move || {
                p.take(Taker::Socket);
                "socket"
            }
        });
        eventually("the socket waits", || p.socket_waiting());
        let ring = std::thread::spawn({
            let p = p.clone();
            move || {
                p.take(Taker::Ring);
                "ring"
            }
        });
        // The ring thread between two blocks hands its permit over.
        p.give_back();
        assert_eq!(socket.join().unwrap(), "socket");
        assert!(!p.socket_waiting());
        assert_eq!(p.free(), 0, "the socket holds it; the second ring waits");
        p.give_back();
        assert_eq!(ring.join().unwrap(), "ring");
        assert_eq!(p.free(), 0);
    }
}
