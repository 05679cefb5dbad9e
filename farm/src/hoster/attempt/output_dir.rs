//! An attempt's output directory on the hoster:
//! `<db>/farm-output/<start_time>.<nonce>/job-NNNNN-NN-att-NN` (see
//! [`crate::hoster::service::OUTPUT_SUBDIR`]), the result a worker left in
//! it, and its removal.

use crate::protocol::attempt::AttemptKey;
use crate::protocol::output_dir::{done_by, COMPACT_DONE, RPC_RESULTS};
use std::path::{Path, PathBuf};

/// The output directory of attempt `key` below this run's `run_dir`.
pub fn path(run_dir: &Path, key: &AttemptKey) -> PathBuf {
    run_dir.join(format!(
        "job-{:05}-{:02}-att-{:02}",
        key.db_job(),
        key.sub_job(),
        key.attempt
    ))
}

/// The result a worker left in `output_dir`, when its `compact.done`
/// names the attempt `key` (see [`crate::protocol::output_dir`]).
pub fn finished_on_disk(output_dir: &Path, key: &AttemptKey) -> Option<Vec<u8>> {
    let marker = std::fs::read(output_dir.join(COMPACT_DONE)).ok()?;
    if done_by(&marker).as_ref() != Some(key) {
        tracing::warn!(dir = %output_dir.display(), "compact.done names another attempt: not collected");
        return None;
    }
    std::fs::read(output_dir.join(RPC_RESULTS)).ok()
}

/// Removes `dir` and what is in it; one already gone is no error.
pub fn remove(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "failed to remove output directory")
        }
    }
}
