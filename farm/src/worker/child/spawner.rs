//! The long-lived thread that starts attempt children.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
//! and tokio's blocking threads exit when idle, so every child is forked
//! from this one thread, which lives as long as the worker. Each child:
//! - runs `dcompact-worker --child <attempt dir>` (fork+exec);
//! - is set up by [`ChildLimits::setup`]: in a cgroup of its own when the
//!   worker has a [`CgroupHome`] (joined before exec, so a plugin's
//!   constructor already runs inside it), its own process group, dying with
//!   the worker, resource limits and nice value;
//! - gets `LD_PRELOAD` = the worker's own `LD_PRELOAD` (never `PLUGINS`:
//!   the child loads those itself once its static initialisers have run,
//!   see [`crate::worker::config::WorkerConfig::preloaded`]), and the
//!   attempt marker, and the write end of its delivery pipe
//!   ([`super::delivery`]);
//! - writes stdout and stderr to `LOG.child`.

use super::delivery::{self, Delivery, DELIVERED_FD};
use super::limits::ChildLimits;
use super::spec::{ATTEMPT_MARKER, LOG_CHILD};
use crate::worker::cgroup::error::CgroupError;
use crate::worker::cgroup::group::ChildCgroup;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::process::running::Running;
use crate::worker::process::setup::ChildSetup;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("failed to prepare the child's cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("failed to start the child: {0}")]
    Io(#[from] io::Error),
    #[error("the spawner thread is gone")]
    ThreadGone,
}

struct Request {
    dir: PathBuf,
    marker: String,
    setup: ChildSetup,
    /// The delivery pipe's write end: open in the worker until the child
    /// is forked, then closed there (the child keeps its copy).
    delivery: OwnedFd,
    reply: mpsc::Sender<io::Result<Running>>,
}

pub struct Spawner {
    requests: Mutex<mpsc::Sender<Request>>,
    limits: ChildLimits,
    cgroups: Option<Arc<CgroupHome>>,
}

/// A started child, its cgroup, and how long starting it took.
pub struct Spawned {
    pub process: Running,
    /// `None` where no cgroup can be made (resource limits only).
    pub cgroup: Option<ChildCgroup>,
    /// The read end of its delivery pipe.
    pub delivery: Delivery,
    pub latency: Duration,
}

impl Spawner {
    /// Starts the forking thread. `exe` is the worker binary; `preload` the
    /// objects for the children's `LD_PRELOAD` (the worker's own); `cgroups`
    /// where children's cgroups go.
    pub fn start(
        exe: PathBuf,
        preload: Vec<PathBuf>,
        limits: ChildLimits,
        cgroups: Option<Arc<CgroupHome>>,
    ) -> io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Request>();
        let preload: Option<OsString> = (!preload.is_empty()).then(|| {
            let joined: Vec<String> = preload.iter().map(|p| p.display().to_string()).collect();
            OsString::from(joined.join(":"))
        });
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for req in rx {
                    let child = spawn_one(
                        &exe,
                        preload.as_ref(),
                        req.setup,
                        &req.dir,
                        &req.marker,
                        &req.delivery,
                    );
                    drop(req.delivery);
                    let _ = req.reply.send(child);
                }
            })?;
        Ok(Spawner {
            requests: Mutex::new(tx),
            limits,
            cgroups,
        })
    }

    /// Starts the child for the attempt in `dir`, marked with `marker`.
    pub fn spawn(&self, dir: &Path, marker: &str) -> Result<Spawned, SpawnError> {
        let started = Instant::now();
        let cgroup = self
            .cgroups
            .as_ref()
            .map(|home| home.child("attempt"))
            .transpose()?;
        let mut setup = self.limits.setup(cgroup.as_ref())?;
        let (delivery, write) = delivery::pipe()?;
        setup.keep_fd = Some(write.as_raw_fd());
        let (reply, answer) = mpsc::channel();
        let req = Request {
            dir: dir.to_owned(),
            marker: marker.to_owned(),
            setup,
            delivery: write,
            reply,
        };
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(req)
            .map_err(|_| SpawnError::ThreadGone)?;
        let process = answer.recv().map_err(|_| SpawnError::ThreadGone)??;
        Ok(Spawned {
            process,
            cgroup,
            delivery,
            latency: started.elapsed(),
        })
    }
}

fn spawn_one(
    exe: &Path,
    preload: Option<&OsString>,
    setup: ChildSetup,
    dir: &Path,
    marker: &str,
    delivery: &OwnedFd,
) -> io::Result<Running> {
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
        .env(ATTEMPT_MARKER, marker)
        .env(DELIVERED_FD, delivery.as_raw_fd().to_string());
    if let Some(p) = preload {
        cmd.env("LD_PRELOAD", p);
    }
    Running::spawn(&mut cmd, setup)
}
