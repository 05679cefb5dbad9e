//! Waiting for a child's exit for at most a pause, woken the moment it
//! exits: `poll` on a pidfd (Linux 5.3 and later), or a plain sleep where
//! the kernel has none. `pidfd_open` is a raw system call (`nix` has no
//! wrapper for it): the one `unsafe` here. [`super::running::Running::wait`] checks its stop
//! request and deadline between pauses; the pidfd saves the rest of a pause after the child has
//! ended (up to 5 ms per attempt with the sleep alone).

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A handle that becomes readable when the process exits.
#[derive(Debug)]
pub struct ExitWait {
    pidfd: Option<OwnedFd>,
}

impl ExitWait {
    /// For `pid`, a child of this process that has not been reaped.
    pub fn new(pid: u32) -> Self {
        // SAFETY: pidfd_open takes a pid and flags and returns a new file
        // descriptor or -1; it touches no memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: a descriptor just returned to us and owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(fd as i32) }
        });
        ExitWait { pidfd }
    }

    /// Returns after `pause`, or sooner once the process has exited or
    /// `also` (when given) is readable or closed.
    pub fn pause(&self, pause: Duration, also: Option<BorrowedFd<'_>>) {
        let ms = pause.as_millis().clamp(1, i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds: Vec<PollFd<'_>> = self
            .pidfd
            .iter()
            .map(|fd| fd.as_fd())
            .chain(also)
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        if fds.is_empty() {
            std::thread::sleep(pause);
            return;
        }
        // An error (EINTR) just ends the pause early; the caller looks again.
        let _ = poll(&mut fds, timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wakes_when_the_child_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.05")
            .spawn()
            .unwrap();
        let wait = ExitWait::new(child.id());
        let t = Instant::now();
        while child.try_wait().unwrap().is_none() {
            wait.pause(Duration::from_secs(5), None);
            assert!(
                t.elapsed() < Duration::from_secs(4),
                "not woken by the exit"
            );
        }
    }
}
