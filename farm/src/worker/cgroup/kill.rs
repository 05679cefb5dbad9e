//! Ending every process in a cgroup, detached or not, and removing it.
//!
//! - cgroup v2: `cgroup.kill` (SIGKILL to every process of the subtree, in
//!   the kernel, with no window for a fork to slip through).
//! - cgroup v1: freeze the subtree (`freezer.state = FROZEN`), SIGKILL
//!   every process listed while nothing can fork, thaw so the kills are
//!   delivered.
//!
//! Processes that are the worker's children (orphans it adopted as their
//! subreaper) are reaped here; the rest are reaped by their parents or
//! init. A cgroup may hold sub-cgroups its processes made: the whole
//! subtree is emptied and removed, deepest first.

use super::error::CgroupError;
use super::files::{procs, set};
use super::layout::Version;
use crate::worker::process::reap::reap_if_child;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the processes of a cgroup may take to die.
const END_WITHIN: Duration = Duration::from_secs(5);
/// How long a frozen state may take to settle.
const FREEZE_WITHIN: Duration = Duration::from_secs(1);
/// How long an emptied cgroup may stay busy before it can be removed.
const REMOVE_WITHIN: Duration = Duration::from_secs(2);

/// `dir` and every cgroup below it, parents before children.
pub fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_owned()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(entries) = std::fs::read_dir(&all[i]) {
            let mut below: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            below.sort();
            all.extend(below);
        }
        i += 1;
    }
    all
}

/// SIGKILLs every process in the cgroups `dirs` (each with its subtree)
/// until none is left; `freezer` is the v1 freezer cgroup among them.
/// Returns how many processes there were.
pub fn kill_all(
    version: Version,
    dirs: &[PathBuf],
    freezer: Option<&Path>,
) -> Result<usize, CgroupError> {
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    loop {
        let all: Vec<PathBuf> = dirs.iter().flat_map(|d| subtree(d)).collect();
        let pids: BTreeSet<Pid> = all.iter().flat_map(|d| procs(d)).collect();
        if pids.is_empty() {
            return Ok(seen.len());
        }
        seen.extend(pids.iter().copied());
        match version {
            Version::V2 => kill_v2(dirs, &pids),
            Version::V1 => kill_v1(freezer, &pids),
        }
        for &pid in &pids {
            reap_if_child(pid, Duration::ZERO);
        }
        if started.elapsed() > END_WITHIN {
            return Err(CgroupError::Unkillable {
                path: dirs.first().cloned().unwrap_or_default(),
                waited_ms: END_WITHIN.as_millis() as u64,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_v2(dirs: &[PathBuf], pids: &BTreeSet<Pid>) {
    let killed = dirs.iter().all(|d| set(d, "cgroup.kill", "1").is_ok());
    if !killed {
        // A kernel before 5.14 has no cgroup.kill.
        for &pid in pids {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

fn kill_v1(freezer: Option<&Path>, pids: &BTreeSet<Pid>) {
    let frozen = freezer.is_some_and(freeze);
    // Frozen, nothing forks: the list read now is complete.
    let pids: BTreeSet<Pid> = match (frozen, freezer) {
        (true, Some(f)) => subtree(f).iter().flat_map(|d| procs(d)).collect(),
        _ => pids.clone(),
    };
    for &pid in &pids {
        let _ = kill(pid, Signal::SIGKILL);
    }
    if let Some(f) = freezer {
        if let Err(e) = set(f, "freezer.state", "THAWED") {
            tracing::warn!(error = %e, "failed to thaw a child's cgroup");
        }
    }
}

/// Freezes the v1 freezer cgroup `dir`; whether it is frozen.
fn freeze(dir: &Path) -> bool {
    if set(dir, "freezer.state", "FROZEN").is_err() {
        return false;
    }
    let until = Instant::now() + FREEZE_WITHIN;
    loop {
        let state = std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
        if state.trim() == "FROZEN" {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Removes the emptied cgroups `dirs` with their subtrees, deepest first;
/// a cgroup already gone is fine.
pub fn remove(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    for dir in dirs {
        for d in subtree(dir).iter().rev() {
            remove_one(d)?;
        }
    }
    Ok(())
}

fn remove_one(dir: &Path) -> Result<(), CgroupError> {
    let until = Instant::now() + REMOVE_WITHIN;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Busy until the last exiting process has left it.
            Err(e)
                if e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32)
                    && Instant::now() < until =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(CgroupError::io("remove the cgroup", dir)(e)),
        }
    }
}
