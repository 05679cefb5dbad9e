//! Supervising one attempt child, after nextest's model: wait for it under
//! a timeout and a cancel flag; on either, SIGTERM its process group (the
//! child's handler sets RocksDB's canceled flag), wait `CANCEL_GRACE`, then
//! SIGKILL the group (an escalation written to the attempt's `LOG`).
//! Whatever the end, every process of the attempt is ended: its cgroup is
//! emptied and removed, or, where there is none, the group is killed and
//! descendants that left it with `setsid` are found by the attempt marker
//! (the worker is their subreaper, so they are reaped here too).
//!
//! A child that delivers its result on its delivery pipe
//! ([`super::delivery`]) before it exits has `delivered` called at once, so
//! that the result is answered while the child still exits; the waiting,
//! the timeout and the cancel go on until it is reaped.
//!
//! The end is classified once, in `classify`: a stop the supervisor asked
//! for (`cancelled`, `timed_out`) wins; a SIGKILL while the cgroup counted
//! an OOM kill is `out_of_memory`; other signals are `killed`; exit codes
//! follow the child contract (`spec`).

use super::spawner::Spawned;
use super::spec::{self, ATTEMPT_MARKER};
use crate::rocks::open_and_compact::CancelFlag;
use crate::worker::cgroup::group::ChildCgroup;
use crate::worker::outcome::Outcome;
use crate::worker::process::exit::{extract, signal_name, Exit};
use crate::worker::process::marked::end_marked;
use crate::worker::process::pid::ChildPid;
use crate::worker::process::running::{Running, Waited};
use crate::worker::runner::{accept_result, RunResult};
use crate::worker::timings::now_us;
use nix::sys::signal::Signal;
use std::io;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long a child may run and how long it gets to stop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
}

/// What the end of a child looked like, before classification.
struct Ended {
    stop: Option<Stop>,
    status: io::Result<ExitStatus>,
    /// OOM kills the cgroup counted.
    oom_kills: u64,
    memory_limit: Option<u64>,
}

/// Waits for the child and classifies its end. `dir` is the attempt
/// directory, `log` writes to the
/// attempt's `LOG`, `delivered` is called once the child has delivered its
/// result. Also says when the child was reaped (the `reaped_us` mark of
/// [`crate::worker::timings`]).
pub fn supervise(
    spawned: Spawned,
    cancel: &CancelFlag,
    limits: Limits,
    dir: &Path,
    log: &dyn Fn(&str),
    delivered: &dyn Fn(),
) -> (RunResult, u64) {
    let Spawned {
        mut process,
        mut cgroup,
        delivery,
        marker,
        ..
    } = spawned;
    let deadline = Instant::now() + limits.timeout;
    let mut waited = process.wait_waking(
        Some(deadline),
        &|| cancel.is_set() || delivery.settled(),
        Some(delivery.fd()),
    );
    if matches!(waited, Ok(Waited::Stopped)) && !cancel.is_set() {
        // The pipe settled, not the cancel: wait for the exit itself.
        if delivery.delivered() {
            delivered();
        }
        waited = process.wait(Some(deadline), &|| cancel.is_set());
    }
    let (stop, status) = match waited {
        Ok(Waited::Exited(status)) => (None, Ok(status)),
        Ok(Waited::Stopped) => (
            Some(Stop::Cancelled),
            stop_child(&mut process, limits.grace, log),
        ),
        Ok(Waited::Deadline) => {
            cancel.cancel();
            (
                Some(Stop::TimedOut),
                stop_child(&mut process, limits.grace, log),
            )
        }
        Err(e) => {
            let _ = process.kill();
            (None, Err(e))
        }
    };
    let reaped_us = now_us();
    let ended = Ended {
        stop,
        status,
        oom_kills: cgroup.as_ref().map_or(0, ChildCgroup::oom_kills),
        memory_limit: cgroup.as_ref().and_then(ChildCgroup::memory_limit),
    };
    end_attempt(process.pid(), cgroup.as_mut(), &marker, log);
    (classify(ended, dir), reaped_us)
}

/// SIGTERM, the grace, SIGKILL; the escalation is logged.
fn stop_child(
    process: &mut Running,
    grace: Duration,
    log: &dyn Fn(&str),
) -> io::Result<ExitStatus> {
    let t = process.terminate(grace)?;
    if t.escalated {
        log(&format!(
            "child pid={} still running {} ms after SIGTERM (CANCEL_GRACE): SIGKILL",
            process.id(),
            grace.as_millis()
        ));
        tracing::warn!(
            pid = process.id(),
            grace_ms = grace.as_millis() as u64,
            "child ignored SIGTERM: SIGKILL"
        );
    }
    Ok(t.status)
}

/// Ends every process of the attempt that outlived the child.
fn end_attempt(pid: ChildPid, cgroup: Option<&mut ChildCgroup>, marker: &str, log: &dyn Fn(&str)) {
    let left = match cgroup {
        Some(cg) => cg.end().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "failed to end the child's cgroup");
            log(&format!("failed to end the child's cgroup: {e}"));
            0
        }),
        None => {
            let _ = pid.signal(Signal::SIGKILL);
            end_marked(ATTEMPT_MARKER, marker)
        }
    };
    if left > 0 {
        log(&format!(
            "ended {left} process(es) of the attempt that outlived the child"
        ));
    }
}

/// The one place the end of an attempt child becomes an [`Outcome`].
fn classify(ended: Ended, dir: &Path) -> RunResult {
    let status = match (ended.stop, ended.status) {
        (Some(Stop::Cancelled), _) => return RunResult::failed(Outcome::Cancelled),
        (Some(Stop::TimedOut), _) => return RunResult::failed(Outcome::TimedOut),
        (None, Err(e)) => {
            return RunResult::failed(Outcome::SetupFailed(format!(
                "failed to wait for the child: {e}"
            )))
        }
        (None, Ok(status)) => status,
    };
    let error = || std::fs::read_to_string(dir.join(spec::ERROR)).unwrap_or_default();
    match extract(status) {
        exit if exit.is_signal(Signal::SIGKILL) && ended.oom_kills > 0 => {
            RunResult::failed(Outcome::OutOfMemory {
                limit: ended.memory_limit,
            })
        }
        Exit::Signal(sig) => RunResult::failed(Outcome::Killed(signal_name(sig))),
        Exit::Code(spec::EXIT_OK) => match std::fs::read(dir.join(spec::RESULT)) {
            Ok(result) => accept_result(result),
            Err(e) => RunResult::failed(Outcome::SetupFailed(format!(
                "child exited 0 without a result: {e}"
            ))),
        },
        Exit::Code(spec::EXIT_COMPACTION_FAILED) => {
            RunResult::failed(Outcome::CompactionFailed(error()))
        }
        Exit::Code(spec::EXIT_CANCELLED) => RunResult::failed(Outcome::Cancelled),
        Exit::Code(spec::EXIT_SETUP_FAILED) => RunResult::failed(Outcome::SetupFailed(error())),
        Exit::Code(code) => RunResult::failed(Outcome::Exited(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::child::delivery;
    use crate::worker::process::setup::ChildSetup;
    use std::cell::Cell;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    /// A child running `script` with a delivery pipe at `$FD`.
    fn spawned(script: &str) -> Spawned {
        let (delivery, write) = delivery::pipe().unwrap();
        let setup = ChildSetup {
            own_group: true,
            keep_fd: Some(write.as_raw_fd()),
            ..ChildSetup::default()
        };
        // bash: dash takes no descriptor numbers above 9.
        let mut cmd = Command::new("bash");
        cmd.args(["-c", script])
            .env("FD", write.as_raw_fd().to_string());
        let process = Running::spawn(&mut cmd, setup).unwrap();
        drop(write);
        Spawned {
            process,
            cgroup: None,
            delivery,
            marker: "no-marker".into(),
            latency: Duration::ZERO,
            spare_for: None,
        }
    }

    fn run(script: &str) -> (Option<Instant>, Instant, Outcome) {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            timeout: Duration::from_secs(20),
            grace: Duration::from_secs(1),
        };
        let at = Cell::new(None);
        let (r, _) = supervise(
            spawned(script),
            &CancelFlag::new(),
            limits,
            dir.path(),
            &|_| {},
            &|| at.set(Some(Instant::now())),
        );
        (at.get(), Instant::now(), r.outcome)
    }

    #[test]
    fn a_delivery_is_told_before_the_child_exits() {
        let t = Instant::now();
        let (delivered, ended, outcome) = run("printf d >&\"$FD\"; sleep 1; exit 4");
        let delivered = delivered.expect("the delivery was told");
        assert!(delivered - t < Duration::from_millis(800), "told at once");
        assert!(
            ended - delivered >= Duration::from_millis(500),
            "before the exit"
        );
        // The waiting went on to the real end.
        assert_eq!(outcome, Outcome::Exited(4));
    }

    #[test]
    fn a_pipe_closed_without_a_delivery_tells_nothing() {
        let (delivered, _, outcome) = run("eval \"exec $FD>&-\"; sleep 0.2; exit 4");
        assert_eq!(delivered, None);
        assert_eq!(outcome, Outcome::Exited(4));
        let (delivered, _, _) = run("exit 0");
        assert_eq!(delivered, None);
    }

    fn ended(stop: Option<Stop>, raw: i32, oom_kills: u64) -> Ended {
        Ended {
            stop,
            status: Ok(ExitStatus::from_raw(raw)),
            oom_kills,
            memory_limit: Some(1 << 20),
        }
    }

    #[test]
    fn each_end_has_one_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(spec::ERROR), "boom").unwrap();
        let outcome = |e| classify(e, d).outcome;
        assert_eq!(
            outcome(ended(None, 9, 1)),
            Outcome::OutOfMemory {
                limit: Some(1 << 20)
            }
        );
        assert_eq!(
            outcome(ended(None, 9, 0)),
            Outcome::Killed("SIGKILL".into())
        );
        assert_eq!(
            outcome(ended(None, 11, 1)),
            Outcome::Killed("SIGSEGV".into())
        );
        // A stop the supervisor asked for wins over how the child died.
        assert_eq!(
            outcome(ended(Some(Stop::TimedOut), 9, 1)),
            Outcome::TimedOut
        );
        assert_eq!(
            outcome(ended(Some(Stop::Cancelled), 15, 0)),
            Outcome::Cancelled
        );
        assert_eq!(outcome(ended(None, 4 << 8, 0)), Outcome::Exited(4));
        assert_eq!(
            outcome(ended(None, spec::EXIT_COMPACTION_FAILED << 8, 0)),
            Outcome::CompactionFailed("boom".into())
        );
        assert_eq!(
            outcome(ended(None, spec::EXIT_SETUP_FAILED << 8, 0)),
            Outcome::SetupFailed("boom".into())
        );
        assert_eq!(
            outcome(ended(None, spec::EXIT_CANCELLED << 8, 0)),
            Outcome::Cancelled
        );
        assert!(matches!(
            outcome(ended(None, 0, 0)),
            Outcome::SetupFailed(e) if e.contains("without a result")
        ));
    }
}
