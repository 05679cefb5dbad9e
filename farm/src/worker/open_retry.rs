//! Running `OpenAndCompact` again when its secondary open lost a race with
//! the primary.
//!
//! A worker that reaches the hoster's DB through a shared file system opens
//! it as a secondary while the primary goes on replacing its MANIFEST and
//! deleting obsolete files. An open that lost such a race
//! ([`OpenRace::classify`]) runs again, at most
//! [`RetryPolicy::max_retries`] times, after a pause that doubles from
//! [`RetryPolicy::first_pause`]: the new open sees the primary's newer
//! state. Any other failure, a set cancel flag, or a lost race after the
//! last retry ends the attempt as before (`compaction_failed`, or
//! `cancelled`).
//!
//! No compaction runs twice into one output directory: before a retry, the
//! output directory is emptied of whatever the failed run left there. A
//! lost race ends the open before the compaction writes anything, so the
//! directory is normally empty already; the log line of each retry says how
//! many entries were removed. When the directory cannot be emptied, no
//! retry runs.
//!
//! Both attempt modes run this one loop: in-process
//! ([`crate::worker::runner`]) and in a child
//! ([`crate::worker::child::entry`]). Each retry is a line in the attempt's
//! log (`LOG`, or `LOG.child`) and an [`OpenRetry`] in its timings, which
//! the supervisor counts on `/stat` (`counters.open_retries`,
//! `counters.open_races_unresolved`) and `/metrics`
//! (`farm_worker_open_retries_total{race}`,
//! `farm_worker_open_races_unresolved_total`).
//!
//! `FARM_OPEN_RETRIES=<n>` in the worker's environment replaces the bound
//! of [`RetryPolicy::DEFAULT`] ([`RetryPolicy::for_attempt`]); `0` runs
//! each attempt's `OpenAndCompact` once, as a worker without this module
//! did. The variable is not a setting: it is read at each attempt, is
//! absent from the worker's configuration on purpose, and exists for the
//! busy-primary test's comparison run (`tests/e2e/busy_primary/`).

use crate::rocks::open_and_compact::{open_and_compact, CancelFlag, Override};
use crate::rocks::open_race::OpenRace;
use crate::rocks::RocksError;
use crate::worker::beneath;
use crate::worker::timings::{now_us, OpenRetry};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// The environment variable that replaces the bound (module docs).
pub const RETRIES_VAR: &str = "FARM_OPEN_RETRIES";

/// How often, and after which pauses, a lost race is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs after the first, at most.
    pub max_retries: u32,
    /// The pause before the first retry; each later one doubles it.
    pub first_pause: Duration,
}

impl RetryPolicy {
    /// Five retries, after 10, 20, 40, 80 and 160 ms (310 ms in all). A
    /// busy primary replaces its MANIFEST and deletes obsolete files in
    /// bursts (a flush, a compaction's install); a retry soon after a burst
    /// mostly meets a quiet primary, and five lost races in a row mean
    /// something other than a race is wrong.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_retries: 5,
        first_pause: Duration::from_millis(10),
    };

    /// [`RetryPolicy::DEFAULT`], with the bound of `FARM_OPEN_RETRIES`
    /// when that holds a number (see the module docs).
    pub fn for_attempt() -> RetryPolicy {
        let bound = std::env::var(RETRIES_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        RetryPolicy {
            max_retries: bound.unwrap_or(Self::DEFAULT.max_retries),
            ..Self::DEFAULT
        }
    }

    /// The pause before retry `n` (from 0), or `None` past the last.
    pub fn pause(&self, n: u32) -> Option<Duration> {
        (n < self.max_retries).then(|| self.first_pause.saturating_mul(1 << n.min(20)))
    }
}

/// One `OpenAndCompact` of an attempt: the DB and the output directory it
/// reads and writes, its input, override and cancel flag.
pub struct Compaction<'a> {
    /// The DB directory, as RocksDB reaches it (`/proc/self/fd/<fd>`).
    pub db: &'a Path,
    /// The attempt's output directory, created by the worker.
    pub output: BorrowedFd<'a>,
    pub input: &'a [u8],
    pub overrides: &'a Override,
    pub cancel: &'a CancelFlag,
}

impl Compaction<'_> {
    /// Runs the compaction, again after each lost race that `policy`
    /// allows (see the module docs). Each retry is pushed onto `retries`
    /// and told to `log`. The error is the last run's.
    pub fn run(
        &self,
        policy: RetryPolicy,
        retries: &mut Vec<OpenRetry>,
        log: &dyn Fn(&str),
    ) -> Result<Vec<u8>, RocksError> {
        let output = beneath::fd_path(&self.output);
        let mut n = 0;
        loop {
            let error = match open_and_compact(
                self.db,
                &output,
                self.input,
                self.overrides,
                self.cancel,
                false,
            ) {
                Ok(result) => return Ok(result),
                Err(e) => e,
            };
            let Some((race, pause)) = self.retry_after(&error, n, policy) else {
                return Err(error);
            };
            let removed = match self.empty_output() {
                Ok(removed) => removed,
                Err(e) => {
                    log(&format!(
                        "secondary open lost a race with the primary ({race}), but the output directory could not be emptied ({e}): no retry"
                    ));
                    return Err(error);
                }
            };
            log(&format!(
                "secondary open lost a race with the primary ({race}): {error}; retry {} of {} in {} ms, the output directory emptied of {removed} entries",
                n + 1,
                policy.max_retries,
                pause.as_millis()
            ));
            retries.push(OpenRetry {
                race: race.name().to_owned(),
                at_us: now_us(),
            });
            if !self.pause_unless_cancelled(pause) {
                return Err(error);
            }
            n += 1;
        }
    }

    /// The race `error` lost and the pause before retry `n`, when one may
    /// run.
    fn retry_after(
        &self,
        error: &RocksError,
        n: u32,
        policy: RetryPolicy,
    ) -> Option<(OpenRace, Duration)> {
        if self.cancel.is_set() {
            return None;
        }
        let RocksError::Status { message, .. } = error else {
            return None;
        };
        Some((OpenRace::classify(message)?, policy.pause(n)?))
    }

    /// Removes everything in the output directory; says how many entries
    /// there were.
    fn empty_output(&self) -> std::io::Result<usize> {
        let n = beneath::entries(self.output)?.len();
        beneath::clear_dir(self.output)?;
        Ok(n)
    }

    /// Sleeps `pause`, waking early when the attempt is cancelled; whether
    /// it slept the whole pause.
    fn pause_unless_cancelled(&self, pause: Duration) -> bool {
        let until = Instant::now() + pause;
        while !self.cancel.is_set() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(5)));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_bound() {
        let p = RetryPolicy::DEFAULT;
        let pauses: Vec<_> = (0..7).map(|n| p.pause(n)).collect();
        let ms = |m| Some(Duration::from_millis(m));
        assert_eq!(
            pauses,
            [ms(10), ms(20), ms(40), ms(80), ms(160), None, None]
        );
        let none = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert_eq!(none.pause(0), None);
    }
}
