//! The JSON answers of the worker's endpoints.

use serde::{Deserialize, Serialize};

/// `/probe`'s answer. `status` is one of `queued`, `running`, `done`,
/// `failed`, `NotFound`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Base64 of RocksDB's serialized result, when `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The closed outcome name, when `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How far a running attempt is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub elapsed_ms: u64,
    pub estimate_ms: u64,
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
    pub status: String,
    pub addr: String,
}

/// Every error answer: `{"status": ..., "error": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub status: String,
    pub error: String,
}
