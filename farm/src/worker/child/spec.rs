//! The contract between the supervisor and a child: the files in the attempt
//! directory and the child's exit codes.
//!
//! | file | written by | what |
//! | --- | --- | --- |
//! | `job.json` | supervisor | the job as received (input in base64) |
//! | `child.json` | supervisor | [`ChildSpec`]: mapped paths (a trusted root and a path beneath it), identity |
//! | `LOG.child` | child (stdout and stderr) | what the child said |
//! | `LOG.rocksdb` | child | RocksDB's info log |
//! | `result.bin` | child, written to `result.bin.tmp` then renamed | RocksDB's serialized result |
//! | `error.txt` | child | RocksDB's message when the compaction failed |
//! | `plugin_counts.json` | child | merges and filter decisions of plugin code |
//! | `zip_counts.json` | child | blocks sent to the zipserver and compressed in-process |
//! | `timings.child.json` | child | when its steps happened (`worker::timings`) |
//! | `remote_counts.json` | child, HTTP storage mode | what it fetched and pushed (`worker::remote::counts`) |

use crate::protocol::attempt::AttemptKey;
use crate::protocol::remote::RemoteStorage;
use crate::worker::paths::Mapped;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const CHILD_SPEC: &str = "child.json";
pub const RESULT: &str = "result.bin";
pub const RESULT_TMP: &str = "result.bin.tmp";
pub const ERROR: &str = "error.txt";
pub const LOG_CHILD: &str = "LOG.child";
/// What plugin code did in the child, written as it ends.
pub const PLUGIN_COUNTS: &str = "plugin_counts.json";
/// What the child's compression did (`zipserver::client::ZipCounts`).
pub const ZIP_COUNTS: &str = "zip_counts.json";
/// What the child fetched and pushed in the HTTP storage mode.
pub const REMOTE_COUNTS: &str = "remote_counts.json";

/// The environment variable every process of an attempt inherits: its value
/// is [`attempt_marker`], so the supervisor can find descendants that left
/// the process group.
pub const ATTEMPT_MARKER: &str = "DCOMPACT_ATTEMPT";

/// The marker of an attempt (or helper) named `name` of this worker:
/// `<name>@<worker pid>`. Attempt names are not unique on a host (two
/// workers can run attempts of the same name for hosters with the same
/// instance and DB names), and ending an attempt kills every process with
/// its marker, so the marker names the worker too.
pub fn attempt_marker(name: &str) -> String {
    format!("{name}@{}", std::process::id())
}

/// Exit codes of the child. Any other code, or a signal, is classified as
/// such by the supervisor.
pub const EXIT_OK: i32 = 0;
/// RocksDB reported an error; `error.txt` holds its message.
pub const EXIT_COMPACTION_FAILED: i32 = 10;
/// The canceled flag was set (SIGTERM) and RocksDB stopped.
pub const EXIT_CANCELLED: i32 = 11;
/// The attempt could not be prepared; `error.txt` says why.
pub const EXIT_SETUP_FAILED: i32 = 12;

/// `child.json`: what the child needs beyond `job.json`, all in the worker's
/// path space and already checked by admission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSpec {
    /// The attempt's key, written into `compact.done`.
    pub key: AttemptKey,
    /// The DB directory beneath its trusted root.
    pub db: Mapped,
    /// The output directory (created by the supervisor) beneath its root.
    pub output: Mapped,
    /// The OPTIONS file's name in the DB directory.
    pub options_file: String,
    pub cf_name: String,
    /// Stamped into output SSTs as `db_host_id`.
    pub identity: String,
    /// Plugins to load (`dlopen`, after the child's own static
    /// initialisers); an object of the worker's own `LD_PRELOAD` is already
    /// loaded, and loading it again lets it register its classes.
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    /// The zipserver to send output blocks to, when the worker has one.
    #[serde(default)]
    pub zip: Option<ChildZip>,
    /// The HTTP storage mode: the job's files over HTTP (`db` is unused,
    /// `output` is in the attempt directory).
    #[serde(default)]
    pub remote: Option<ChildRemote>,
}

/// What a child of an HTTP storage attempt needs to read the job's files
/// and push its outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildRemote {
    pub storage: RemoteStorage,
    /// The input files' plain names.
    pub inputs: Vec<String>,
    /// The hoster's path of the output directory, named in the result.
    pub hoster_output: String,
}

/// How a child reaches the zipserver (socket, client name, time bound,
/// blocks in flight, transport): the zipserver crate's client settings.
pub use zipserver::client::ClientConfig as ChildZip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_names_the_attempt_and_the_worker() {
        let name = "i/1700000000/db/job-00004-00/att-00";
        let marker = attempt_marker(name);
        assert_eq!(marker, format!("{name}@{}", std::process::id()));
    }
}
