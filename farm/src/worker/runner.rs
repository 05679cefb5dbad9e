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
use crate::worker::outcome::Outcome;
use std::fs;
use std::path::PathBuf;

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
    fn failed(outcome: Outcome) -> Self {
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
    dir.log(&format!(
        "start db={} output_dir={} cf={} options={}",
        job.db_path.display(),
        job.output_dir.display(),
        job.cf_name,
        job.options_file.display()
    ));

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
    let info = match ResultInfo::parse(&result) {
        Ok(info) => info,
        Err(e) => {
            return RunResult::failed(Outcome::CompactionFailed(format!("unreadable result: {e}")))
        }
    };
    if let Some(e) = info.error {
        return RunResult::failed(Outcome::CompactionFailed(e));
    }
    let persist = fs::write(job.output_dir.join("rpc.results"), &result)
        .and_then(|()| fs::write(job.output_dir.join("compact.done"), b"done\n"));
    if let Err(e) = persist {
        return RunResult::failed(Outcome::SetupFailed(format!(
            "failed to write rpc.results: {e}"
        )));
    }
    dir.log(&format!(
        "compacted files={} bytes_read={} bytes_written={}",
        info.output_files.len(),
        info.bytes_read,
        info.bytes_written
    ));
    RunResult {
        outcome: Outcome::Succeeded,
        result: Some(result),
        bytes_read: info.bytes_read,
        bytes_written: info.bytes_written,
    }
}
