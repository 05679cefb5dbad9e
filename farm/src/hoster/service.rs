//! The farm's `CompactionService`: schedule on a worker, wait by probing,
//! verify, install or fall back.

use super::completions::{Completions, DoneEvents};
use super::config::{ConfigError, HosterConfig, WorkerEndpoint};
use super::discovery::Discovery;
use super::http::{Client, RequestError};
use super::metrics::HosterMetrics;
use super::speed::{wait_limit, SpeedModel};
use super::stats::{FallbackReason, HosterStats, StatsSnapshot};
use super::verify::{verify_result, InputFiles};
use super::workers::Workers;
use crate::etcd::client::{EtcdClient, EtcdError};
use crate::etcd::config::EtcdConfig;
use crate::etcd::follow::Follower;
use crate::etcd::keys;
use crate::protocol::answers;
use crate::protocol::attempt::{relative_below, AttemptKey, AttemptName};
use crate::protocol::job::{Job, PluginVersion};
use crate::protocol::output_dir::{done_by, COMPACT_DONE, RPC_RESULTS};
use crate::protocol::version::PROTOCOL_VERSION;
use crate::rocks::serialized::InputInfo;
use crate::rocks::service::{
    self, CompactionService, InstallStatus, JobInfo, ScheduleAnswer, WaitAnswer,
};
use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The directory below the DB that holds attempts' output directories:
/// `farm-output/<start_time>.<nonce>/job-NNNNN-NN-att-NN`, one directory
/// per run of the hoster process, so an attempt of an earlier run (a
/// worker may still be writing it) never shares a directory with one of
/// this run, although RocksDB numbers jobs from 1 again after every open.
pub const OUTPUT_SUBDIR: &str = "farm-output";

/// The longest pause between two probes of an attempt without etcd (the
/// pause doubles from 5 ms up to it) when the worker does not hold probes
/// (`probe_wait` 0, or a worker that predates it), and the pause while
/// etcd's "done" events arrive: then an event ends the pause and probing is
/// the fallback.
const PROBE_PAUSE_MAX: Duration = Duration::from_millis(100);
const PROBE_PAUSE_MAX_WATCHED: Duration = Duration::from_secs(1);
/// How long a watch read waits before its thread checks whether to stop.
const WATCH_IDLE: Duration = Duration::from_secs(1);

/// Why the farm could not be enabled. Nothing was installed on the
/// `Options` then: the DB compacts locally as it would without the farm.
#[derive(Debug, thiserror::Error)]
pub enum HosterError {
    /// The params were not accepted.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The DB path is not an absolute path below `hoster_root`.
    #[error("dbname {dbname:?}: {why}")]
    DbName { dbname: String, why: String },
    /// The `etcd` settings could not be turned into a client.
    #[error("failed to set up etcd: {0}")]
    Etcd(#[from] EtcdError),
    /// A thread following etcd could not be started.
    #[error("failed to start an etcd thread: {0}")]
    Thread(#[source] std::io::Error),
    /// `<dbname>/farm-output`, left by an earlier run, could not be removed.
    #[error("failed to sweep orphaned output directories in {path}: {source}")]
    Sweep {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Turns the farm on for `options` of the DB at `dbname`, with ToplingDB's
/// `DcompactEtcd` JSON params ([`HosterConfig`] lists every key), and
/// raises the compactions RocksDB may run at once ([`super::tuning`]). Returns
/// the service, whose [`FarmService::stats`] the application may read.
///
/// Call it before opening the DB with `options` (and with every `Options`
/// the DB is opened with: each call installs a service object of its own).
/// `dbname` is the path the DB is opened at; it must lie below
/// `hoster_root`. Output directories an earlier run left in
/// `<dbname>/farm-output` are removed here.
///
/// From then on every compaction whose output level lies within
/// `dcompact_min_level..=dcompact_max_level` is offered to a worker, and
/// runs locally whenever the farm cannot deliver a verified result: a
/// failing farm costs the hoster CPU, never data or writes. The crate's
/// documentation has a complete example.
pub fn enable(
    options: &mut rocksdb::Options,
    dbname: &str,
    params_json: &str,
) -> Result<Arc<FarmService>, HosterError> {
    let config = HosterConfig::from_json(params_json)?;
    super::tuning::apply(options, &config);
    let service = Arc::new(FarmService::new(config, dbname)?);
    service::install(options, service.clone());
    Ok(service)
}

struct Pending {
    /// The worker's `base_url`.
    worker: String,
    key: AttemptKey,
    /// The attempt's name, as in etcd's "done" key.
    name: String,
    output_dir: PathBuf,
    generation: u64,
    /// Bytes read and written, once the result was verified.
    verified: Option<(u64, u64)>,
    cf_name: String,
    input_bytes: u64,
    /// The input files as the compaction input names them: the result is
    /// judged against them.
    input_files: Vec<String>,
    submitted: Instant,
    /// How long the hoster waits for this attempt.
    wait_limit: Duration,
}

/// The farm's `CompactionService` for one DB: what [`enable`] installs and
/// returns. Shared by RocksDB's background threads and the application;
/// its readers ([`FarmService::stats`], [`FarmService::workers`], ...) take
/// `&self`.
pub struct FarmService {
    config: HosterConfig,
    dbname: String,
    start_time: u64,
    /// `<db>/farm-output/<start_time>.<nonce>`: this run's output
    /// directories live below it.
    run_dir: PathBuf,
    client: Client,
    workers: Arc<Workers>,
    completions: Arc<Completions>,
    /// Following `<root>/dcompact-res/<this db's attempts>/`, with etcd.
    done_follower: Option<Follower>,
    /// Following `<root>/workers/`, with etcd.
    discovery: Option<Follower>,
    attempts: Mutex<HashMap<u64, u32>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Bumped by `cancel_awaiting`: waits that began before give up.
    generation: AtomicU64,
    /// Attempts between a successful submission and their end.
    in_flight: AtomicUsize,
    stats: HosterStats,
    speed: SpeedModel,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FarmService {
    /// A service for the DB at `dbname`, not yet installed on any
    /// `Options` ([`enable`] builds and installs one). Starts the etcd
    /// threads when `config.etcd` is set.
    pub fn new(config: HosterConfig, dbname: &str) -> Result<Self, HosterError> {
        let dbname = dbname.trim_end_matches('/').to_owned();
        relative_below(&dbname, &config.hoster_root, "dbname").map_err(|e| {
            HosterError::DbName {
                dbname: dbname.clone(),
                why: e.to_string(),
            }
        })?;
        // Output directories orphaned by an earlier crash of this process.
        let outputs = Path::new(&dbname).join(OUTPUT_SUBDIR);
        match std::fs::remove_dir_all(&outputs) {
            Ok(()) => {
                tracing::info!(path = %outputs.display(), "removed orphaned farm output directories")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(HosterError::Sweep {
                    path: outputs,
                    source,
                })
            }
        }
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let run_dir = outputs.join(format!("{start_time}.{:08x}", fastrand::u32(..)));
        let workers = Arc::new(Workers::new(
            config.http_workers.clone(),
            config.load_balance,
            config.worker_backoff,
        ));
        let completions = Arc::new(Completions::default());
        let (discovery, done_follower) = match &config.etcd {
            None => (None, None),
            Some(etcd) => {
                let (d, f) =
                    follow_etcd(etcd, &config, &dbname, start_time, &workers, &completions)?;
                (Some(d), Some(f))
            }
        };
        Ok(FarmService {
            client: Client::new(&config),
            speed: SpeedModel::new(config.estimate_speed),
            workers,
            completions,
            done_follower,
            discovery,
            config,
            dbname,
            start_time,
            run_dir,
            attempts: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            stats: HosterStats::default(),
        })
    }

    /// The counters so far: compactions installed from workers, and local
    /// fallbacks by reason.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Reports this service's counters on `registry` from now on (see
    /// [`super::metrics`]).
    pub fn register_metrics(
        &self,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        let metrics = HosterMetrics::new(registry)?;
        if self.stats.set_metrics(metrics) {
            Ok(())
        } else {
            Err(prometheus::Error::Msg(
                "metrics are already registered for this service".into(),
            ))
        }
    }

    /// The workers in rotation now: `http_workers` and those found in etcd.
    pub fn workers(&self) -> Vec<WorkerEndpoint> {
        self.workers.list()
    }

    /// Whether etcd's "done" events are being received now.
    pub fn watching_completions(&self) -> bool {
        self.done_follower.as_ref().is_some_and(Follower::is_live)
    }

    /// Attempts scheduled on a worker and not yet installed or abandoned.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn local(&self, reason: FallbackReason, why: &dyn std::fmt::Display) -> ScheduleAnswer {
        tracing::info!(reason = reason.name(), error = %why, "compacting locally");
        self.stats.fallback_because(reason, why.to_string());
        ScheduleAnswer::UseLocal
    }

    fn next_attempt(&self, job_id: u64) -> u32 {
        let mut a = lock(&self.attempts);
        let n = a.entry(job_id).or_insert(0);
        let this = *n;
        *n += 1;
        this
    }

    /// The size of a job's input files in the hoster's DB directory.
    fn input_bytes(&self, files: &[String]) -> u64 {
        files
            .iter()
            .map(|f| {
                let path = Path::new(&self.dbname).join(f.trim_start_matches('/'));
                std::fs::metadata(path).map_or(0, |m| m.len())
            })
            .sum()
    }

    /// A job's attempts are numbered while it lives; RocksDB never reuses a
    /// job id within one open DB.
    fn forget_job(&self, job_id: u64) {
        lock(&self.attempts).remove(&job_id);
    }

    fn output_dir(&self, key: &AttemptKey) -> PathBuf {
        self.run_dir.join(format!(
            "job-{:05}-{:02}-att-{:02}",
            key.db_job(),
            key.sub_job(),
            key.attempt
        ))
    }

    fn schedule_job(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        let c = &self.config;
        if info.output_level < c.dcompact_min_level || info.output_level > c.dcompact_max_level {
            return self.local(
                FallbackReason::Level,
                &format!("output level {}", info.output_level),
            );
        }
        let input_info = match InputInfo::parse(input) {
            Ok(i) => i,
            Err(e) => return self.local(FallbackReason::Internal, &e),
        };
        let input_bytes = self.input_bytes(&input_info.input_files);
        let estimate = self.speed.estimate(&input_info.cf_name, input_bytes);
        let wait_limit = wait_limit(estimate, c.timeout_multiplier, c.overall_timeout);
        let mut last: Option<RequestError> = None;
        let mut refused_by = Vec::new();
        for try_no in 0..c.http_max_retry {
            let Some(worker) = self.workers.pick() else {
                break;
            };
            if refused_by.contains(&worker.base_url) {
                // Every worker still in rotation refused this job already.
                break;
            }
            let key = AttemptKey {
                instance_name: c.instance_name.clone(),
                start_time: self.start_time,
                dbname: self.dbname.clone(),
                job_id: info.job_id,
                attempt: self.next_attempt(info.job_id),
            };
            let output_dir = self.output_dir(&key);
            let job = Job {
                instance_name: key.instance_name.clone(),
                dbname: key.dbname.clone(),
                hoster_root: c.hoster_root.clone(),
                start_time: key.start_time,
                job_id: key.job_id,
                attempt: key.attempt,
                code_version: env!("CARGO_PKG_VERSION").into(),
                protocol: PROTOCOL_VERSION,
                cf_name: input_info.cf_name.clone(),
                output_level: info.output_level,
                estimate_time_us: estimate.map_or(0, |e| e.as_micros() as u64),
                nfs_type: c.nfs_type.clone(),
                nfs_mnt_src: c.nfs_mnt_src.clone(),
                nfs_mnt_opt: c.nfs_mnt_opt.clone(),
                output_dir: output_dir.to_string_lossy().into_owned(),
                compaction_service_input: Job::encode_input(input),
                plugins: plugin_versions(&c.plugin_versions),
                job_info: Some(info.clone()),
            };
            let base = &worker.base_url;
            let name = match AttemptName::new(&key, &c.hoster_root) {
                Ok(n) => n.as_str().to_owned(),
                Err(e) => return self.local(FallbackReason::Internal, &e),
            };
            match self.client.submit(base, &job) {
                Ok(()) => {
                    self.stats.scheduled();
                    self.in_flight.fetch_add(1, Ordering::AcqRel);
                    let id = format!("{}-{}-{}", key.db_job(), key.sub_job(), key.attempt);
                    tracing::debug!(job = id, worker = base, "scheduled remotely");
                    lock(&self.pending).insert(
                        id.clone(),
                        Pending {
                            worker: worker.base_url.clone(),
                            key,
                            name,
                            output_dir,
                            generation: self.generation.load(Ordering::Acquire),
                            verified: None,
                            cf_name: input_info.cf_name.clone(),
                            input_bytes,
                            input_files: input_info.input_files.clone(),
                            submitted: Instant::now(),
                            wait_limit,
                        },
                    );
                    return ScheduleAnswer::Scheduled(id);
                }
                Err(e) => {
                    tracing::info!(worker = base, try_no, error = %e, "submission failed");
                    self.stats.submit_failed();
                    if e.reason == FallbackReason::Timeout {
                        self.cancel_in_background(base, &key);
                    }
                    match e.reason {
                        FallbackReason::Busy => std::thread::sleep(c.retry_sleep_time),
                        // A refusal is about the job, not the worker: no
                        // backoff, and no second try on the same worker.
                        FallbackReason::Refused => refused_by.push(worker.base_url.clone()),
                        _ => self.workers.failed(&worker.base_url),
                    }
                    last = Some(e);
                }
            }
        }
        self.forget_job(info.job_id);
        match last {
            Some(e) => self.local(e.reason, &e),
            None => self.local(FallbackReason::NoWorker, &"no worker available"),
        }
    }

    /// A submission that timed out may still be admitted by the worker
    /// (admission can take as long as a mount): ask it to cancel the
    /// attempt, without holding RocksDB's thread. A worker that has not
    /// got the job yet remembers the cancel and refuses the job when it
    /// arrives; this hoster has already moved on to another attempt.
    fn cancel_in_background(&self, base: &str, key: &AttemptKey) {
        let client = self.client.clone();
        let (base, key) = (base.to_owned(), key.clone());
        let sent = std::thread::Builder::new()
            .name("farm-cancel".into())
            .spawn(move || client.cancel(&base, &key));
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not send the cancel of a timed-out submission");
        }
    }

    /// Ends a pending attempt without installing it: cancel it on the worker
    /// (when it may still run) and remove its output directory.
    fn abandon(
        &self,
        p: &Pending,
        reason: FallbackReason,
        why: &dyn std::fmt::Display,
        cancel_remote: bool,
    ) -> WaitAnswer {
        self.forget_job(p.key.job_id);
        self.completions.forget(&p.name);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if cancel_remote {
            self.client.cancel(&p.worker, &p.key);
        }
        remove_output_dir(&p.output_dir);
        self.local(reason, why);
        WaitAnswer::UseLocal
    }

    fn wait_job(&self, id: &str) -> WaitAnswer {
        let Some(p) = lock(&self.pending).remove(id) else {
            return self.abandon_unknown(id);
        };
        let base = p.worker.clone();
        let deadline = p.submitted + p.wait_limit;
        let mut pause = Duration::from_millis(5);
        let mut transient = 0u32;
        // The last pause ended with etcd's "done" event. While the events
        // arrive, the first probe waits for one: probing is the fallback.
        let mut woken = self.watching_completions()
            && self
                .completions
                .wait(&p.name, PROBE_PAUSE_MAX_WATCHED.min(p.wait_limit));
        loop {
            if self.generation.load(Ordering::Acquire) != p.generation {
                return self.abandon(
                    &p,
                    FallbackReason::Cancelled,
                    &"RocksDB cancelled awaiting jobs",
                    true,
                );
            }
            if Instant::now() >= deadline {
                let why = format!(
                    "no result after {:?} (timeout_multiplier x estimate, or overall_timeout)",
                    p.wait_limit
                );
                return self.abandon(&p, FallbackReason::Timeout, &why, true);
            }
            self.stats.probed();
            // Without etcd's events, the worker holds the probe until the
            // attempt ends (or `probe_wait` passes).
            let held = if self.watching_completions() {
                Duration::ZERO
            } else {
                self.config
                    .probe_wait
                    .min(deadline.saturating_duration_since(Instant::now()))
            };
            let probe_started = Instant::now();
            match self.client.probe(&base, &p.key, held) {
                Ok(a) if a.status == answers::QUEUED || a.status == answers::RUNNING => {
                    transient = 0;
                }
                Ok(a) if a.status == answers::DONE => {
                    let Some(result) = a
                        .result
                        .as_deref()
                        .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
                    else {
                        return self.abandon(
                            &p,
                            FallbackReason::Protocol,
                            &"done without a base64 result",
                            false,
                        );
                    };
                    self.stats.done_seen(woken);
                    return self.install(p, &result);
                }
                Ok(a) if a.status == answers::FAILED => {
                    let why = a.error.unwrap_or_default();
                    return self.abandon(&p, FallbackReason::RemoteFailed, &why, false);
                }
                Ok(a) => {
                    return self.abandon(
                        &p,
                        FallbackReason::Protocol,
                        &format!("unknown probe status {:?}", a.status),
                        true,
                    )
                }
                Err(e)
                    if e.reason == FallbackReason::Timeout
                        && transient + 1 < self.config.http_max_retry =>
                {
                    transient += 1;
                }
                Err(e) => {
                    // The worker writes its result beside the outputs, so one
                    // that died right after finishing still delivers.
                    if let Some(result) = finished_on_disk(&p.output_dir, &p.key) {
                        tracing::info!(job = id, error = %e, "worker unreachable; collecting its result from the output directory");
                        return self.install(p, &result);
                    }
                    self.workers.failed(&p.worker);
                    return self.abandon(&p, e.reason, &e, e.reason != FallbackReason::NotFound);
                }
            }
            let until_deadline = deadline.saturating_duration_since(Instant::now());
            if self.watching_completions() {
                woken = self
                    .completions
                    .wait(&p.name, PROBE_PAUSE_MAX_WATCHED.min(until_deadline));
            } else if !held.is_zero() && probe_started.elapsed() >= held / 2 {
                // The worker held the probe: ask again at once.
            } else {
                // No wait asked, or a worker that answers at once.
                std::thread::sleep(pause.min(until_deadline));
                pause = (pause * 2).min(PROBE_PAUSE_MAX);
            }
        }
    }

    fn abandon_unknown(&self, id: &str) -> WaitAnswer {
        self.local(
            FallbackReason::Internal,
            &format!("wait for unknown job {id}"),
        );
        WaitAnswer::UseLocal
    }

    fn install(&self, mut p: Pending, result: &[u8]) -> WaitAnswer {
        let started = Instant::now();
        let inputs = InputFiles {
            db: Path::new(&self.dbname),
            files: &p.input_files,
        };
        let verified = verify_result(result, &p.output_dir, self.config.verify_output, &inputs);
        self.stats.verified(started.elapsed().as_micros() as u64);
        match verified {
            Ok((bytes, info)) => {
                p.verified = Some((info.bytes_read, info.bytes_written));
                let id = format!("{}-{}-{}", p.key.db_job(), p.key.sub_job(), p.key.attempt);
                self.completions.forget(&p.name);
                lock(&self.pending).insert(id, p);
                WaitAnswer::Success(bytes)
            }
            Err(e) => self.abandon(&p, e.reason(), &e, false),
        }
    }
}

/// Starts the two etcd followers: discovery of `<root>/workers/`, and the
/// "done" events of this hoster's attempts, `<root>/dcompact-res/<instance>/
/// <start_time>/<db>/`.
fn follow_etcd(
    etcd: &EtcdConfig,
    config: &HosterConfig,
    dbname: &str,
    start_time: u64,
    workers: &Arc<Workers>,
    completions: &Arc<Completions>,
) -> Result<(Follower, Follower), HosterError> {
    let sample = AttemptName::new(
        &AttemptKey {
            instance_name: config.instance_name.clone(),
            start_time,
            dbname: dbname.to_owned(),
            job_id: 0,
            attempt: 0,
        },
        &config.hoster_root,
    )
    .map_err(|e| HosterError::DbName {
        dbname: dbname.to_owned(),
        why: e.to_string(),
    })?;
    let own = sample
        .as_str()
        .rsplitn(3, '/')
        .nth(2)
        .expect("an attempt name has job and attempt parts");
    let discovery = Follower::start(
        "etcd-workers",
        EtcdClient::new(etcd, WATCH_IDLE)?,
        keys::workers_prefix(&etcd.root),
        Discovery::new(workers.clone()),
    )
    .map_err(HosterError::Thread)?;
    let done = Follower::start(
        "etcd-done",
        EtcdClient::new(etcd, WATCH_IDLE)?,
        format!("{}{own}/", keys::done_prefix(&etcd.root)),
        DoneEvents {
            completions: completions.clone(),
            done_prefix: keys::done_prefix(&etcd.root),
        },
    )
    .map_err(HosterError::Thread)?;
    Ok((discovery, done))
}

/// The versions sent with a job: those installed through
/// [`super::plugins`], with the configured `plugin_versions` winning.
fn plugin_versions(configured: &[PluginVersion]) -> Vec<PluginVersion> {
    let mut all = configured.to_vec();
    for p in super::plugins::installed() {
        if !all.iter().any(|c| c.name == p.name) {
            all.push(p);
        }
    }
    all
}

/// The result a worker left in `output_dir`, when its `compact.done`
/// names the attempt `key` (see [`crate::protocol::output_dir`]).
fn finished_on_disk(output_dir: &Path, key: &AttemptKey) -> Option<Vec<u8>> {
    let marker = std::fs::read(output_dir.join(COMPACT_DONE)).ok()?;
    if done_by(&marker).as_ref() != Some(key) {
        tracing::warn!(dir = %output_dir.display(), "compact.done names another attempt: not collected");
        return None;
    }
    std::fs::read(output_dir.join(RPC_RESULTS)).ok()
}

fn remove_output_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "failed to remove output directory")
        }
    }
}

impl Drop for FarmService {
    /// Both etcd threads stop at once; dropping the fields then joins them.
    /// This run's output directory goes when nothing is left in it.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.run_dir);
        for f in [&self.done_follower, &self.discovery].into_iter().flatten() {
            f.request_stop();
        }
    }
}

impl CompactionService for FarmService {
    fn schedule(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        self.schedule_job(info, input)
    }

    fn wait(&self, scheduled_job_id: &str) -> WaitAnswer {
        self.wait_job(scheduled_job_id)
    }

    fn cancel_awaiting(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn on_installation(&self, scheduled_job_id: &str, status: InstallStatus) {
        let p = lock(&self.pending).remove(scheduled_job_id);
        let Some(p) = p else { return };
        self.forget_job(p.key.job_id);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        match (status, p.verified) {
            (InstallStatus::Success, Some((read, written))) => {
                self.stats.installed(p.submitted.elapsed(), read, written);
                self.speed
                    .observe(&p.cf_name, p.input_bytes, p.submitted.elapsed());
            }
            _ => {
                tracing::warn!(
                    job = scheduled_job_id,
                    ?status,
                    "RocksDB did not install a verified remote result"
                );
                self.stats.fallback(FallbackReason::Internal);
            }
        }
        remove_output_dir(&p.output_dir);
    }

    fn release(&self, scheduled_job_id: &str) {
        let p = lock(&self.pending).remove(scheduled_job_id);
        if let Some(p) = p {
            self.abandon(
                &p,
                FallbackReason::Internal,
                &"the RocksDB bridge answered kUseLocal in place of this service",
                true,
            );
        }
    }
}
