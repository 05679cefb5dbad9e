//! [`Attempt`]: what one run of an attempt owns on the thread that runs it.
//!
//! Built by the supervisor when the attempt leaves the queue, moved onto
//! its blocking thread, and ended there by [`Attempt::finish`]: the
//! directory goes first (when the worker keeps none), then the deadline
//! stops, then the end is reported once ([`AttemptEnd`]); the prepared job
//! and its mount lease are let go of last, when the value is dropped. An
//! attempt dropped without `finish` (a bug) still reports an end, so its
//! slot and place are never lost.

use super::directory::OwnedDir;
use super::end::{AttemptEnd, Ended};
use crate::protocol::attempt::{AttemptKey, AttemptName};
use crate::protocol::job::Job;
use crate::rocks::open_and_compact::CancelFlag;
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::deadline::Watchdog;
use crate::worker::outcome::Outcome;
use crate::worker::runner::PreparedJob;
use std::sync::Arc;
use std::time::Duration;

/// What running the attempt works with.
pub struct AttemptWork {
    pub key: AttemptKey,
    pub name: AttemptName,
    pub job: Arc<Job>,
    /// Paths, input, override, timings, and the mount lease.
    pub prepared: PreparedJob,
    /// Shared with the supervisor (`/shutdown`, shutdown) and the watchdog.
    pub cancel: Arc<CancelFlag>,
    /// The time it waited in the queue.
    pub waited: Duration,
}

/// One run of an attempt and everything it holds.
pub struct Attempt {
    pub work: AttemptWork,
    /// Its directory, once created.
    dir: Option<OwnedDir>,
    /// Its deadline, for an in-process attempt (a child's is kept by its
    /// supervisor).
    watchdog: Option<Watchdog>,
    end: Arc<AttemptEnd>,
}

impl Attempt {
    pub fn new(work: AttemptWork, end: Arc<AttemptEnd>) -> Self {
        Attempt {
            work,
            dir: None,
            watchdog: None,
            end,
        }
    }

    /// The run's end, shared with its watchdog.
    pub fn end(&self) -> &Arc<AttemptEnd> {
        &self.end
    }

    /// Holds `watchdog` until the attempt returns.
    pub fn watch(&mut self, watchdog: Watchdog) {
        self.watchdog = Some(watchdog);
    }

    /// Holds `dir` until the end; gives the work and the directory back to
    /// run with.
    pub fn hold_dir(&mut self, dir: OwnedDir) -> (&mut AttemptWork, &AttemptDir) {
        let dir = self.dir.insert(dir);
        (&mut self.work, dir)
    }

    /// Ends the run with `ended` (`timed_out` when its deadline passed,
    /// whatever it returned); `false` when it was ended already (abandoned
    /// at its deadline), and `ended` is dropped.
    pub fn finish(mut self, ended: Ended) -> bool {
        drop(self.dir.take());
        let timed_out = self.watchdog.take().is_some_and(|w| w.fired());
        let ended = if timed_out {
            Ended::failed(Outcome::TimedOut)
        } else {
            ended
        };
        self.end.report(ended)
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        drop(self.dir.take());
        let lost = Ended::failed(Outcome::Panicked(
            "the attempt was dropped before it reported its end".into(),
        ));
        if self.end.report(lost) {
            tracing::error!(attempt = %self.work.name, "attempt dropped without an end: ended panicked");
        }
    }
}
