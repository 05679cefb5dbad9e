//! Spare children: attempt children started before their attempt.
//!
//! Starting a child costs a MULTI_PROCESS attempt 20-35 ms on a 2-core host
//! (the fork of the worker, whose page tables grow with it, then exec, the
//! dynamic linker and the static initialisers of RocksDB and of the
//! worker's `LD_PRELOAD`), all of it in the hoster's wait. So the spawner
//! keeps `CHILD_SPARES` children (1 by default) started and set up as an
//! attempt child is (cgroup joined, process group, limits,
//! `PR_SET_PDEATHSIG`, the delivery pipe), each running `dcompact-worker
//! --child-spare` and waiting on its standard input.
//!
//! An attempt takes one ([`Spare::assign`]): the worker writes the attempt's
//! marker and directory to the pipe and closes it; the child reads them
//! ([`await_assignment`]), becomes the attempt's child
//! ([`Assignment::take`]) and runs it as `dcompact-worker --child <dir>`
//! would. A spare serves one attempt: attempts never share a process.
//!
//! The attempt's marker must be in the child's environment as the kernel
//! shows it (`/proc/<pid>/environ`, where the worker and operators find an
//! attempt's processes), and that is the environment the process was
//! started with. So a spare starts with a marker of its own padded to
//! [`MARKER_ROOM`] bytes, and takes the attempt's by writing it over that
//! value in place, the rest NUL (as `setproctitle` does with `argv`); what
//! it starts later inherits it. An attempt whose marker is longer gets a
//! fresh child. Its command line stays `--child-spare`.
//!
//! A spare starts in the idle scheduling class (`SCHED_IDLE`): its exec,
//! the dynamic linker and RocksDB's initialisers (4-6 ms of CPU) run only
//! on a core nothing else wants, not beside the attempt that took the last
//! spare. The worker puts it back in the normal class ([`Spare::raise`])
//! before handing it an attempt; where the worker may not (no
//! `CAP_SYS_NICE`), that spare is ended and later spares start in the
//! normal class.
//!
//! Until it is assigned the child's stdout and stderr are a memfd; then it
//! copies what that holds into the attempt's `LOG.child` and writes there.
//! A spare that died waiting is replaced by a fresh child, and what it
//! wrote goes to the worker's log. The end of the pipe without an
//! assignment (the worker ending its spares, or gone) makes a waiting spare
//! exit 0.

use super::delivery::Delivery;
use super::spawner::Spawned;
use super::spec::{ATTEMPT_MARKER, LOG_CHILD};
use crate::worker::cgroup::group::ChildCgroup;
use crate::worker::process::running::{Running, Waited};
use crate::worker::process::setup::{set_policy, ChildSetup};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden argument a spare child runs with.
pub const SPARE_ARG: &str = "--child-spare";

/// The bytes a spare's marker value holds: the longest attempt marker it
/// can take.
pub const MARKER_ROOM: usize = 1024;

/// The most a spare's output before its attempt may add to a log.
const EARLY_OUTPUT_MAX: u64 = 64 << 10;

/// A started child waiting for its attempt.
pub struct Spare {
    process: Running,
    cgroup: Option<ChildCgroup>,
    delivery: Delivery,
    marker: String,
    /// The write end of the child's standard input.
    assignment: ChildStdin,
    /// The memfd the child writes to until it is assigned.
    output: File,
    started: Instant,
}

impl Spare {
    /// Starts a spare: `cmd` is the worker binary with a child's
    /// environment (the spare's own `marker` in it), `setup` joins it to
    /// `cgroup`, `delivery` is the read end of its delivery pipe.
    pub fn start(
        mut cmd: Command,
        setup: ChildSetup,
        cgroup: Option<ChildCgroup>,
        delivery: Delivery,
        marker: String,
    ) -> io::Result<Spare> {
        let started = Instant::now();
        let output = File::from(memfd("dcompact-spare-output")?);
        cmd.arg(SPARE_ARG)
            .stdin(Stdio::piped())
            .stdout(output.try_clone()?)
            .stderr(output.try_clone()?);
        let mut process = Running::spawn(&mut cmd, setup)?;
        let assignment = process
            .take_stdin()
            .ok_or_else(|| io::Error::other("the spare's standard input is not a pipe"))?;
        Ok(Spare {
            process,
            cgroup,
            delivery,
            marker,
            assignment,
            output,
            started,
        })
    }

    /// Puts every thread of the spare in the normal scheduling class
    /// (`SCHED_OTHER`, its nice value kept).
    pub fn raise(&self) -> io::Result<()> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.process.id()))?;
        for task in tasks {
            let tid = task?.file_name();
            let tid: i32 = tid
                .to_str()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| io::Error::other(format!("a task named {tid:?}")))?;
            set_policy(tid, libc::SCHED_OTHER)?;
        }
        Ok(())
    }

    /// Hands the attempt in `dir`, marked `marker`, to this spare. A spare
    /// that has died comes back as an error (what it wrote logged), its
    /// cgroup ended.
    /// `marker` must [`fit`](fits).
    pub fn assign(mut self, dir: &Path, marker: &str) -> io::Result<Spawned> {
        if let Some(status) = self.process.try_wait()? {
            self.log_output(&format!("exited while waiting ({status})"));
            return Err(io::Error::other(format!(
                "the spare child had exited ({status})"
            )));
        }
        let waited = self.started.elapsed();
        let mut message = format!("{marker}\n").into_bytes();
        message.extend_from_slice(dir.as_os_str().as_bytes());
        if let Err(e) = self.assignment.write_all(&message) {
            self.log_output(&format!("could not be assigned ({e})"));
            return Err(e);
        }
        drop(self.assignment);
        Ok(Spawned {
            process: self.process,
            cgroup: self.cgroup,
            delivery: self.delivery,
            marker: marker.to_owned(),
            latency: Duration::ZERO,
            spare_for: Some(waited),
        })
    }

    /// Ends the spare: the end of its input makes it exit; it is killed if
    /// it has not by `deadline`.
    pub fn end(mut self, deadline: Instant) {
        drop(self.assignment);
        if !matches!(
            self.process.wait(Some(deadline), &|| false),
            Ok(Waited::Exited(_))
        ) {
            let _ = self.process.kill();
        }
    }

    fn log_output(&self, what: &str) {
        let text = read_output(&self.output);
        tracing::warn!(
            pid = self.process.id(),
            marker = %self.marker,
            output = %text.trim_end(),
            "a spare child {what}; a fresh child is started instead"
        );
    }
}

/// An anonymous memory file, close-on-exec.
fn memfd(name: &str) -> io::Result<OwnedFd> {
    nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(io::Error::from)
}

/// What a spare wrote before its attempt (at most [`EARLY_OUTPUT_MAX`]).
fn read_output(file: &File) -> String {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    let mut at = 0u64;
    while at < EARLY_OUTPUT_MAX {
        match file.read_at(&mut chunk, at) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                at += n as u64;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What a spare child is told: its attempt.
pub struct Assignment {
    pub marker: OsString,
    pub dir: PathBuf,
}

/// The child's side: waits for its assignment on standard input. `None`
/// when the input ended without one (no attempt will come).
pub fn await_assignment() -> io::Result<Option<Assignment>> {
    let mut bytes = Vec::new();
    io::stdin().lock().read_to_end(&mut bytes)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let Some(newline) = bytes.iter().position(|b| *b == b'\n') else {
        return Err(io::Error::other("an assignment without a marker"));
    };
    let dir = bytes.split_off(newline + 1);
    bytes.truncate(newline);
    Ok(Some(Assignment {
        marker: OsString::from_vec(bytes),
        dir: PathBuf::from(OsString::from_vec(dir)),
    }))
}

impl Assignment {
    /// Becomes the attempt's child: its marker in place of the spare's, its
    /// output in the attempt's `LOG.child` (after what the spare wrote while
    /// it waited), `/dev/null` as its input.
    pub fn take(&self) -> io::Result<()> {
        redirect_output(&self.dir)?;
        rewrite_marker(self.marker.as_bytes())
    }
}

/// Whether an attempt marker can be a spare's: no newline (the end of the
/// marker in an assignment), at most [`MARKER_ROOM`] bytes.
pub fn fits(marker: &str) -> bool {
    !marker.contains('\n') && marker.len() <= MARKER_ROOM
}

/// A spare's own marker: `spare-<n>@<worker pid>`, padded with spaces to
/// [`MARKER_ROOM`] bytes.
pub fn spare_marker(n: u64) -> String {
    let marker = format!("spare-{n}@{}", std::process::id());
    format!("{marker:<MARKER_ROOM$}")
}

/// Writes `marker` over this process's [`ATTEMPT_MARKER`] value where the
/// kernel placed it at exec, NUL after it up to the old value's end.
fn rewrite_marker(marker: &[u8]) -> io::Result<()> {
    let prefix = format!("{ATTEMPT_MARKER}=");
    // SAFETY: a spare runs its main thread alone until it is assigned (no
    // thread of its own, none of RocksDB's yet), so nothing reads or
    // changes the environment meanwhile. `environ` is the NUL-terminated
    // array the C library set up at exec; no `setenv` has replaced the
    // marker's entry, so it points into the strings the kernel copied onto
    // the stack, which are writable. Bytes are written only inside that
    // string (after its `=`, up to its old length), so it stays
    // NUL-terminated and no other entry moves.
    unsafe {
        let mut entry = libc::environ;
        while !entry.is_null() && !(*entry).is_null() {
            let text = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if let Some(old) = text.strip_prefix(prefix.as_bytes()) {
                if marker.len() > old.len() {
                    return Err(io::Error::other("the attempt's marker does not fit"));
                }
                let value = (*entry).cast::<u8>().add(prefix.len());
                std::ptr::copy_nonoverlapping(marker.as_ptr(), value, marker.len());
                std::ptr::write_bytes(value.add(marker.len()), 0, old.len() - marker.len());
                return Ok(());
            }
            entry = entry.add(1);
        }
    }
    Err(io::Error::other(format!(
        "no {ATTEMPT_MARKER} in the environment"
    )))
}

fn redirect_output(dir: &Path) -> io::Result<()> {
    io::stdout().flush()?;
    io::stderr().flush()?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_CHILD))?;
    let early = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    log.write_all(read_output(&early).as_bytes())?;
    let null = File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&log)?;
    nix::unistd::dup2_stderr(&log)?;
    Ok(())
}
