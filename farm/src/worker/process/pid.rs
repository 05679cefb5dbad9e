//! A child's pid, and whether a signal is meant for it alone or for the
//! process group it leads.

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// A child process of the worker, as a target of signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildPid {
    /// A process that shares the worker's process group: signal it alone.
    Process(Pid),
    /// A process that leads a group of its own (it called `setpgid(0, 0)`
    /// before exec): signal the whole group, so its descendants that stayed
    /// in the group get the signal too.
    Group(Pid),
}

impl ChildPid {
    /// From the pid std gives, and whether the child leads its own group.
    pub fn new(id: u32, own_group: bool) -> ChildPid {
        let pid = Pid::from_raw(id as i32);
        if own_group {
            ChildPid::Group(pid)
        } else {
            ChildPid::Process(pid)
        }
    }

    /// The process itself.
    pub fn pid(self) -> Pid {
        match self {
            ChildPid::Process(p) | ChildPid::Group(p) => p,
        }
    }

    /// Sends `sig` to the process or its group. A target already gone
    /// (ESRCH) is not an error: the signal had nothing left to do.
    pub fn signal(self, sig: Signal) -> nix::Result<()> {
        let sent = match self {
            ChildPid::Process(p) => kill(p, sig),
            ChildPid::Group(p) => killpg(p, sig),
        };
        match sent {
            Err(Errno::ESRCH) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_signalled_as_a_group() {
        assert_eq!(ChildPid::new(42, true), ChildPid::Group(Pid::from_raw(42)));
        assert_eq!(
            ChildPid::new(42, false),
            ChildPid::Process(Pid::from_raw(42))
        );
        assert_eq!(ChildPid::new(42, true).pid(), Pid::from_raw(42));
    }

    #[test]
    fn signalling_a_process_that_is_gone_is_not_an_error() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = child.id();
        child.wait().unwrap();
        // Reaped: the pid names nothing (unless reused, which a SIGCONT
        // would not harm).
        assert!(ChildPid::new(id, false).signal(Signal::SIGCONT).is_ok());
    }
}
