//! Capturing a real compaction input.
//!
//! A hoster DB is filled and compacted with a service that, at the first
//! `schedule`, copies the DB directory (so the input's files outlive the
//! local compaction that follows) and keeps the input. The copy and the
//! input can then be submitted to workers any number of times, as attempts
//! of one job.

use super::model::{Model, WorkloadSpec};
use crate::protocol::job::Job;
use crate::rocks::service::{
    self, CompactionService, InstallStatus, JobInfo, ScheduleAnswer, WaitAnswer,
};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A captured input and the copy of the DB it reads.
pub struct Captured {
    /// The hoster root of the copy; the DB is `<root>/db`.
    pub root: PathBuf,
    pub info: JobInfo,
    pub input: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("no compaction was scheduled")]
    NothingScheduled,
}

/// The first scheduled job's info and input, or why the copy failed.
type FirstJob = Result<(JobInfo, Vec<u8>), String>;

struct Capture {
    db: PathBuf,
    copy: PathBuf,
    captured: Mutex<Option<FirstJob>>,
}

impl CompactionService for Capture {
    fn schedule(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        let mut c = self.captured.lock().unwrap_or_else(|p| p.into_inner());
        if c.is_none() {
            let copied = std::process::Command::new("cp")
                .arg("-a")
                .arg(&self.db)
                .arg(&self.copy)
                .status();
            *c = Some(match copied {
                Ok(s) if s.success() => Ok((info.clone(), input.to_vec())),
                Ok(s) => Err(format!("cp -a exited {s}")),
                Err(e) => Err(e.to_string()),
            });
        }
        ScheduleAnswer::UseLocal
    }
    fn wait(&self, _: &str) -> WaitAnswer {
        WaitAnswer::UseLocal
    }
    fn cancel_awaiting(&self) {}
    fn on_installation(&self, _: &str, _: InstallStatus) {}
    /// Never called: this service schedules nothing.
    fn release(&self, _: &str) {}
}

/// Fills a DB below `dir` with `spec` twice (auto compactions off, a flush
/// after each) and
/// captures the input of its full compaction.
pub fn capture_input(
    dir: &Path,
    mut opts: Options,
    spec: &WorkloadSpec,
) -> Result<Captured, CaptureError> {
    let db_path = dir.join("hoster/db");
    let root = dir.join("copy");
    std::fs::create_dir_all(dir.join("hoster"))?;
    std::fs::create_dir_all(&root)?;
    let capture = Arc::new(Capture {
        db: db_path.clone(),
        copy: root.join("db"),
        captured: Mutex::new(None),
    });
    opts.create_if_missing(true);
    opts.set_disable_auto_compactions(true);
    service::install(&mut opts, capture.clone());
    {
        let families = vec![ColumnFamilyDescriptor::new("default", opts.clone())];
        let db = DB::open_cf_descriptors(&opts, &db_path, families)?;
        let cf = db
            .cf_handle("default")
            .ok_or(CaptureError::NothingScheduled)?;
        // Two overlapping flushes, so the full compaction has work to do
        // rather than a trivial move.
        let mut model = Model::default();
        for seed in [spec.seed, spec.seed + 1] {
            model.write(
                &db,
                cf,
                &WorkloadSpec {
                    seed,
                    ..spec.clone()
                },
            )?;
            db.flush_cf(cf)?;
        }
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }
    let taken = capture
        .captured
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or(CaptureError::NothingScheduled)?;
    let (info, input) = taken.map_err(|e| CaptureError::Io(std::io::Error::other(e)))?;
    Ok(Captured { root, info, input })
}

impl Captured {
    /// The job for attempt `attempt` of the captured input, with an output
    /// directory of its own in the copy.
    pub fn job(&self, instance: &str, attempt: u32) -> Job {
        let db = self.root.join("db");
        Job {
            instance_name: instance.into(),
            dbname: db.display().to_string(),
            hoster_root: self.root.display().to_string(),
            start_time: 7,
            job_id: self.info.job_id,
            attempt,
            code_version: String::new(),
            protocol: crate::protocol::version::PROTOCOL_VERSION,
            cf_name: self.info.cf_name.clone(),
            output_level: self.info.output_level,
            estimate_time_us: 0,
            nfs_type: String::new(),
            nfs_mnt_src: String::new(),
            nfs_mnt_opt: String::new(),
            output_dir: db
                .join(format!("out/{instance}-{attempt}"))
                .display()
                .to_string(),
            compaction_service_input: Job::encode_input(&self.input),
            plugins: Vec::new(),
            job_info: Some(self.info.clone()),
            remote: None,
        }
    }
}
