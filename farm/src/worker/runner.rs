//! Runs one attempt in-process, on a blocking thread.
//!
//! Steps: open the attempt's directories beneath their trusted roots
//! ([`AttemptDirs`]: the output directory is created then, exclusively,
//! never emptied of anything the worker did not write), send RocksDB's log
//! to the attempt directory, stamp the worker's identity (`db_host_id`)
//! into the override, run `OpenAndCompact` on the directories' handles
//! (again after a secondary open that lost a race with the primary,
//! [`crate::worker::open_retry`]), then write `rpc.results` and
//! `compact.done` beside the outputs so that a hoster can still collect the
//! result should the worker die right after.

use crate::protocol::attempt::AttemptKey;
use crate::protocol::output_dir::{done_marker, COMPACT_DONE, RPC_RESULTS};
use crate::protocol::remote::RemoteStorage;
use crate::rocks::open_and_compact::Override;
use crate::rocks::serialized::{rewrite_output_path, ResultInfo};
use crate::rocks::RocksError;
use crate::worker::attempt::owned::AttemptWork;
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::beneath;
use crate::worker::mounts::mounter::MountError;
use crate::worker::mounts::table::MountLease;
use crate::worker::open_retry::{Compaction, RetryPolicy};
use crate::worker::outcome::Outcome;
use crate::worker::paths::{Mapped, PathError};
use crate::worker::remote::admission::RemotePrepared;
use crate::worker::remote::counts::Counters;
use crate::worker::remote::error::RemoteError;
use crate::worker::remote::push::push_outputs;
use crate::worker::timings::{now_us, AttemptTimings};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Why an attempt's directories or its result files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Dirs(#[from] PathError),
    #[error("failed to empty the output directory: {0}")]
    ClearOutput(#[source] std::io::Error),
    #[error("failed to name the output directory in the result: {0}")]
    NameResult(#[source] RocksError),
    #[error("failed to write {RPC_RESULTS} and {COMPACT_DONE}: {0}")]
    Persist(#[source] std::io::Error),
    #[error("failed to set up the override: {0}")]
    Override(#[source] RocksError),
    #[error("remount after a stale file handle failed: {0}")]
    Remount(#[source] MountError),
    #[error("failed to push the outputs to the hoster: {0}")]
    Push(#[source] RemoteError),
}

/// A job that passed admission: its paths are mapped into the worker's space,
/// its input was read and its override built and checked.
pub struct PreparedJob {
    /// The DB directory, beneath a root the worker trusts.
    pub db: Mapped,
    /// The output directory (not yet created), beneath a trusted root.
    pub output: Mapped,
    pub input: Vec<u8>,
    pub cf_name: String,
    /// The OPTIONS file the input names: its name in the DB directory.
    pub options_file: String,
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
    /// The HTTP storage mode: the job's files over HTTP (`db` then names
    /// the remote DB's path, `output` a directory in the attempt
    /// directory).
    pub remote: Option<RemotePrepared>,
}

/// The DB and output directories of a running attempt, opened beneath
/// their roots: RocksDB reaches them through `/proc/self/fd/<fd>`, so
/// nothing renamed or replaced by a symlink after opening can redirect it.
pub struct AttemptDirs {
    /// The DB directory, or in the HTTP storage mode the remote DB's path
    /// (`crate::rocks::remote_fs`).
    pub db: DbDir,
    pub output: OwnedFd,
}

/// Where RocksDB opens the DB.
pub enum DbDir {
    /// A directory the worker sees, opened beneath its root.
    Local(OwnedFd),
    /// A DB read over HTTP: the path its files are registered at.
    Remote(PathBuf),
}

impl AttemptDirs {
    /// Opens the DB directory and creates the output directory (which must
    /// not exist yet).
    pub fn create(job: &PreparedJob) -> Result<Self, PathError> {
        let db = match &job.remote {
            Some(r) => DbDir::Remote(r.registration.db_path()),
            None => DbDir::Local(job.db.open_dir("dbname")?),
        };
        Ok(AttemptDirs {
            db,
            output: job.output.create_dir("output_dir")?,
        })
    }

    /// Opens both when the output directory exists already (a child
    /// opening what its supervisor created).
    pub fn open(db: &Mapped, output: &Mapped) -> Result<Self, PathError> {
        Ok(AttemptDirs {
            db: DbDir::Local(db.open_dir("dbname")?),
            output: output.open_dir("output_dir")?,
        })
    }

    /// A remote DB at `db` and the output directory its supervisor
    /// created.
    pub fn open_remote(db: PathBuf, output: &Mapped) -> Result<Self, PathError> {
        Ok(AttemptDirs {
            db: DbDir::Remote(db),
            output: output.open_dir("output_dir")?,
        })
    }

    /// Opens both again (after a remount): the output directory is the
    /// attempt's own by then, and is emptied of what an earlier run wrote.
    pub fn reopen(job: &PreparedJob) -> Result<Self, RunError> {
        let dirs = match &job.remote {
            Some(r) => Self::open_remote(r.registration.db_path(), &job.output)?,
            None => Self::open(&job.db, &job.output)?,
        };
        beneath::clear_dir(dirs.output.as_fd()).map_err(RunError::ClearOutput)?;
        Ok(dirs)
    }

    pub fn db_path(&self) -> PathBuf {
        match &self.db {
            DbDir::Local(fd) => beneath::fd_path(fd),
            DbDir::Remote(path) => path.clone(),
        }
    }

    pub fn output_path(&self) -> PathBuf {
        beneath::fd_path(&self.output)
    }
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

/// Runs the attempt `work` in this process, on the directories `dirs`;
/// `dir` is its attempt directory.
pub fn run(
    work: &mut AttemptWork,
    dirs: &AttemptDirs,
    dir: &AttemptDir,
    identity: &str,
) -> RunResult {
    let job = &mut work.prepared;
    if let Err(e) = set_up(&mut job.overrides, dir, identity) {
        return RunResult::failed(Outcome::SetupFailed(e.to_string()));
    }
    job.timings.prepared_us = Some(now_us());
    let cancel = &work.cancel;
    let db = dirs.db_path();
    let compaction = Compaction {
        db: &db,
        output: dirs.output.as_fd(),
        input: &job.input,
        overrides: &job.overrides,
        cancel,
    };
    let retries = &mut job.timings.open_retries;
    let log = |line: &str| dir.log(line);
    let result = match compaction.run(RetryPolicy::for_attempt(), retries, &log) {
        Ok(r) => r,
        // RocksDB reports a set canceled flag as a paused manual compaction.
        Err(_) if cancel.is_set() => return RunResult::failed(Outcome::Cancelled),
        Err(e) => return RunResult::failed(Outcome::CompactionFailed(e.to_string())),
    };
    job.timings.compacted_us = Some(now_us());
    let hoster_output = job.remote.as_ref().map(|_| work.job.output_dir.as_str());
    let result = match named_result(&result, &job.output, hoster_output) {
        Ok(r) => r,
        Err(e) => return RunResult::failed(Outcome::SetupFailed(e.to_string())),
    };
    let r = accept_result(result);
    if let Some(result) = &r.result {
        let remote = job.remote.as_ref();
        let counters = remote.map(|r| r.source.counters());
        let pushing = remote
            .zip(counters.as_deref())
            .map(|(r, c)| (&r.storage, c));
        let delivered = deliver(pushing, dirs, result, &work.key);
        if let Some(remote) = remote {
            dir.log(&remote.source.counts().describe());
        }
        if let Err(e) = delivered {
            return RunResult::failed(Outcome::SetupFailed(e.to_string()));
        }
        job.timings.persisted_us = Some(now_us());
        dir.log(&format!(
            "compacted bytes_read={} bytes_written={}",
            r.bytes_read, r.bytes_written
        ));
    }
    r
}

/// RocksDB's log into the attempt directory, the worker's identity into
/// the SSTs' properties (`db_host_id`).
fn set_up(overrides: &mut Override, dir: &AttemptDir, identity: &str) -> Result<(), RunError> {
    overrides
        .set_info_log(&dir.rocksdb_log())
        .map_err(RunError::Override)?;
    overrides
        .set_option("db_host_id", identity)
        .map_err(RunError::Override)?;
    super::selftest::apply(overrides).map_err(RunError::Override)
}

/// RocksDB's result names the output directory as the worker passed it
/// (`/proc/self/fd/<fd>`): name it by its mapped path instead, or in the
/// HTTP storage mode by the hoster's own path (`hoster_output`), where the
/// outputs are pushed.
pub fn named_result(
    result: &[u8],
    output: &Mapped,
    hoster_output: Option<&str>,
) -> Result<Vec<u8>, RunError> {
    let named = match hoster_output {
        Some(path) => path.to_owned(),
        None => output.path().to_string_lossy().into_owned(),
    };
    rewrite_output_path(result, &named).map_err(RunError::NameResult)
}

/// The result where the hoster collects it: beside the outputs
/// ([`persist_result`]), or in the HTTP storage mode pushed with the
/// outputs to the hoster's endpoint (counted in `counters`).
pub fn deliver(
    remote: Option<(&RemoteStorage, &Counters)>,
    dirs: &AttemptDirs,
    result: &[u8],
    key: &AttemptKey,
) -> Result<(), RunError> {
    match remote {
        Some((storage, counters)) => {
            push_outputs(storage, &dirs.output_path(), result, key, counters)
                .map_err(RunError::Push)
        }
        None => persist_result(&dirs.output, result, key),
    }
}

/// Writes `rpc.results` and then `compact.done` (naming attempt `key`)
/// into the output directory `output`, so the hoster waiting for that
/// attempt can collect the result even if the worker dies right after
/// (see [`crate::protocol::output_dir`]).
///
/// Neither is synced: a worker's death leaves them whole in the page
/// cache (on NFS, closing a file sends it to the server), and a host that
/// crashes before they reach its disk leaves at worst a `compact.done`
/// beside an `rpc.results` that is short or empty, which the hoster
/// refuses (it parses the result and checks every output's checksum
/// against it) before compacting locally. The outputs themselves are
/// synced by RocksDB. Two `fsync`s were a fifth of the fixed cost of a
/// job on an idle worker.
pub fn persist_result(output: &OwnedFd, result: &[u8], key: &AttemptKey) -> Result<(), RunError> {
    beneath::write_new_file(output, RPC_RESULTS, result)
        .and_then(|()| beneath::write_new_file(output, COMPACT_DONE, &done_marker(key)))
        .map_err(RunError::Persist)
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
