//! The long-lived thread that starts children.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
//! and tokio's blocking threads exit when idle, so every child is forked
//! from this one thread, which lives as long as the worker. Each child:
//! - runs `dcompact-worker --child <attempt dir>` (fork+exec);
//! - leads its own process group, so the whole attempt can be signalled;
//! - dies with the worker (`PR_SET_PDEATHSIG(SIGKILL)`);
//! - gets `LD_PRELOAD` = the plugin list, the attempt marker, and the
//!   configured resource limits and nice value;
//! - writes stdout and stderr to `LOG.child`.

use super::spec::{ATTEMPT_MARKER, LOG_CHILD};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Resource limits applied in the child before exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildLimits {
    /// `RLIMIT_AS`, bytes.
    pub address_space: Option<u64>,
    /// `RLIMIT_FSIZE`, bytes: a larger file write gets SIGXFSZ.
    pub file_size: Option<u64>,
    /// `RLIMIT_NOFILE`.
    pub open_files: Option<u64>,
    /// Added to the child's nice value.
    pub nice: Option<i32>,
}

struct Request {
    dir: PathBuf,
    marker: String,
    reply: mpsc::Sender<io::Result<Child>>,
}

pub struct Spawner {
    requests: Mutex<mpsc::Sender<Request>>,
}

/// A started child and how long starting it took.
pub struct Spawned {
    pub child: Child,
    pub latency: Duration,
}

impl Spawner {
    /// Starts the forking thread. `exe` is the worker binary; `preload` the
    /// plugin list for `LD_PRELOAD`.
    pub fn start(exe: PathBuf, preload: Vec<PathBuf>, limits: ChildLimits) -> io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Request>();
        let preload: Option<OsString> = (!preload.is_empty()).then(|| {
            let joined: Vec<String> = preload.iter().map(|p| p.display().to_string()).collect();
            OsString::from(joined.join(":"))
        });
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for req in rx {
                    let child = spawn_one(&exe, preload.as_ref(), &limits, &req.dir, &req.marker);
                    let _ = req.reply.send(child);
                }
            })?;
        Ok(Spawner {
            requests: Mutex::new(tx),
        })
    }

    /// Starts the child for the attempt in `dir`, marked with `marker`.
    pub fn spawn(&self, dir: &Path, marker: &str) -> io::Result<Spawned> {
        let started = Instant::now();
        let (reply, answer) = mpsc::channel();
        let req = Request {
            dir: dir.to_owned(),
            marker: marker.to_owned(),
            reply,
        };
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(req)
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        let child = answer
            .recv()
            .map_err(|_| io::Error::other("the spawner thread is gone"))??;
        Ok(Spawned {
            child,
            latency: started.elapsed(),
        })
    }
}

fn spawn_one(
    exe: &Path,
    preload: Option<&OsString>,
    limits: &ChildLimits,
    dir: &Path,
    marker: &str,
) -> io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_CHILD))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--child")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env_remove("LD_PRELOAD")
        .env(ATTEMPT_MARKER, marker);
    if let Some(p) = preload {
        cmd.env("LD_PRELOAD", p);
    }
    // SAFETY: getpid is async-signal-safe and runs before the fork.
    let parent = unsafe { libc::getpid() };
    let limits = limits.clone();
    // SAFETY: the closure runs between fork and exec in the child and calls
    // only async-signal-safe functions (setpgid, prctl, getppid, setrlimit,
    // setpriority, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The worker died between fork and prctl: follow it.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            let set = |resource, value: Option<u64>| -> io::Result<()> {
                if let Some(v) = value {
                    let lim = libc::rlimit {
                        rlim_cur: v,
                        rlim_max: v,
                    };
                    if libc::setrlimit(resource, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            };
            set(libc::RLIMIT_AS, limits.address_space)?;
            set(libc::RLIMIT_FSIZE, limits.file_size)?;
            set(libc::RLIMIT_NOFILE, limits.open_files)?;
            if let Some(n) = limits.nice {
                let current = libc::getpriority(libc::PRIO_PROCESS, 0);
                if libc::setpriority(libc::PRIO_PROCESS, 0, current + n) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}
