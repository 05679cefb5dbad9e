//! The worker's link to its zipserver (MULTI_PROCESS only): the sidecar it
//! started (or the socket of one already running), what each child is told
//! (socket, time bound, transport, in `child.json`), and the children's
//! counts of blocks sent and compressed in-process, summed for `/stat`.
//!
//! With `MULTI_PROCESS=true` a worker starts a zipserver when
//! `ZIP_SERVER_OPTIONS` asks for one: with the options given, or with `on`
//! the defaults and HTTP on a free loopback port
//! (`ZipServerOptions::started_by_default`). Unset or `off`, it starts
//! none: on a host where the compactions already keep every core busy the
//! sidecar costs throughput for small blocks (`docs/BENCHMARKS.md`), so it
//! is not on by default. `ZIP_SERVER_SOCKET` names a zipserver already
//! running instead. Without `MULTI_PROCESS` there are no children to
//! compress for: `ZIP_SERVER_OPTIONS` is only warned about.

use crate::worker::child::spec::{ChildZip, ZIP_COUNTS};
use crate::worker::config::WorkerConfig;
use crate::worker::root_guard;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zipserver::client::ZipCounts;
use zipserver::options::{Setting, ZipServerOptions};
use zipserver::sidecar::{self, Sidecar, SidecarStatus};

pub struct ZipLink {
    socket: PathBuf,
    options: ZipServerOptions,
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
    /// With MULTI_PROCESS: starts the worker's zipserver when
    /// `ZIP_SERVER_OPTIONS` asks for one (or links to the running one
    /// `ZIP_SERVER_SOCKET` names).
    pub fn start(config: &WorkerConfig, worker_exe: &Path) -> std::io::Result<Option<ZipLink>> {
        let given = match &config.zip_server {
            Some(Setting::Off) => return Ok(None),
            Some(Setting::On(o)) => Some(o.clone()),
            None => None,
        };
        if !config.multi_process {
            if given.is_some() {
                tracing::warn!(
                    "ZIP_SERVER_OPTIONS has no effect without MULTI_PROCESS=true: attempts compress in the worker"
                );
            }
            return Ok(None);
        }
        if given.is_none() && config.zip_server_socket.is_none() {
            return Ok(None);
        }
        let (socket, options, sidecar) = match &config.zip_server_socket {
            Some(socket) => {
                check_socket_dir("ZIP_SERVER_SOCKET", socket)?;
                (socket.clone(), given.unwrap_or_default(), None)
            }
            None => {
                let options = given.unwrap_or_else(ZipServerOptions::started_by_default);
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
                (socket, options, Some(sidecar))
            }
        };
        Ok(Some(ZipLink {
            socket,
            options,
            sidecar: Mutex::new(sidecar),
            counts: Mutex::new(ZipCounts::default()),
        }))
    }

    /// What the child of the attempt named `attempt` is told.
    pub fn child_spec(&self, attempt: &str) -> ChildZip {
        let o = &self.options;
        ChildZip {
            socket: self.socket.clone(),
            client: attempt.to_owned(),
            timeout_ms: o.client_timeout.as_millis() as u64,
            blocks_in_flight: o.blocks_in_flight,
            transport: o.transport,
            spin_us: o.client_spin.as_micros() as u64,
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
