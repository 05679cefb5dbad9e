//! What a child does between fork and exec, written once.
//!
//! The steps, in order (each only when asked for):
//! 1. join its cgroups: write `0` ("the writer") into each `cgroup.procs`
//!    file the parent opened, so everything the child runs from exec on
//!    (a plugin's constructor included) is counted and limited there;
//! 2. lead a process group of its own (`setpgid(0, 0)`);
//! 3. die with the worker (`PR_SET_PDEATHSIG(SIGKILL)`), and give up at
//!    once when the worker died before that took effect;
//! 4. resource limits (`setrlimit`) and a nice increment;
//! 5. the idle scheduling class (`SCHED_IDLE`): a spare child runs only on
//!    a core nothing else wants;
//! 6. keep one descriptor open across exec (its close-on-exec flag
//!    cleared): the attempt child's delivery pipe.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits:
//! callers fork from threads that live as long as the child should.
//!
//! Everything here runs in the forked child of a multi-threaded process, so
//! it only makes system calls (async-signal-safe) and allocates nothing:
//! the files, limits and the parent's pid are prepared before the fork.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::prctl;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{getpid, getppid, setpgid, write, Pid};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A resource limit set in the child: soft and hard both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: Resource,
    pub value: u64,
}

/// How a child is set up before exec.
#[derive(Debug, Default)]
pub struct ChildSetup {
    /// `cgroup.procs` files, opened for writing, that the child joins.
    pub join: Vec<OwnedFd>,
    /// Lead a process group of its own.
    pub own_group: bool,
    /// Die (SIGKILL) when the forking thread of the worker ends.
    pub die_with_parent: bool,
    pub rlimits: Vec<Rlimit>,
    /// Added to the child's nice value.
    pub nice: Option<i32>,
    /// Scheduled only when a core is otherwise idle (`SCHED_IDLE`).
    pub idle: bool,
    /// A descriptor of the parent, opened close-on-exec, that the child
    /// keeps open across exec under the same number.
    pub keep_fd: Option<RawFd>,
}

impl ChildSetup {
    /// Makes `cmd` run this setup in its child.
    pub fn apply(self, cmd: &mut Command) {
        let parent = getpid();
        // SAFETY: the closure runs between fork and exec in the child and
        // only makes system calls (write, setpgid, prctl, getppid,
        // setrlimit, nice) on values prepared here; it allocates nothing
        // (an io::Error from an errno is not allocated).
        unsafe {
            cmd.pre_exec(move || self.in_child(parent));
        }
    }

    fn in_child(&self, parent: Pid) -> io::Result<()> {
        for procs in &self.join {
            write(procs, b"0")?;
        }
        if self.own_group {
            setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
        }
        if self.die_with_parent {
            prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The worker died between fork and prctl: follow it.
            if getppid() != parent {
                return Err(io::Error::from(Errno::ESRCH));
            }
        }
        for limit in &self.rlimits {
            setrlimit(limit.resource, limit.value, limit.value)?;
        }
        if let Some(n) = self.nice {
            add_nice(n)?;
        }
        if self.idle {
            set_policy(0, libc::SCHED_IDLE)?;
        }
        if let Some(fd) = self.keep_fd {
            keep_open(fd)?;
        }
        Ok(())
    }
}

/// Clears the close-on-exec flag of `fd`, in the child only (descriptor
/// flags are per process after fork).
fn keep_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: the parent keeps `fd` open until the child is spawned, so the
    // forked child has it open too; the borrow lives for this call only.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok(())
}

/// Sets the scheduling policy of thread `tid` (0: the caller) to `policy`
/// (`SCHED_OTHER` or `SCHED_IDLE`, whose priority is 0). Leaving
/// `SCHED_IDLE` for `SCHED_OTHER` takes `CAP_SYS_NICE`.
pub fn set_policy(tid: i32, policy: i32) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` for this call only; it is
    // a plain system call, async-signal-safe.
    if unsafe { libc::sched_setscheduler(tid, policy, &param) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `nice(n)`: -1 is a valid answer, so errno tells a failure apart.
fn add_nice(n: i32) -> io::Result<()> {
    Errno::clear();
    // SAFETY: nice takes an integer and changes only this process's
    // priority; it is async-signal-safe.
    let r = unsafe { libc::nice(n) };
    if r == -1 && Errno::last() != Errno::UnknownErrno {
        return Err(io::Error::from(Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(setup: ChildSetup, script: &str) -> String {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        setup.apply(&mut cmd);
        let out = cmd.output().expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_child_leads_its_own_group_with_its_limits() {
        let setup = ChildSetup {
            own_group: true,
            die_with_parent: true,
            rlimits: vec![Rlimit {
                resource: Resource::RLIMIT_NOFILE,
                value: 77,
            }],
            nice: Some(3),
            ..ChildSetup::default()
        };
        let out = run(
            setup,
            "echo $$ $(ps -o pgid= -p $$) $(ulimit -n) $(ps -o ni= -p $$)",
        );
        let f: Vec<i64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[0], f[1], "pid = pgid: {out}");
        assert_eq!(f[2], 77, "{out}");
        let own_nice = procfs::process::Process::myself()
            .unwrap()
            .stat()
            .unwrap()
            .nice;
        assert_eq!(f[3], own_nice + 3, "{out}");
    }

    #[test]
    fn an_idle_child_is_in_the_idle_class_until_raised() {
        let setup = ChildSetup {
            idle: true,
            ..ChildSetup::default()
        };
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        setup.apply(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id() as i32;
        let policy = || {
            procfs::process::Process::new(pid)
                .unwrap()
                .stat()
                .unwrap()
                .policy
        };
        assert_eq!(policy(), Some(libc::SCHED_IDLE as u32));
        set_policy(pid, libc::SCHED_OTHER).expect("the tests run as root");
        assert_eq!(policy(), Some(libc::SCHED_OTHER as u32));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_kept_descriptor_stays_open_across_exec() {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&write);
        let setup = ChildSetup {
            keep_fd: Some(fd),
            ..ChildSetup::default()
        };
        // bash: dash takes no descriptor numbers above 9.
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!("echo kept >&{fd}")]);
        setup.apply(&mut cmd);
        assert!(cmd.output().unwrap().status.success());
        drop(write);
        let mut got = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(read), &mut got).unwrap();
        assert_eq!(got, "kept\n");
        // Without it, the same descriptor is closed at exec.
        let (_read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&write);
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &format!("echo kept >&{fd}")]);
        ChildSetup::default().apply(&mut cmd);
        assert!(!cmd.output().unwrap().status.success());
    }

    #[test]
    fn without_a_group_the_child_shares_ours() {
        let out = run(ChildSetup::default(), "ps -o pgid= -p $$");
        let ours = nix::unistd::getpgrp().as_raw();
        assert_eq!(out.trim().parse::<i32>().unwrap(), ours);
    }
}
