//! The worker's zipserver: started when the worker starts (MULTI_PROCESS with
//! `ZIP_SERVER_OPTIONS`), restarted whenever it dies (with a pause that
//! grows while it keeps dying), stopped when the worker stops.
//!
//! It is forked from one long-lived thread of its own, so its
//! `PR_SET_PDEATHSIG(SIGKILL)` fires only when the worker dies. It gets no
//! `LD_PRELOAD` (plugins are for attempt children), its stderr goes to
//! `zipserver.log` beside the attempts, and its first stdout line gives its
//! HTTP address.

use crate::worker::process::setup::ChildSetup;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::Serialize;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The zipserver binary beside `worker_exe`.
pub fn binary_beside(worker_exe: &Path) -> PathBuf {
    worker_exe.with_file_name("zipserver")
}

/// What `/stat` shows about the worker's zipserver.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SidecarStatus {
    /// The running zipserver's pid.
    pub pid: Option<u32>,
    /// Its `/stat` and `/metrics` address.
    pub http_addr: Option<String>,
    /// Processes started, the first included.
    pub starts: u64,
    /// Starts after the first: how often it died and came back.
    pub restarts: u64,
    /// How the last one ended ("exit 1", "signal 9").
    pub last_exit: Option<String>,
}

pub struct Sidecar {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<SidecarStatus>>,
    thread: Option<JoinHandle<()>>,
}

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// A zipserver that ran this long is healthy: the pause starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(3);

impl Sidecar {
    /// Starts the supervising thread for `exe` with `ZIP_SERVER_OPTIONS` =
    /// `options`; stderr is appended to `log`.
    pub fn start(exe: PathBuf, options: String, log: PathBuf) -> io::Result<Sidecar> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(SidecarStatus::default()));
        let thread = std::thread::Builder::new()
            .name("zipserver".into())
            .spawn({
                let (stop, status) = (stop.clone(), status.clone());
                move || supervise(&exe, &options, &log, &stop, &status)
            })?;
        Ok(Sidecar {
            stop,
            status,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> SidecarStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SIGTERM, a grace period, SIGKILL; returns when it is gone.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set(status: &Mutex<SidecarStatus>, f: impl FnOnce(&mut SidecarStatus)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

fn supervise(
    exe: &Path,
    options: &str,
    log: &Path,
    stop: &AtomicBool,
    status: &Mutex<SidecarStatus>,
) {
    let mut pause = FIRST_PAUSE;
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        match spawn(exe, options, log) {
            Ok(mut child) => {
                set(status, |s| {
                    s.pid = Some(child.id());
                    s.restarts += u64::from(s.starts > 0);
                    s.starts += 1;
                });
                tracing::info!(pid = child.id(), "zipserver started");
                // The first line is "listening on <addr>"; the pipe stays
                // open while it runs so a late write cannot SIGPIPE it.
                let mut out = child.stdout.take().map(BufReader::new);
                let mut line = String::new();
                if let Some(o) = out.as_mut() {
                    let _ = o.read_line(&mut line);
                }
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    set(status, |s| s.http_addr = Some(addr.to_owned()));
                }
                let ended = wait_or_stop(&mut child, stop);
                drop(out);
                set(status, |s| {
                    s.pid = None;
                    s.last_exit = Some(ended.clone());
                });
                if stop.load(Ordering::Acquire) {
                    return;
                }
                tracing::warn!(how = %ended, "zipserver ended: restarting it");
            }
            Err(e) => {
                tracing::error!(error = %e, exe = %exe.display(), "failed to start the zipserver");
                set(status, |s| s.last_exit = Some(format!("spawn failed: {e}")));
            }
        }
        if started.elapsed() >= HEALTHY_RUN {
            pause = FIRST_PAUSE;
        }
        let until = Instant::now() + pause;
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn spawn(exe: &Path, options: &str, log: &Path) -> io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new(exe);
    cmd.env("ZIP_SERVER_OPTIONS", options)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    // Dies with the thread that started it (a long-lived one, see
    // `Sidecar::start`), set up by the worker's one child set-up.
    ChildSetup {
        die_with_parent: true,
        ..Default::default()
    }
    .apply(&mut cmd);
    cmd.spawn()
}

/// Waits for the zipserver to end, or stops it when asked. Says how it
/// ended.
fn wait_or_stop(child: &mut Child, stop: &AtomicBool) -> String {
    let mut term_at: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match (status.code(), status.signal()) {
                    (Some(c), _) => format!("exit {c}"),
                    (_, Some(s)) => format!("signal {s}"),
                    _ => status.to_string(),
                }
            }
            Ok(None) => {}
            Err(e) => return format!("wait failed: {e}"),
        }
        if stop.load(Ordering::Acquire) {
            match term_at {
                None => {
                    // Our own unreaped child: its pid is still its own.
                    let pid = Pid::from_raw(child.id() as i32);
                    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                    term_at = Some(Instant::now());
                }
                Some(t) if t.elapsed() > STOP_GRACE => {
                    let _ = child.kill();
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
