//! `schedule`: a job offered to the workers in turn until one accepts it,
//! or the reason it compacts locally.

use super::*;
use crate::hoster::config::WorkerEndpoint;
use crate::hoster::remote::capability::GrantHold;
use crate::hoster::remote::snapshot::JobSnapshot;
use crate::protocol::remote::RemoteStorage;

/// What every attempt of one job is submitted with.
struct Plan<'a> {
    info: &'a JobInfo,
    input: &'a [u8],
    cf_name: String,
    input_bytes: u64,
    /// The input files as the compaction input names them.
    input_files: Vec<String>,
    estimate: Option<Duration>,
    wait_limit: Duration,
    /// The OPTIONS file the compaction was planned with.
    options_file_number: u64,
}

/// Why one submission did not make an attempt.
enum Tried {
    /// The worker did not take it: try another.
    Failed(RequestError),
    /// No attempt of this job can be submitted: compact locally.
    Local(ScheduleAnswer),
}

impl FarmService {
    pub(super) fn schedule_job(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        let plan = match self.plan(info, input) {
            Ok(p) => p,
            Err(local) => return local,
        };
        let mut last: Option<RequestError> = None;
        let mut refused_by = Vec::new();
        for try_no in 0..self.config.http_max_retry {
            let Some(worker) = self.workers.pick() else {
                break;
            };
            if refused_by.contains(&worker.base_url) {
                // Every worker still in rotation refused this job already.
                break;
            }
            match self.try_submit(&plan, &worker) {
                Ok(attempt) => return self.scheduled(attempt),
                Err(Tried::Local(local)) => return local,
                Err(Tried::Failed(e)) => {
                    tracing::info!(worker = worker.base_url, try_no, error = %e, "submission failed");
                    self.after_failure(&e, &worker.base_url, &mut refused_by);
                    last = Some(e);
                }
            }
        }
        self.book.forget_job(info.job_id);
        match last {
            Some(e) => self.local(e.reason, &e),
            None => self.local(FallbackReason::NoWorker, &"no worker available"),
        }
    }

    /// The job's level, input, estimate and wait limit; or compact locally.
    fn plan<'a>(&self, info: &'a JobInfo, input: &'a [u8]) -> Result<Plan<'a>, ScheduleAnswer> {
        let c = &self.config;
        if info.output_level < c.dcompact_min_level || info.output_level > c.dcompact_max_level {
            let why = format!("output level {}", info.output_level);
            return Err(self.local(FallbackReason::Level, &why));
        }
        let input_info =
            InputInfo::parse(input).map_err(|e| self.local(FallbackReason::Internal, &e))?;
        let input_bytes = self.input_bytes(&input_info.input_files);
        let estimate = self.speed.estimate(&input_info.cf_name, input_bytes);
        Ok(Plan {
            info,
            input,
            cf_name: input_info.cf_name,
            input_bytes,
            input_files: input_info.input_files,
            estimate,
            wait_limit: wait_limit(estimate, c.timeout_multiplier, c.overall_timeout),
            options_file_number: input_info.options_file_number,
        })
    }

    /// Submits the job's next attempt to `worker`.
    fn try_submit(&self, plan: &Plan<'_>, worker: &WorkerEndpoint) -> Result<RemoteAttempt, Tried> {
        let base = worker.base_url.as_str();
        let key = AttemptKey {
            instance_name: self.config.instance_name.clone(),
            start_time: self.start_time,
            dbname: self.dbname.clone(),
            job_id: plan.info.job_id,
            attempt: self.book.next_attempt(plan.info.job_id),
        };
        let output_dir = output_dir::path(&self.run_dir, &key);
        let name = AttemptName::new(&key, &self.config.hoster_root)
            .map_err(|e| Tried::Local(self.local(FallbackReason::Internal, &e)))?;
        let mut job = self.job(plan, &key, &output_dir);
        let remote = match self.grant(plan, &output_dir) {
            Ok(Some((storage, hold))) => {
                job.remote = Some(storage);
                Some(hold)
            }
            Ok(None) => None,
            Err(local) => return Err(Tried::Local(local)),
        };
        if let Err(e) = self.client.submit(worker, &job) {
            self.stats.submit_failed();
            if e.reason == FallbackReason::Timeout {
                cancel_in_background(&self.client, base, &key);
            }
            return Err(Tried::Failed(e));
        }
        let submitted = Submitted {
            worker: base.to_owned(),
            key,
            name: name.as_str().to_owned(),
            output_dir,
            generation: self.generation.load(Ordering::Acquire),
            verified: None,
            cf_name: plan.cf_name.clone(),
            input_bytes: plan.input_bytes,
            input_files: plan.input_files.clone(),
            submitted: Instant::now(),
            wait_limit: plan.wait_limit,
            remote,
        };
        Ok(RemoteAttempt::new(&self.book, submitted))
    }

    /// With `storage: "http"`: the attempt's snapshot (beside its output
    /// directory, which is created here: no worker sees it) and its
    /// capability, valid a minute past the attempt's wait limit.
    fn grant(
        &self,
        plan: &Plan<'_>,
        output_dir: &Path,
    ) -> Result<Option<(RemoteStorage, GrantHold)>, ScheduleAnswer> {
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let mut snapshot_dir = output_dir.as_os_str().to_owned();
        snapshot_dir.push(".in");
        let snapshot = JobSnapshot::take(
            Path::new(&self.dbname),
            Path::new(&snapshot_dir),
            plan.options_file_number,
            &plan.input_files,
        )
        .map_err(|e| self.local(FallbackReason::Snapshot, &e))?;
        if let Err(e) = std::fs::create_dir_all(output_dir) {
            snapshot.remove();
            return Err(self.local(FallbackReason::Snapshot, &e));
        }
        let valid = plan.wait_limit + Duration::from_secs(60);
        remote
            .grants
            .issue(
                remote.endpoint.url(),
                snapshot,
                output_dir.to_owned(),
                valid,
            )
            .map(Some)
            .map_err(|e| self.local(FallbackReason::Internal, &e))
    }

    /// The job of attempt `key`, as the worker gets it.
    fn job(&self, plan: &Plan<'_>, key: &AttemptKey, output_dir: &Path) -> Job {
        let c = &self.config;
        Job {
            instance_name: key.instance_name.clone(),
            dbname: key.dbname.clone(),
            hoster_root: c.hoster_root.clone(),
            start_time: key.start_time,
            job_id: key.job_id,
            attempt: key.attempt,
            code_version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL_VERSION,
            cf_name: plan.cf_name.clone(),
            output_level: plan.info.output_level,
            estimate_time_us: plan.estimate.map_or(0, |e| e.as_micros() as u64),
            nfs_type: c.nfs_type.clone(),
            nfs_mnt_src: c.nfs_mnt_src.clone(),
            nfs_mnt_opt: c.nfs_mnt_opt.clone(),
            output_dir: output_dir.to_string_lossy().into_owned(),
            compaction_service_input: Job::encode_input(plan.input),
            plugins: plugin_versions(&c.plugin_versions),
            job_info: Some(plan.info.clone()),
            remote: None,
        }
    }

    /// The attempt is pending until RocksDB waits for it.
    fn scheduled(&self, attempt: RemoteAttempt) -> ScheduleAnswer {
        self.stats.scheduled();
        let id = attempt.id();
        tracing::debug!(job = id, worker = attempt.worker, "scheduled remotely");
        lock(&self.pending).insert(id.clone(), attempt);
        ScheduleAnswer::Scheduled(id)
    }

    /// After a failed submission: a pause when busy, no second try on a
    /// worker that refused the job, a backoff for any other failure.
    fn after_failure(&self, e: &RequestError, base: &str, refused_by: &mut Vec<String>) {
        match e.reason {
            // A draining worker takes no job for a while: skip it for
            // `worker_backoff`, at once.
            FallbackReason::Busy if e.worker_stopping() => self.workers.failed(base),
            FallbackReason::Busy => std::thread::sleep(self.config.retry_sleep_time),
            // A refusal is about the job, not the worker: no backoff, and
            // no second try on the same worker.
            FallbackReason::Refused => refused_by.push(base.to_owned()),
            _ => self.workers.failed(base),
        }
    }
}
