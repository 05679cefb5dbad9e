//! Runs one attempt in-process, on a blocking thread.
//!
//! Steps: create the output directory (admission made sure it is new or
//! empty), send RocksDB's log to the attempt directory, stamp the worker's
//! identity (`db_host_id`) into the override, run `OpenAndCompact`, then write
//! `rpc.results` and `compact.done` beside the outputs so that a hoster can
//! still collect the result should the worker die right after.

use crate::rocks::open_and_compact::{open_and_compact, CancelFlag, Override};
use crate::rocks::serialized::ResultInfo;
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::mounts::table::MountLease;
use crate::worker::outcome::Outcome;
use crate::worker::timings::{now_us, AttemptTimings};
use std::fs;
use std::path::{Path, PathBuf};

/// A job that passed admission: its paths are mapped into the worker's space,
/// its input was read and its override built and checked.
pub struct PreparedJob {
    /// The DB directory in the worker's path space.
    pub db_path: PathBuf,
    /// The output directory in the worker's path space.
    pub output_dir: PathBuf,
    pub input: Vec<u8>,
    pub cf_name: String,
    /// The OPTIONS file the input names, in the worker's path space.
    pub options_file: PathBuf,
    /// Built from the column family's options in `options_file`.
    pub overrides: Override,
    /// The input's SST files (relative to the DB) and their sizes at
    /// admission, for the web view and `summary.html`.
    pub input_files: Vec<(String, u64)>,
    /// Their total.
    pub input_bytes: u64,
    /// With `NFS_DYNAMIC_MOUNT`: the instance's mount, held until the
    /// attempt ends.
    pub mount: Option<MountLease>,
    /// When each step of the attempt happened, from its submission on.
    pub timings: AttemptTimings,
}

/// What a finished attempt hands back.
pub struct RunResult {
    pub outcome: Outcome,
    /// RocksDB's serialized result, when succeeded.
    pub result: Option<Vec<u8>>,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl RunResult {
    pub fn failed(outcome: Outcome) -> Self {
        RunResult {
            outcome,
            result: None,
            bytes_read: 0,
            bytes_written: 0,
        }
    }
}

pub fn run(
    job: &mut PreparedJob,
    dir: &AttemptDir,
    identity: &str,
    cancel: &CancelFlag,
) -> RunResult {
    let mut setup = || -> Result<(), String> {
        if job.output_dir.exists() {
            fs::remove_dir_all(&job.output_dir).map_err(|e| {
                format!(
                    "failed to clear output dir {}: {e}",
                    job.output_dir.display()
                )
            })?;
        }
        fs::create_dir_all(&job.output_dir).map_err(|e| {
            format!(
                "failed to create output dir {}: {e}",
                job.output_dir.display()
            )
        })?;
        job.overrides
            .set_info_log(&dir.rocksdb_log())
            .map_err(|e| e.to_string())?;
        job.overrides
            .set_option("db_host_id", identity)
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    if let Err(e) = setup() {
        return RunResult::failed(Outcome::SetupFailed(e));
    }
    job.timings.prepared_us = Some(now_us());

    let result = match open_and_compact(
        &job.db_path,
        &job.output_dir,
        &job.input,
        &job.overrides,
        cancel,
        false,
    ) {
        Ok(r) => r,
        Err(e) => {
            let message = e.to_string();
            // RocksDB reports a set canceled flag as a paused manual compaction.
            let outcome = if cancel.is_set() {
                Outcome::Cancelled
            } else {
                Outcome::CompactionFailed(message)
            };
            return RunResult::failed(outcome);
        }
    };
    job.timings.compacted_us = Some(now_us());
    let r = accept_result(result);
    if let Some(result) = &r.result {
        if let Err(e) = persist_result(&job.output_dir, result) {
            return RunResult::failed(Outcome::SetupFailed(e));
        }
        job.timings.persisted_us = Some(now_us());
        dir.log(&format!(
            "compacted bytes_read={} bytes_written={}",
            r.bytes_read, r.bytes_written
        ));
    }
    r
}

/// Writes `rpc.results` and then `compact.done` beside the outputs, so a
/// hoster can collect the result even if the worker dies right after.
pub fn persist_result(output_dir: &Path, result: &[u8]) -> Result<(), String> {
    fs::write(output_dir.join("rpc.results"), result)
        .and_then(|()| fs::write(output_dir.join("compact.done"), b"done\n"))
        .map_err(|e| format!("failed to write rpc.results: {e}"))
}

/// Describes a successful result for the counters, or says why it is not.
pub fn accept_result(result: Vec<u8>) -> RunResult {
    match ResultInfo::parse(&result) {
        Ok(ResultInfo { error: Some(e), .. }) => RunResult::failed(Outcome::CompactionFailed(e)),
        Ok(info) => RunResult {
            outcome: Outcome::Succeeded,
            bytes_read: info.bytes_read,
            bytes_written: info.bytes_written,
            result: Some(result),
        },
        Err(e) => RunResult::failed(Outcome::CompactionFailed(format!("unreadable result: {e}"))),
    }
}
