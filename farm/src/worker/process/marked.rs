//! Processes found by a marker in their environment.
//!
//! Every process of an attempt inherits `DCOMPACT_ATTEMPT=<marker>`; where
//! no cgroup holds the attempt (the fallback), this is how descendants that
//! left the child's process group with `setsid` are found and ended. A
//! process can change its own environment, so this is a best effort; the
//! cgroup is the guarantee.

use super::reap::reap_if_child;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::time::Duration;

/// Pids (other than this process) whose environment holds `name=value`.
pub fn marked(name: &str, value: &str) -> Vec<Pid> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    all.filter_map(Result::ok)
        .filter(|p| p.pid != me)
        .filter(|p| {
            p.environ().is_ok_and(|env| {
                env.get(OsStr::new(name))
                    .is_some_and(|v| v.as_os_str() == OsStr::new(value))
            })
        })
        .map(|p| Pid::from_raw(p.pid))
        .collect()
}

/// SIGKILLs every process marked `name=value` and reaps those that are
/// this process's children (orphans it adopted as their subreaper).
/// Returns how many it found.
pub fn end_marked(name: &str, value: &str) -> usize {
    let pids = marked(name, value);
    for &pid in &pids {
        let _ = kill(pid, Signal::SIGKILL);
    }
    for &pid in &pids {
        reap_if_child(pid, Duration::from_secs(2));
    }
    pids.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by end_marked, the code under test
    fn marked_processes_are_found_and_ended() {
        let value = format!("marked-test-{}", std::process::id());
        let child = Command::new("sleep")
            .arg("30")
            .env("FARM_TEST_MARK", &value)
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        assert_eq!(marked("FARM_TEST_MARK", &value), vec![pid]);
        assert!(marked("FARM_TEST_MARK", "other").is_empty());
        assert_eq!(end_marked("FARM_TEST_MARK", &value), 1);
        assert!(marked("FARM_TEST_MARK", &value).is_empty());
        // It was this process's child, so end_marked reaped it.
        assert!(procfs::process::Process::new(pid.as_raw()).is_err());
    }
}
