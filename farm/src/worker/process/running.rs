//! A started child: waiting for it against a deadline and a stop request,
//! and ending it with a grace period.

use super::exit_wait::ExitWait;
use super::pid::ChildPid;
use super::setup::ChildSetup;
use nix::sys::signal::Signal;
use std::io;
use std::os::fd::BorrowedFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How often a wait looks at the stop request and the deadline; the
/// child's exit itself ends a pause at once (a pidfd).
const POLL: Duration = Duration::from_millis(5);

/// A child process of the worker. Dropped before it was reaped, it is
/// killed (its group, when it leads one) and reaped: no child outlives its
/// handle by accident.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pid: ChildPid,
    /// Ends a pause of [`Running::wait`] when the child exits.
    exit: ExitWait,
    /// Set once the child has been reaped.
    status: Option<ExitStatus>,
}

/// Why [`Running::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Exited(ExitStatus),
    /// The deadline passed first; the child still runs.
    Deadline,
    /// The stop request came first; the child still runs.
    Stopped,
}

/// How [`Running::terminate`] ended the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminated {
    pub status: ExitStatus,
    /// The child did not end within the grace after SIGTERM and was
    /// SIGKILLed.
    pub escalated: bool,
}

impl Running {
    /// Starts `cmd` with `setup` applied between fork and exec.
    pub fn spawn(cmd: &mut Command, setup: ChildSetup) -> io::Result<Running> {
        let own_group = setup.own_group;
        setup.apply(cmd);
        let child = cmd.spawn()?;
        Ok(Running {
            pid: ChildPid::new(child.id(), own_group),
            exit: ExitWait::new(child.id()),
            child,
            status: None,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn pid(&self) -> ChildPid {
        self.pid
    }

    /// The child's stdout, when it was piped (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The child's stdin, when it was piped (once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The exit status if the child has ended, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits until the child exits, `deadline` passes, or `stop()` says
    /// so, whichever comes first.
    pub fn wait(
        &mut self,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> io::Result<Waited> {
        self.wait_waking(deadline, stop, None)
    }

    /// As [`Running::wait`], and `stop()` is also asked at once whenever
    /// `wake` becomes readable (or closed).
    pub fn wait_waking(
        &mut self,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
        wake: Option<BorrowedFd<'_>>,
    ) -> io::Result<Waited> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Waited::Exited(status));
            }
            if stop() {
                return Ok(Waited::Stopped);
            }
            let now = Instant::now();
            let pause = match deadline {
                Some(d) if now >= d => return Ok(Waited::Deadline),
                Some(d) => POLL.min(d - now),
                None => POLL,
            };
            self.exit.pause(pause, wake);
        }
    }

    /// Sends `sig` to the child (or its group).
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.pid.signal(sig).map_err(io::Error::from)
    }

    /// SIGTERM, up to `grace` for the child to exit, then SIGKILL; returns
    /// once the child is reaped.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<Terminated> {
        if let Some(status) = self.try_wait()? {
            return Ok(Terminated {
                status,
                escalated: false,
            });
        }
        self.signal(Signal::SIGTERM)?;
        if let Waited::Exited(status) = self.wait(Some(Instant::now() + grace), &|| false)? {
            return Ok(Terminated {
                status,
                escalated: false,
            });
        }
        Ok(Terminated {
            status: self.kill()?,
            escalated: true,
        })
    }

    /// SIGKILL (the group too) and reap.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        self.signal(Signal::SIGKILL)?;
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::process::exit::{extract, Exit};

    fn sh(script: &str) -> Running {
        let setup = ChildSetup {
            own_group: true,
            ..ChildSetup::default()
        };
        Running::spawn(Command::new("sh").args(["-c", script]), setup).expect("sh starts")
    }

    #[test]
    fn a_child_that_exits_is_waited_for() {
        let mut c = sh("exit 3");
        let Waited::Exited(status) = c.wait(None, &|| false).unwrap() else {
            panic!("exits")
        };
        assert_eq!(extract(status), Exit::Code(3));
    }

    #[test]
    fn a_deadline_and_a_stop_end_the_wait_not_the_child() {
        let mut c = sh("sleep 30");
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(c.wait(Some(soon), &|| false).unwrap(), Waited::Deadline);
        assert_eq!(c.wait(None, &|| true).unwrap(), Waited::Stopped);
        assert_eq!(c.try_wait().unwrap(), None, "still running");
    }

    #[test]
    fn terminate_ends_a_child_that_obeys_sigterm_without_escalation() {
        let mut c = sh("sleep 30");
        let t = c.terminate(Duration::from_secs(10)).unwrap();
        assert!(!t.escalated);
        assert_eq!(extract(t.status), Exit::Signal(Signal::SIGTERM as i32));
    }

    #[test]
    fn terminate_escalates_for_a_child_that_ignores_sigterm() {
        // The shell ignores SIGTERM and so does the sleep it waits for
        // (an ignored disposition survives exec).
        let mut c = sh("trap '' TERM; sleep 30; exit 0");
        std::thread::sleep(Duration::from_millis(100));
        let t = c.terminate(Duration::from_millis(200)).unwrap();
        assert!(t.escalated);
        assert_eq!(extract(t.status), Exit::Signal(Signal::SIGKILL as i32));
    }

    #[test]
    fn a_dropped_child_is_killed_with_its_group() {
        use std::io::BufRead;
        let setup = ChildSetup {
            own_group: true,
            ..ChildSetup::default()
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped());
        let mut c = Running::spawn(&mut cmd, setup).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(c.take_stdout().unwrap())
            .read_line(&mut line)
            .unwrap();
        let sleeper: i32 = line.trim().parse().unwrap();
        drop(c);
        // The sleep, in the same group, got the SIGKILL too.
        let gone = || {
            procfs::process::Process::new(sleeper)
                .and_then(|p| p.stat())
                .map_or(true, |s| s.state == 'Z')
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !gone() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(), "the group member {sleeper} was killed");
    }
}
