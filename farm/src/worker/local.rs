//! Starting a `dcompact-worker` binary as a child process on loopback, and
//! finding its address from the first line it prints. The demo and the
//! end-to-end tests use it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
pub struct LocalWorker {
    child: Child,
    /// `ip:port` the worker listens on.
    pub addr: String,
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
        let mut child = cmd.spawn().map_err(|source| LocalWorkerError::Spawn {
            bin: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = match (read, line.trim().strip_prefix("listening on ")) {
            (Ok(_), Some(addr)) => addr.to_owned(),
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(LocalWorkerError::NoAddress(format!(
                    "first line {line:?}, {status}"
                )));
            }
        };
        Ok(LocalWorker { child, addr })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `grace` before SIGKILL. Returns whether the
    /// worker exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        // SAFETY: signalling our own child by pid; it has not been reaped
        // (reaping happens only in `kill`/`stop`, which take `&mut self`).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }
}

impl Drop for LocalWorker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
