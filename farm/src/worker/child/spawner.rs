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
//!
//! Between requests the thread keeps `CHILD_SPARES` children started ahead
//! ([`super::spare`]); a request takes the oldest live one, or starts a
//! fresh child when none is left.

use super::delivery::{self, Delivery, DELIVERED_FD};
use super::limits::ChildLimits;
use super::spare::{self, Spare};
use super::spec::{ATTEMPT_MARKER, LOG_CHILD};
use crate::worker::cgroup::error::CgroupError;
use crate::worker::cgroup::group::ChildCgroup;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::process::running::Running;
use crate::worker::process::setup::ChildSetup;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long ended spares have to exit before they are killed.
const SPARE_END_GRACE: Duration = Duration::from_secs(2);

/// How long a spare that could not be raised out of the idle class may take
/// to exit before it is killed: it may get no core at all before that.
const SPARE_RAISE_END: Duration = Duration::from_millis(50);

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

enum Message {
    Spawn(Request),
    /// Ends every spare and starts no more; answered once they are gone.
    EndSpares(mpsc::Sender<()>),
}

struct Request {
    dir: PathBuf,
    marker: String,
    reply: mpsc::Sender<Result<Spawned, SpawnError>>,
}

pub struct Spawner {
    requests: Mutex<mpsc::Sender<Message>>,
}

/// A started child, its cgroup, and how long starting it took.
pub struct Spawned {
    pub process: Running,
    /// `None` where no cgroup can be made (resource limits only).
    pub cgroup: Option<ChildCgroup>,
    /// The read end of its delivery pipe.
    pub delivery: Delivery,
    /// The value of [`ATTEMPT_MARKER`] its processes carry.
    pub marker: String,
    pub latency: Duration,
    /// A spare's time between its start and its attempt; `None` for a
    /// child started for the attempt.
    pub spare_for: Option<Duration>,
}

impl Spawner {
    /// Starts the forking thread. `exe` is the worker binary; `preload` the
    /// objects for the children's `LD_PRELOAD` (the worker's own); `cgroups`
    /// where children's cgroups go; `spares` how many children to keep
    /// started ahead.
    pub fn start(
        exe: PathBuf,
        preload: Vec<PathBuf>,
        limits: ChildLimits,
        cgroups: Option<Arc<CgroupHome>>,
        spares: usize,
    ) -> io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Message>();
        let preload: Option<OsString> = (!preload.is_empty()).then(|| {
            let joined: Vec<String> = preload.iter().map(|p| p.display().to_string()).collect();
            OsString::from(joined.join(":"))
        });
        let forker = Forker {
            exe,
            preload,
            limits,
            cgroups,
            spares,
            pool: VecDeque::new(),
            started_spares: 0,
            refill_failed: false,
            idle_spares: true,
        };
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || forker.serve(rx))?;
        Ok(Spawner {
            requests: Mutex::new(tx),
        })
    }

    /// Starts the child for the attempt in `dir`, marked with `marker`.
    pub fn spawn(&self, dir: &Path, marker: &str) -> Result<Spawned, SpawnError> {
        let started = Instant::now();
        let (reply, answer) = mpsc::channel();
        self.send(Message::Spawn(Request {
            dir: dir.to_owned(),
            marker: marker.to_owned(),
            reply,
        }))?;
        let mut spawned = answer.recv().map_err(|_| SpawnError::ThreadGone)??;
        spawned.latency = started.elapsed();
        Ok(spawned)
    }

    /// Ends the spares and starts no more (the worker stopping); the
    /// answer comes once they are gone. Attempts still get fresh children.
    pub fn end_spares(&self) -> mpsc::Receiver<()> {
        let (ack, done) = mpsc::channel();
        let _ = self.send(Message::EndSpares(ack));
        done
    }

    fn send(&self, m: Message) -> Result<(), SpawnError> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(m)
            .map_err(|_| SpawnError::ThreadGone)
    }
}

/// What a child needs before it is started (see [`Forker::prepare`]).
struct Prepared {
    cgroup: Option<ChildCgroup>,
    setup: ChildSetup,
    delivery: Delivery,
    /// The delivery pipe's write end: open here until the child is
    /// started, then closed (the child keeps its copy).
    write: OwnedFd,
}

/// The forking thread's state.
struct Forker {
    exe: PathBuf,
    preload: Option<OsString>,
    limits: ChildLimits,
    cgroups: Option<Arc<CgroupHome>>,
    /// How many spares to keep.
    spares: usize,
    pool: VecDeque<Spare>,
    started_spares: u64,
    /// The last spare failed to start: no more until the next request.
    refill_failed: bool,
    /// Spares start in the idle scheduling class (until one could not be
    /// raised out of it).
    idle_spares: bool,
}

impl Forker {
    fn serve(mut self, rx: mpsc::Receiver<Message>) {
        loop {
            let refill = self.pool.len() < self.spares && !self.refill_failed;
            let message = if refill {
                match rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => {
                        self.add_spare();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            match message {
                Message::Spawn(req) => {
                    self.refill_failed = false;
                    let _ = req.reply.send(self.child_for(&req.dir, &req.marker));
                }
                Message::EndSpares(ack) => {
                    self.spares = 0;
                    self.end_spares();
                    let _ = ack.send(());
                }
            }
        }
        self.end_spares();
    }

    /// The oldest live spare, assigned to `dir`; a fresh child when none.
    fn child_for(&mut self, dir: &Path, marker: &str) -> Result<Spawned, SpawnError> {
        if !spare::fits(marker) {
            return self.fresh(dir, marker);
        }
        while let Some(spare) = self.pool.pop_front() {
            let Some(spare) = self.raised(spare) else {
                continue;
            };
            if let Ok(spawned) = spare.assign(dir, marker) {
                return Ok(spawned);
            }
        }
        self.fresh(dir, marker)
    }

    /// `spare` in the normal scheduling class, or `None` when it could not
    /// be put there (it is ended; when that was refused, later spares start
    /// in the normal class). A spare found gone is given back: its
    /// assignment finds it dead and logs what it wrote.
    fn raised(&mut self, spare: Spare) -> Option<Spare> {
        let e = match spare.raise() {
            Ok(()) => return Some(spare),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENOENT)) => {
                return Some(spare)
            }
            Err(e) => e,
        };
        if e.kind() != io::ErrorKind::PermissionDenied {
            tracing::warn!(error = %e, "could not raise a spare child out of the idle scheduling class: it is ended");
        } else if self.idle_spares {
            tracing::warn!(error = %e, "may not raise a spare child out of the idle scheduling class: it is ended, and spares start in the normal class from now on");
            self.idle_spares = false;
        }
        spare.end(Instant::now() + SPARE_RAISE_END);
        None
    }

    fn fresh(&self, dir: &Path, marker: &str) -> Result<Spawned, SpawnError> {
        let p = self.prepare()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_CHILD))?;
        let mut cmd = self.command(marker, &p.write);
        cmd.arg("--child")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let process = Running::spawn(&mut cmd, p.setup)?;
        Ok(Spawned {
            process,
            cgroup: p.cgroup,
            delivery: p.delivery,
            marker: marker.to_owned(),
            latency: Duration::ZERO,
            spare_for: None,
        })
    }

    fn add_spare(&mut self) {
        self.started_spares += 1;
        let marker = spare::spare_marker(self.started_spares);
        let started = self.prepare().and_then(|mut p| {
            p.setup.idle = self.idle_spares;
            let cmd = self.command(&marker, &p.write);
            Ok(Spare::start(cmd, p.setup, p.cgroup, p.delivery, marker)?)
        });
        match started {
            Ok(spare) => self.pool.push_back(spare),
            Err(e) => {
                tracing::warn!(error = %e, "failed to start a spare child; attempts start their own");
                self.refill_failed = true;
            }
        }
    }

    /// A child's cgroup, its set-up (joining that cgroup, keeping the
    /// delivery pipe's write end across exec) and its delivery pipe.
    fn prepare(&self) -> Result<Prepared, SpawnError> {
        let cgroup = self
            .cgroups
            .as_ref()
            .map(|home| home.child("attempt"))
            .transpose()?;
        let mut setup = self.limits.setup(cgroup.as_ref())?;
        let (delivery, write) = delivery::pipe()?;
        setup.keep_fd = Some(write.as_raw_fd());
        Ok(Prepared {
            cgroup,
            setup,
            delivery,
            write,
        })
    }

    /// The worker binary with a child's environment: `marker`, the delivery
    /// pipe's write end `delivery`, the worker's own `LD_PRELOAD` only.
    fn command(&self, marker: &str, delivery: &OwnedFd) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.env_remove("LD_PRELOAD")
            .env(ATTEMPT_MARKER, marker)
            .env(DELIVERED_FD, delivery.as_raw_fd().to_string());
        if let Some(p) = &self.preload {
            cmd.env("LD_PRELOAD", p);
        }
        cmd
    }

    fn end_spares(&mut self) {
        let deadline = Instant::now() + SPARE_END_GRACE;
        for spare in self.pool.drain(..) {
            spare.end(deadline);
        }
    }
}
