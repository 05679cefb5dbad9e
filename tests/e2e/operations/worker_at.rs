//! Starting a worker on a chosen address and root, so that a test can stop
//! it and start its successor where hosters expect it.

use crate::harness::*;
use farm::worker::local::LocalWorker;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A worker listening on `listen` (`127.0.0.1:0` for any port) with the
/// root `dir/<name>`, the hoster roots of [`test_hoster_roots`], logging at
/// `info` to `dir/<name>.log` (appended: successors share it).
pub fn start_worker_at(
    dir: &Path,
    name: &str,
    listen: &str,
    extra: &[(&str, String)],
) -> LocalWorker {
    let mut cmd = Command::new(worker_bin());
    cmd.arg("--listen").arg(listen).stdin(Stdio::null());
    let env = [
        ("WORKER_DB_ROOT", dir.join(name).display().to_string()),
        ("HOSTER_ROOTS", test_hoster_roots(dir)),
        ("RUST_LOG", "info".to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
    ];
    for (k, v) in env.iter().chain(extra.iter()) {
        cmd.env(k, v);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_of(dir, name))
        .expect("worker log");
    LocalWorker::start_command(cmd, Stdio::from(log)).expect("worker starts")
}

/// Where [`start_worker_at`] logs.
pub fn log_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// `POST /drain` to `worker` with `headers`: the status and the answer.
pub fn post_drain(worker: &LocalWorker, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    post(&format!("{}/drain", worker.base_url()), b"", headers)
}
