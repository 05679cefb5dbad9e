//! Early delivery: a MULTI_PROCESS attempt whose child has put its result
//! in place is answered `done` by `/probe` at once
//! ([`Supervisor::deliver_early`]) and counted, while the child still
//! exits; its slot and place are given back only at its end, when the child
//! is reaped ([`Supervisor::finish`]). An in-process attempt is delivered
//! the same way as soon as its run returns a success, before its summary is
//! written and its directory removed. Held probes and etcd's "done" event
//! are woken at the delivery, once.
//!
//! The delivered result is final: it was complete on disk (`rpc.results`,
//! `compact.done`, `result.bin`) before the child said so, and the hoster
//! checks every output before installing it. A child that then dies badly
//! (a signal in its exit) or is cancelled after its delivery does not take
//! it back ([`final_end`]); the log says how it ended.

use super::*;

impl Supervisor {
    /// The child of the running attempt `key` delivered `ended` (a
    /// success read from its `result.bin`): `/probe` answers it from now,
    /// and it is counted now (counters, metrics), so that `/stat` never
    /// lags behind what `/probe` said; [`Supervisor::finish`] then frees
    /// its slot without counting it again.
    pub(super) fn deliver_early(&self, key: &AttemptKey, ended: Ended) -> bool {
        let mut st = self.lock();
        let Some(entry) = st.attempts.get_mut(key) else {
            return false;
        };
        let Phase::Running {
            delivered, started, ..
        } = &mut entry.phase
        else {
            return false;
        };
        let ran = Some(started.elapsed());
        let (outcome, read, written) =
            (ended.outcome.clone(), ended.bytes_read, ended.bytes_written);
        *delivered = Some(ended);
        let name = entry.name.clone();
        self.count_end(&mut st, &outcome, ran, read, written);
        self.tell(&st, Some(&name));
        true
    }
}

/// What an attempt that may have delivered early ends with: its delivery
/// when there was one, whatever the child's end (which is logged when it
/// was not a success), else `ended`.
pub(super) fn final_end(
    name: &dyn std::fmt::Display,
    delivered: Option<Ended>,
    ended: Ended,
) -> Ended {
    let Some(delivered) = delivered else {
        return ended;
    };
    if ended.outcome != Outcome::Succeeded {
        tracing::warn!(attempt = %name, outcome = %ended.outcome, "the attempt ended badly after its result was delivered; the delivered result stands");
    }
    delivered
}

/// The end a child's `result.bin` in `dir` makes, when it is a success.
pub(super) fn delivered_end(dir: &Path) -> Option<Ended> {
    let bytes = std::fs::read(dir.join(child_spec::RESULT)).ok()?;
    let r = runner::accept_result(bytes);
    (r.outcome == Outcome::Succeeded).then(|| Ended::of_run(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_result_stands_whatever_the_child_did_after() {
        let delivered = Ended {
            outcome: Outcome::Succeeded,
            result: Some("cmVzdWx0".into()),
            bytes_read: 10,
            bytes_written: 5,
        };
        let killed = Ended::failed(Outcome::Killed("SIGSEGV".into()));
        assert_eq!(
            final_end(&"attempt", Some(delivered.clone()), killed.clone()),
            delivered
        );
        assert_eq!(final_end(&"attempt", None, killed.clone()), killed);
    }

    #[test]
    fn only_a_successful_result_file_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(delivered_end(dir.path()), None, "no file");
        std::fs::write(dir.path().join(child_spec::RESULT), b"not a result").unwrap();
        assert_eq!(delivered_end(dir.path()), None, "unreadable");
    }
}
