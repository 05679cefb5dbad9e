//! Supervising one child, after nextest's model: wait for it under a
//! timeout and a cancel flag; on either, SIGTERM the process group (the
//! child's handler sets RocksDB's canceled flag), wait a grace period, then
//! SIGKILL the group. Whatever the end, every process of the attempt is
//! ended: the group, and descendants that left it with `setsid` (found by
//! the attempt marker in their environment; the worker is their subreaper,
//! so they are reaped here too).

use super::exit_wait::ExitWait;
use super::spec::{self, ATTEMPT_MARKER};
use crate::rocks::open_and_compact::CancelFlag;
use crate::worker::outcome::Outcome;
use crate::worker::runner::{accept_result, RunResult};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus};
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

/// Waits for `child` and classifies its end. `dir` is the attempt
/// directory, `marker` the attempt's marker value.
pub fn supervise(
    mut child: Child,
    cancel: &CancelFlag,
    limits: Limits,
    dir: &Path,
    marker: &str,
) -> RunResult {
    let pgid = child.id() as i32;
    let exit = ExitWait::new(child.id());
    let started = Instant::now();
    let mut stop: Option<(Stop, Instant)> = None;
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        match stop {
            None if cancel.is_set() => {
                signal_group(pgid, libc::SIGTERM);
                stop = Some((Stop::Cancelled, Instant::now()));
            }
            None if started.elapsed() > limits.timeout => {
                signal_group(pgid, libc::SIGTERM);
                cancel.cancel();
                stop = Some((Stop::TimedOut, Instant::now()));
            }
            Some((_, at)) if !killed && at.elapsed() > limits.grace => {
                signal_group(pgid, libc::SIGKILL);
                killed = true;
            }
            _ => {}
        }
        exit.pause(Duration::from_millis(5));
    };
    end_attempt_processes(pgid, marker);
    match (stop, status) {
        (Some((Stop::Cancelled, _)), _) => RunResult::failed(Outcome::Cancelled),
        (Some((Stop::TimedOut, _)), _) => RunResult::failed(Outcome::TimedOut),
        (None, Ok(status)) => classify(status, dir),
        (None, Err(e)) => RunResult::failed(Outcome::SetupFailed(format!(
            "failed to wait for the child: {e}"
        ))),
    }
}

/// The one place an exit status becomes an [`Outcome`].
fn classify(status: ExitStatus, dir: &Path) -> RunResult {
    let error = || std::fs::read_to_string(dir.join(spec::ERROR)).unwrap_or_default();
    if let Some(sig) = status.signal() {
        return RunResult::failed(Outcome::Killed(signal_name(sig)));
    }
    match status.code() {
        Some(spec::EXIT_OK) => match std::fs::read(dir.join(spec::RESULT)) {
            Ok(result) => accept_result(result),
            Err(e) => RunResult::failed(Outcome::SetupFailed(format!(
                "child exited 0 without a result: {e}"
            ))),
        },
        Some(spec::EXIT_COMPACTION_FAILED) => RunResult::failed(Outcome::CompactionFailed(error())),
        Some(spec::EXIT_CANCELLED) => RunResult::failed(Outcome::Cancelled),
        Some(spec::EXIT_SETUP_FAILED) => RunResult::failed(Outcome::SetupFailed(error())),
        Some(code) => RunResult::failed(Outcome::Exited(code)),
        None => RunResult::failed(Outcome::Exited(-1)),
    }
}

pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        other => return format!("SIG{other}"),
    };
    name.to_owned()
}

fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: signalling a process group we created; ESRCH (already gone)
    // is fine.
    unsafe { libc::kill(-pgid, sig) };
}

/// SIGKILLs what is left of the attempt: its process group and every
/// process carrying its marker, and reaps those that are the worker's
/// children (as subreaper, orphans are).
///
/// As a subreaper, the worker adopts every descendant of an ended child
/// that left the group (its parent died), so only the worker's own
/// children need a look: killing one hands its children to the worker in
/// turn, for the next look. That reads a few `/proc/<pid>/environ` files
/// instead of every process's on the host (about 6 ms per attempt with 120
/// processes). Without the subreaper role every process is looked at.
pub fn end_attempt_processes(pgid: i32, marker: &str) {
    signal_group(pgid, libc::SIGKILL);
    if !is_subreaper() {
        marked_processes(marker).into_iter().for_each(kill_and_reap);
        return;
    }
    for _ in 0..ADOPTION_ROUNDS {
        let Some(children) = own_children() else {
            marked_processes(marker).into_iter().for_each(kill_and_reap);
            return;
        };
        let marked: Vec<i32> = children
            .into_iter()
            .filter(|pid| carries(*pid, &marker_entry(marker)))
            .collect();
        if marked.is_empty() {
            return;
        }
        marked.into_iter().for_each(kill_and_reap);
    }
}

/// How many generations of escaped descendants are ended, one per look.
const ADOPTION_ROUNDS: usize = 16;

fn kill_and_reap(pid: i32) {
    // SAFETY: SIGKILL to a pid that carries this attempt's marker.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
}

fn is_subreaper() -> bool {
    let mut on: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer.
    let r = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut on as *mut libc::c_int) };
    r == 0 && on != 0
}

/// The children of every thread of this process (`/proc/self/task/*/children`),
/// or `None` where the kernel does not list them.
fn own_children() -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).ok()?;
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    Some(out)
}

fn marker_entry(marker: &str) -> String {
    format!("{ATTEMPT_MARKER}={marker}")
}

fn carries(pid: i32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()))
}

fn reap(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid on a specific pid; ECHILD means it is not ours.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid || r < 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Pids whose environment holds `DCOMPACT_ATTEMPT=<marker>`.
pub fn marked_processes(marker: &str) -> Vec<i32> {
    let needle = marker_entry(marker);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| carries(*pid, &needle))
        .collect()
}
