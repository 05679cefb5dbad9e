//! Reaping processes the worker adopted.
//!
//! With MULTI_PROCESS the worker is a child subreaper: a descendant whose
//! parent died becomes the worker's child, and stays a zombie until the
//! worker waits for it. Whoever kills such a process reaps it here.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Waits up to `within` for `pid` to end if it is a child of this process;
/// returns at once when it is not (ECHILD). Whether it was reaped.
pub fn reap_if_child(pid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(WaitStatus::StillAlive) => return false,
            Ok(_) => return true,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::zombie_processes)] // reaped by reap_if_child, the code under test
    fn a_child_is_reaped_and_a_stranger_is_left_alone() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        assert!(reap_if_child(pid, Duration::from_secs(5)));
        // Not (or no longer) a child: ECHILD, at once.
        assert!(!reap_if_child(Pid::from_raw(1), Duration::from_secs(5)));
    }
}
