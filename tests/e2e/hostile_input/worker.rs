//! The sandboxed worker the attack tests send their requests to.

use crate::harness::*;
use crate::sandbox::{Sandbox, SandboxedWorker};
use std::path::Path;

/// A worker in the sandbox, with `dir` shared and its root, hoster roots
/// and settings below it.
pub fn start(dir: &Path, extra: &[(&str, String)]) -> SandboxedWorker {
    Sandbox::new().share(dir).start_test_worker(dir, extra)
}

/// The value of an unlabelled series in the worker's `/metrics`.
pub fn metric(worker: &SandboxedWorker, name: &str) -> f64 {
    let text = ureq::get(&format!("{}/metrics", worker.base_url()))
        .call()
        .expect("metrics answer")
        .into_string()
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Waits until the job's attempt is done, and says so.
pub fn wait_done(worker: &SandboxedWorker, job: &farm::protocol::job::Job) {
    eventually("the attempt is done", || {
        let p = probe_job(worker, job);
        assert_ne!(p["status"], "failed", "{p}");
        p["status"] == "done"
    });
}
