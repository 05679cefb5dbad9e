//! `WORKER_DB_ROOT/<attempt name>/`: the attempt's own directory, kept for
//! post-mortem unless `DEL_WORKER_TEMP_DB` is set.
//!
//! - `job.json`: the job as received (the input stays base64).
//! - `LOG`: the worker's record of the attempt, one timestamped line per event.
//! - `LOG.rocksdb`: RocksDB's own info log of `OpenAndCompact`.

use crate::protocol::attempt::AttemptName;
use crate::protocol::job::Job;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct AttemptDir {
    path: PathBuf,
    log: Mutex<File>,
}

impl AttemptDir {
    /// Creates the directory (fresh: leftovers of an earlier run of the same
    /// attempt name are removed) and writes `job.json`.
    pub fn create(worker_db_root: &Path, name: &AttemptName, job: &Job) -> io::Result<Self> {
        let path = worker_db_root.join(name.as_str());
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path)?;
        let json = serde_json::to_vec_pretty(job).map_err(io::Error::other)?;
        fs::write(path.join("job.json"), json)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.join("LOG"))?;
        Ok(AttemptDir {
            path,
            log: Mutex::new(log),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rocksdb_log(&self) -> PathBuf {
        self.path.join("LOG.rocksdb")
    }

    /// Appends one line to `LOG`. A failed write is reported through tracing
    /// only: the log must never fail the attempt.
    pub fn log(&self, line: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut file = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(
            file,
            "{}.{:03} {}",
            now.as_secs(),
            now.subsec_millis(),
            line
        ) {
            tracing::warn!(dir = %self.path.display(), error = %e, "failed to write attempt LOG");
        }
    }

    /// Removes the directory and the parents that it leaves empty, up to the
    /// worker's root.
    pub fn remove(self, worker_db_root: &Path) -> io::Result<()> {
        fs::remove_dir_all(&self.path)?;
        let mut dir = self.path.parent();
        while let Some(d) = dir {
            if d == worker_db_root || !d.starts_with(worker_db_root) || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}
