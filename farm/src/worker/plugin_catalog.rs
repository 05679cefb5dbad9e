//! Which plugin classes this worker can run, in which versions.
//!
//! In-process, the worker loads `PLUGINS` itself and reads what they
//! registered. With `MULTI_PROCESS` plugin code never runs in the
//! supervisor (a plugin that crashes must cost one attempt, not the
//! worker): a short-lived child (`dcompact-worker --describe-plugins`) loads
//! them and prints the classes, in the background at start-up. Until it has
//! answered, jobs that name plugin classes are refused (412) and the hoster
//! compacts them locally.

use crate::protocol::job::PluginVersion;
use crate::rocks::plugins::{self, PluginClass, PluginError};
use crate::worker::cgroup::error::CgroupError;
use crate::worker::cgroup::group::ChildCgroup;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::child::limits::ChildLimits;
use crate::worker::child::spec::{attempt_marker, ATTEMPT_MARKER};
use crate::worker::process::exit::{extract, Exit};
use crate::worker::process::marked::end_marked;
use crate::worker::process::running::{Running, Waited};
use nix::sys::signal::Signal;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

/// The marker the describing child and its descendants carry.
const DESCRIBE_MARKER: &str = "describe-plugins";

/// How long the describing child may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the output may take to arrive once every process that could
/// hold the pipe has ended.
const OUTPUT_WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Catalog {
    classes: RwLock<Option<Vec<PluginClass>>>,
}

impl Catalog {
    /// Loads `paths` into this process (in-process attempts).
    pub fn load_here(paths: &[PathBuf]) -> Result<Self, PluginError> {
        Ok(Catalog {
            classes: RwLock::new(Some(plugins::load_all(paths)?)),
        })
    }

    /// Starts a child that loads `paths` and reports their classes
    /// (MULTI_PROCESS). The child runs plugin code: it gets the limits of
    /// an attempt child, and a cgroup of its own when `cgroups` is set.
    pub fn describe_in_child(
        exe: PathBuf,
        paths: Vec<PathBuf>,
        limits: ChildLimits,
        cgroups: Option<Arc<CgroupHome>>,
    ) -> Arc<Self> {
        let catalog = Arc::new(Catalog::default());
        if paths.is_empty() {
            *catalog.classes.write().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
            return catalog;
        }
        let filling = catalog.clone();
        let spawned = std::thread::Builder::new().name("plugin-catalog".into()).spawn(move || {
            match describe(&exe, &paths, &limits, cgroups.as_deref()) {
                Ok(classes) => {
                    tracing::info!(classes = ?classes, "plugin catalog ready");
                    *filling.classes.write().unwrap_or_else(|p| p.into_inner()) = Some(classes);
                }
                Err(e) => tracing::error!(error = &e as &dyn std::error::Error, "plugins could not be described: jobs naming plugin classes will be refused"),
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "failed to start the plugin catalog thread");
        }
        catalog
    }

    /// The version of plugin class `name` of `kind`, `None` when no plugin
    /// provides it, `Err` when the catalog is not known yet.
    pub fn version(&self, kind: &str, name: &str) -> Result<Option<u32>, NotReady> {
        let classes = self.classes.read().unwrap_or_else(|p| p.into_inner());
        let classes = classes.as_ref().ok_or(NotReady)?;
        Ok(classes
            .iter()
            .find(|c| c.kind == kind && c.name == name)
            .map(|c| c.version))
    }

    pub fn classes(&self) -> Vec<PluginClass> {
        self.classes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }
}

/// The catalog has not been read from the describing child yet.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the plugin catalog is not ready yet")]
pub struct NotReady;

/// Why a plugin class cannot run a job: the hoster uses another version.
#[derive(Debug, thiserror::Error)]
pub enum VersionMismatch {
    #[error("{kind} {name}: the hoster uses version {hoster}, this worker has version {worker}")]
    Differs {
        kind: String,
        name: String,
        hoster: u32,
        worker: u32,
    },
    #[error("{kind} {name} is a plugin class (version {worker} here) but the job does not say which version the hoster uses")]
    Unstated {
        kind: String,
        name: String,
        worker: u32,
    },
}

/// Checks a plugin class that the job's OPTIONS name against the versions
/// the hoster sent.
pub fn check_version(
    kind: &str,
    name: &str,
    worker_version: u32,
    hoster: &[PluginVersion],
) -> Result<(), VersionMismatch> {
    // A C++ plugin that registered itself carries no version to compare.
    if worker_version == 0 {
        return Ok(());
    }
    let (kind, name_owned) = (kind.to_owned(), name.to_owned());
    match hoster.iter().find(|p| p.name == name) {
        Some(p) if p.version == worker_version => Ok(()),
        Some(p) => Err(VersionMismatch::Differs {
            kind,
            name: name_owned,
            hoster: p.version,
            worker: worker_version,
        }),
        None => Err(VersionMismatch::Unstated {
            kind,
            name: name_owned,
            worker: worker_version,
        }),
    }
}

/// Why the plugins could not be described.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("failed to prepare the describing child: {0}")]
    Setup(#[from] CgroupError),
    #[error("failed to start {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to wait for the describing child: {0}")]
    Wait(#[source] io::Error),
    #[error("the describing child took more than {0:?}")]
    TimedOut(Duration),
    #[error("the describing child ended with {0}")]
    Failed(Exit),
    #[error("the describing child was killed by the kernel's OOM handling in its cgroup (CHILD_MEMORY_LIMIT)")]
    OutOfMemory,
    #[error("the describing child's output could not be read")]
    NoOutput,
    #[error("unreadable plugin description: {0}")]
    Unreadable(#[source] serde_json::Error),
}

fn describe(
    exe: &Path,
    paths: &[PathBuf],
    limits: &ChildLimits,
    cgroups: Option<&CgroupHome>,
) -> Result<Vec<PluginClass>, DescribeError> {
    let marker = attempt_marker(DESCRIBE_MARKER);
    let mut cgroup = cgroups.map(|home| home.child("describe")).transpose()?;
    let setup = limits.setup(cgroup.as_ref())?;
    let mut cmd = Command::new(exe);
    cmd.arg("--describe-plugins")
        .args(paths)
        // Loaded with dlopen after a look at RocksDB's built-in classes, not
        // preloaded: what the plugins add is the difference.
        .env_remove("LD_PRELOAD")
        .env(ATTEMPT_MARKER, &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Running::spawn(&mut cmd, setup).map_err(|source| DescribeError::Spawn {
        exe: exe.to_owned(),
        source,
    })?;
    let output = read_in_background(&mut child);
    let deadline = Instant::now() + DESCRIBE_TIMEOUT;
    let waited = child.wait(Some(deadline), &|| false);
    let status = match waited {
        Ok(Waited::Exited(status)) => Ok(status),
        Ok(_) => Err(DescribeError::TimedOut(DESCRIBE_TIMEOUT)),
        Err(e) => Err(DescribeError::Wait(e)),
    };
    if status.is_err() {
        let _ = child.kill();
    }
    let oom = cgroup.as_ref().map_or(0, ChildCgroup::oom_kills);
    // Whatever the plugins' loading left behind goes with the child, before
    // the output is read: a descendant that kept the pipe open would keep
    // the read from ever ending.
    match cgroup.as_mut() {
        Some(cg) => {
            if let Err(e) = cg.end() {
                tracing::warn!(error = %e, "failed to end the describing child's cgroup");
            }
        }
        None => {
            let _ = child.pid().signal(Signal::SIGKILL);
            end_marked(ATTEMPT_MARKER, &marker);
        }
    }
    let exit = extract(status?);
    if exit.is_signal(Signal::SIGKILL) && oom > 0 {
        return Err(DescribeError::OutOfMemory);
    }
    if exit != Exit::Code(0) {
        return Err(DescribeError::Failed(exit));
    }
    let out = output
        .recv_timeout(OUTPUT_WAIT)
        .map_err(|_| DescribeError::NoOutput)?;
    serde_json::from_str(out.trim()).map_err(DescribeError::Unreadable)
}

/// Reads the child's stdout to its end on a thread of its own, so a child
/// that writes more than a pipe holds is not blocked.
fn read_in_background(child: &mut Running) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut stdout) = child.take_stdout() {
        let spawned = std::thread::Builder::new()
            .name("plugin-catalog-read".into())
            .spawn(move || {
                let mut out = String::new();
                let _ = stdout.read_to_string(&mut out);
                let _ = tx.send(out);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "failed to start a thread to read the describing child");
        }
    }
    rx
}

/// `dcompact-worker --describe-plugins <paths>`: loads the plugins and
/// prints their classes as JSON.
pub fn describe_main(paths: &[PathBuf]) -> i32 {
    let classes = match plugins::load_all(paths) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match serde_json::to_string(&classes) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
