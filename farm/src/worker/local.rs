//! Starting a `dcompact-worker` binary as a child process on loopback, and
//! finding its address from the first line it prints. The demo and the
//! end-to-end tests use it; the process is handled by
//! [`crate::worker::process`].

use crate::worker::cgroup::home::sweep_after;
use crate::worker::process::running::{Running, Waited};
use crate::worker::process::setup::ChildSetup;
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LocalWorkerError {
    #[error("failed to start {bin}: {source}")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("worker exited before listening: {0}")]
    NoAddress(String),
}

/// A worker child process; killed (SIGKILL) when dropped unless stopped.
/// Once it is gone, whatever it left of its attempts (cgroups and their
/// processes, found as a worker started later on the same root would) is
/// ended too, so a test or demo that kills a worker leaves nothing behind.
pub struct LocalWorker {
    process: Running,
    /// `ip:port` the worker listens on.
    pub addr: String,
    /// Its `WORKER_DB_ROOT`, when the command names one.
    root: Option<PathBuf>,
}

impl LocalWorker {
    /// Starts `bin` on `127.0.0.1:0` with `env` added to this process's
    /// environment.
    pub fn start(bin: &Path, env: &[(&str, String)]) -> Result<Self, LocalWorkerError> {
        Self::start_logging_to(bin, env, Stdio::inherit())
    }

    /// [`LocalWorker::start`] with the worker's log (its stderr) sent to
    /// `log`.
    pub fn start_logging_to(
        bin: &Path,
        env: &[(&str, String)],
        log: Stdio,
    ) -> Result<Self, LocalWorkerError> {
        let mut cmd = Command::new(bin);
        cmd.arg("--listen").arg("127.0.0.1:0").stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::start_command(cmd, log)
    }

    /// Runs `cmd`, a worker (or a wrapper that ends by running one, such as
    /// a sandbox), and reads the address from the first line it prints.
    pub fn start_command(mut cmd: Command, log: Stdio) -> Result<Self, LocalWorkerError> {
        cmd.stdout(Stdio::piped()).stderr(log);
        let root = cmd
            .get_envs()
            .find(|(k, _)| *k == "WORKER_DB_ROOT")
            .and_then(|(_, v)| v.map(PathBuf::from));
        let mut process = Running::spawn(&mut cmd, ChildSetup::default()).map_err(|source| {
            LocalWorkerError::Spawn {
                bin: cmd.get_program().to_string_lossy().into_owned(),
                source,
            }
        })?;
        let stdout = process.take_stdout().expect("stdout was piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = match (read, line.trim().strip_prefix("listening on ")) {
            (Ok(_), Some(addr)) => addr.to_owned(),
            _ => {
                let status = process.kill().map(|s| s.to_string()).unwrap_or_default();
                return Err(LocalWorkerError::NoAddress(format!(
                    "first line {line:?}, {status}"
                )));
            }
        };
        Ok(LocalWorker {
            process,
            addr,
            root,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends `sig` to the worker.
    pub fn signal(&self, sig: Signal) -> std::io::Result<()> {
        self.process.signal(sig)
    }

    /// SIGKILL, as a crash would: what the worker leaves stays until a
    /// worker is started on its root, or this handle is dropped.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
    }

    /// Waits up to `timeout` for the worker to exit by itself, without
    /// signalling it; its exit status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        match self.process.wait(Some(Instant::now() + timeout), &|| false) {
            Ok(Waited::Exited(status)) => Some(status),
            _ => None,
        }
    }

    /// SIGTERM, then waits up to `grace` before SIGKILL. Returns whether the
    /// worker exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        self.process.terminate(grace).is_ok_and(|t| !t.escalated)
    }
}

impl Drop for LocalWorker {
    fn drop(&mut self) {
        self.kill();
        if let Some(root) = &self.root {
            match sweep_after(root) {
                Ok(Some(swept)) if swept.processes > 0 => tracing::warn!(
                    root = %root.display(),
                    cgroups = swept.cgroups,
                    processes = swept.processes,
                    "ended what a killed worker left"
                ),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "no cgroups of the worker to look at"),
            }
        }
    }
}
