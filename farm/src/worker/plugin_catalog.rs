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
use crate::worker::child::spec::{attempt_marker, ATTEMPT_MARKER};
use crate::worker::child::supervise::end_attempt_processes;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The marker the describing child and its descendants carry.
const DESCRIBE_MARKER: &str = "describe-plugins";

/// How long the describing child may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// (MULTI_PROCESS).
    pub fn describe_in_child(exe: PathBuf, paths: Vec<PathBuf>) -> std::sync::Arc<Self> {
        let catalog = std::sync::Arc::new(Catalog::default());
        if paths.is_empty() {
            *catalog.classes.write().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
            return catalog;
        }
        let filling = catalog.clone();
        let spawned = std::thread::Builder::new().name("plugin-catalog".into()).spawn(move || {
            match describe(&exe, &paths) {
                Ok(classes) => {
                    tracing::info!(classes = ?classes, "plugin catalog ready");
                    *filling.classes.write().unwrap_or_else(|p| p.into_inner()) = Some(classes);
                }
                Err(e) => tracing::error!(error = %e, "plugins could not be described: jobs naming plugin classes will be refused"),
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "failed to start the plugin catalog thread");
        }
        catalog
    }

    /// The version of plugin class `name` of `kind`, `None` when no plugin
    /// provides it, `Err` when the catalog is not known yet.
    pub fn version(&self, kind: &str, name: &str) -> Result<Option<u32>, &'static str> {
        let classes = self.classes.read().unwrap_or_else(|p| p.into_inner());
        let classes = classes
            .as_ref()
            .ok_or("the plugin catalog is not ready yet")?;
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

/// Checks a plugin class that the job's OPTIONS name against the versions
/// the hoster sent.
pub fn check_version(
    kind: &str,
    name: &str,
    worker_version: u32,
    hoster: &[PluginVersion],
) -> Result<(), String> {
    // A C++ plugin that registered itself carries no version to compare.
    if worker_version == 0 {
        return Ok(());
    }
    match hoster.iter().find(|p| p.name == name) {
        Some(p) if p.version == worker_version => Ok(()),
        Some(p) => Err(format!(
            "{kind} {name}: the hoster uses version {}, this worker has version {worker_version}",
            p.version
        )),
        None => Err(format!(
            "{kind} {name} is a plugin class (version {worker_version} here) but the job does not say which version the hoster uses"
        )),
    }
}

fn describe(exe: &Path, paths: &[PathBuf]) -> Result<Vec<PluginClass>, String> {
    let marker = attempt_marker(DESCRIBE_MARKER);
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
    // SAFETY: prctl is async-signal-safe; the child dies with this thread's
    // process rather than outliving a worker that stopped.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("failed to start {}: {e}", exe.display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > DESCRIBE_TIMEOUT => {
                end_attempt_processes(child.id() as i32, &marker);
                let _ = child.wait();
                return Err(format!(
                    "the describing child took more than {DESCRIBE_TIMEOUT:?}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("failed to wait for the describing child: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    // Whatever the plugins' loading left behind goes with the child.
    end_attempt_processes(child.id() as i32, &marker);
    if !status.success() {
        return Err(format!("the describing child ended with {status}"));
    }
    serde_json::from_str(out.trim()).map_err(|e| format!("unreadable plugin description: {e}"))
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
