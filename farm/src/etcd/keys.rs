//! What the farm keeps in etcd, below the root (`ETCD_ROOT` / `etcd_root`):
//!
//! | key | value | lifetime |
//! | --- | --- | --- |
//! | `<root>/workers/<addr>` | [`Registration`] JSON | the worker's lease: gone a TTL after the worker dies, at once when it stops |
//! | `<root>/dcompact-res/<attempt name>` | `done` | a lease of `done_ttl`, put when an attempt ends (any outcome) |
//!
//! `<attempt name>` is `<instance>/<start_time>/<db>/job-%05d-%02d/att-%02d`,
//! so a hoster watches `<root>/dcompact-res/<instance>/<start_time>/<db>/`
//! and sees only its own attempts.

use serde::{Deserialize, Serialize};

pub fn workers_prefix(root: &str) -> String {
    format!("{root}/workers/")
}

pub fn worker_key(root: &str, addr: &str) -> String {
    format!("{root}/workers/{addr}")
}

pub fn done_prefix(root: &str) -> String {
    format!("{root}/dcompact-res/")
}

pub fn done_key(root: &str, attempt_name: &str) -> String {
    format!("{root}/dcompact-res/{attempt_name}")
}

pub const DONE: &str = "done";

/// A worker's entry: where to reach it and how loaded it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// `http://<ADVERTISE_ADDR>`: what hosters POST to.
    pub url: String,
    /// The page for people (`/stat`).
    pub web_url: String,
    /// The weight under `kWeight`: `MAX_PARALLEL_COMPACTIONS`.
    pub weight: u32,
    /// `MAX_PARALLEL_COMPACTIONS` and `MAX_WAITING_COMPACTIONS`.
    pub capacity: usize,
    pub max_waiting: usize,
    /// Attempts running and waiting when this was written.
    pub running: usize,
    pub waiting: usize,
    /// The worker's crate version.
    pub version: String,
    /// The protocol version the worker speaks (1 when absent).
    #[serde(default = "crate::protocol::version::unversioned")]
    pub protocol: u32,
}
