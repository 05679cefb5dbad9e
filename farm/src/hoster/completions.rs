//! "Attempt done" events from etcd: a worker puts
//! `<root>/dcompact-res/<attempt name>` when an attempt ends, and the wait
//! for that attempt wakes at once instead of at its next probe. The hoster
//! follows only `<root>/dcompact-res/<its instance>/<start_time>/<db>/`.
//!
//! The event only wakes the wait; the result still comes from `/probe`, so
//! a lost or late event costs latency, never correctness.

use crate::etcd::client::{KeyValue, WatchEvent};
use crate::etcd::follow::Follow;
use crate::etcd::keys::DONE;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Events are forgotten after this when nobody waited for them (an attempt
/// the hoster had already given up on).
const KEEP: Duration = Duration::from_secs(600);

/// Attempt names whose "done" arrived, for the waits to take.
#[derive(Default)]
pub struct Completions {
    done: Mutex<HashMap<String, Instant>>,
    arrived: Condvar,
}

impl Completions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn notify(&self, attempt_name: &str) {
        let mut done = self.lock();
        done.retain(|_, at| at.elapsed() < KEEP);
        done.insert(attempt_name.to_owned(), Instant::now());
        self.arrived.notify_all();
    }

    /// Waits up to `timeout` for `attempt_name`'s event; `true` when it
    /// arrived (now or before), and it is taken.
    pub fn wait(&self, attempt_name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut done = self.lock();
        loop {
            if done.remove(attempt_name).is_some() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = self
                .arrived
                .wait_timeout(done, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn forget(&self, attempt_name: &str) {
        self.lock().remove(attempt_name);
    }
}

/// Feeds [`Completions`] from the watch of `<done prefix>`.
pub struct DoneEvents {
    pub completions: Arc<Completions>,
    /// `<root>/dcompact-res/`: stripped to get the attempt name.
    pub done_prefix: String,
}

impl DoneEvents {
    fn seen(&self, kv: &KeyValue) {
        if kv.value != DONE {
            return;
        }
        if let Some(name) = kv.key.strip_prefix(&self.done_prefix) {
            self.completions.notify(name);
        }
    }
}

impl Follow for DoneEvents {
    /// Keys present at (re)listing: attempts that ended while the watch was
    /// down. Waking a wait spuriously costs one probe.
    fn listed(&mut self, kvs: Vec<KeyValue>) {
        kvs.iter().for_each(|kv| self.seen(kv));
    }

    fn changed(&mut self, event: WatchEvent) {
        if let WatchEvent::Put(kv) = event {
            self.seen(&kv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_takes_its_event_once() {
        let c = Arc::new(Completions::default());
        c.notify("a/1");
        assert!(c.wait("a/1", Duration::ZERO));
        assert!(!c.wait("a/1", Duration::from_millis(10)));
        let waker = {
            let c = c.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                c.notify("a/2");
            })
        };
        assert!(c.wait("a/2", Duration::from_secs(10)));
        waker.join().unwrap();
        c.notify("a/3");
        c.forget("a/3");
        assert!(!c.wait("a/3", Duration::ZERO));
    }
}
