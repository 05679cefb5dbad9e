//! The JSON answers of the worker's endpoints (`docs/PROTOCOL.md` has an
//! example of each).

use super::version;
use serde::{Deserialize, Serialize};

/// `/probe`'s answer. `status` is one of [`QUEUED`], [`RUNNING`], [`DONE`],
/// [`FAILED`]; an unknown attempt is a 404 [`ErrorAnswer`] with
/// [`NOT_FOUND`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    pub status: String,
    /// How far the attempt is, when `running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Base64 of RocksDB's serialized result, when `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The closed outcome name, when `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// What went wrong, in words, when `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How far a running attempt is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Since the attempt started running (not since it was accepted).
    pub elapsed_ms: u64,
    /// The hoster's estimate (`estimate_time_us` / 1000; 0 when unknown).
    pub estimate_ms: u64,
    /// The input SSTs' total size at admission.
    pub input_bytes: u64,
}

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const NOT_FOUND: &str = "NotFound";

/// The answer of `/dcompact` when accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitAnswer {
    /// Always `ok`.
    pub status: String,
    /// `ADVERTISE_ADDR`, or the address the worker listens on.
    pub addr: String,
    /// The protocol version the worker speaks (1 when absent).
    #[serde(default = "version::unversioned")]
    pub protocol: u32,
}

/// The answer of `/shutdown` when a cancel was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// Always `ok`.
    pub status: String,
}

/// The answer of `/drain` (protocol 3): the drain is under way, begun by
/// this request or earlier by `cause`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainAnswer {
    /// Always `ok`.
    pub status: String,
    /// What began the drain: `POST /drain`, `SIGUSR1`, `SIGTERM`,
    /// `SIGINT` or `TERMINATION_CHECK_URL`.
    pub cause: String,
}

/// The answer of `/health` while the worker takes jobs (while it stops,
/// a 412 [`ErrorAnswer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// Always `OK`.
    pub status: String,
    /// The protocol version the worker speaks (1 when absent).
    #[serde(default = "version::unversioned")]
    pub protocol: u32,
}

/// Every error answer: `{"status": ..., "error": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// A short closed word: `malformed`, `unauthorized`, `refused`, `busy`,
    /// `stopping`, `timeout`, `NotFound`, `internal`.
    pub status: String,
    /// What is wrong, in words.
    pub error: String,
}
