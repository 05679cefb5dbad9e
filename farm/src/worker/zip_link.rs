//! The worker's link to its zipserver (MULTI_PROCESS only): the sidecar it
//! started (or the socket of one already running), what each child is told
//! (socket and time bound, in `child.json`), and the children's counts of
//! blocks sent and compressed in-process, summed for `/stat`.

use crate::worker::child::spec::{ChildZip, ZIP_COUNTS};
use crate::worker::config::WorkerConfig;
use crate::worker::root_guard;
use crate::zipserver::client::ZipCounts;
use crate::zipserver::options::ZipServerOptions;
use crate::zipserver::sidecar::{self, Sidecar, SidecarStatus};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub struct ZipLink {
    socket: PathBuf,
    timeout: Duration,
    blocks_in_flight: u32,
    /// `None` when the zipserver is someone else's (`ZIP_SERVER_SOCKET`).
    sidecar: Mutex<Option<Sidecar>>,
    /// Summed over the children that have ended.
    counts: Mutex<ZipCounts>,
}

/// The zipserver part of `/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct ZipLinkSnapshot {
    pub socket: String,
    /// The worker's own zipserver; absent when it uses a running one.
    pub sidecar: Option<SidecarStatus>,
    /// Blocks the children sent and compressed in-process.
    pub counts: ZipCounts,
}

/// The directory of a zipserver socket named by a setting must be private
/// to the worker's user.
fn check_socket_dir(name: &'static str, socket: &Path) -> std::io::Result<()> {
    let dir = socket.parent().unwrap_or(Path::new("/"));
    root_guard::check_private_dir(name, dir).map_err(std::io::Error::other)
}

impl ZipLink {
    /// With MULTI_PROCESS and a zipserver configured: starts the worker's
    /// zipserver (unless `ZIP_SERVER_SOCKET` names a running one).
    pub fn start(config: &WorkerConfig, worker_exe: &Path) -> std::io::Result<Option<ZipLink>> {
        if !config.multi_process {
            return Ok(None);
        }
        let (socket, options, sidecar) = match (&config.zip_server_socket, &config.zip_server) {
            (None, None) => return Ok(None),
            (Some(socket), options) => {
                check_socket_dir("ZIP_SERVER_SOCKET", socket)?;
                (socket.clone(), options.clone().unwrap_or_default(), None)
            }
            (None, Some(options)) => {
                // By default beside the attempts, in the worker's own 0700 root.
                let socket = match &options.unix_socket {
                    Some(s) => {
                        check_socket_dir("ZIP_SERVER_OPTIONS", s)?;
                        s.clone()
                    }
                    None => config.worker_db_root.join("zipserver.sock"),
                };
                let sidecar = Sidecar::start(
                    sidecar::binary_beside(worker_exe),
                    options.render(&socket),
                    config.worker_db_root.join("zipserver.log"),
                )?;
                (socket, options.clone(), Some(sidecar))
            }
        };
        let ZipServerOptions {
            client_timeout,
            blocks_in_flight,
            ..
        } = options;
        Ok(Some(ZipLink {
            socket,
            timeout: client_timeout,
            blocks_in_flight,
            sidecar: Mutex::new(sidecar),
            counts: Mutex::new(ZipCounts::default()),
        }))
    }

    /// What the child of the attempt named `attempt` is told.
    pub fn child_spec(&self, attempt: &str) -> ChildZip {
        ChildZip {
            socket: self.socket.clone(),
            client: attempt.to_owned(),
            timeout_ms: self.timeout.as_millis() as u64,
            blocks_in_flight: self.blocks_in_flight,
        }
    }

    /// Adds the counts an ended child left in its attempt directory.
    pub fn collect(&self, attempt_dir: &Path) -> Option<ZipCounts> {
        let bytes = std::fs::read(attempt_dir.join(ZIP_COUNTS)).ok()?;
        let c: ZipCounts = serde_json::from_slice(&bytes).ok()?;
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&c);
        Some(c)
    }

    pub fn snapshot(&self) -> ZipLinkSnapshot {
        ZipLinkSnapshot {
            socket: self.socket.display().to_string(),
            sidecar: self
                .sidecar
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(Sidecar::status),
            counts: *self.counts.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Takes the worker's zipserver out, to be stopped (blocking) once no
    /// attempt runs any more.
    pub fn take_sidecar(&self) -> Option<Sidecar> {
        self.sidecar
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}
