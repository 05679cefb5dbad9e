//! The farm's `CompactionService`: schedule on a worker, wait by probing,
//! verify, install or fall back. Each submitted attempt is one
//! [`RemoteAttempt`] that releases what it holds when dropped (see
//! [`super::attempt`]).

use super::attempt::book::AttemptBook;
use super::attempt::cancel::cancel_in_background;
use super::attempt::output_dir;
use super::attempt::owned::{RemoteAttempt, Submitted};
use super::completions::{Completions, DoneEvents};
use super::config::Storage;
use super::config::{ConfigError, HosterConfig, WorkerEndpoint};
use super::discovery::Discovery;
use super::http::{Client, RequestError};
use super::metrics::HosterMetrics;
use super::remote::capability::Grants;
use super::remote::endpoint::FileEndpoint;
use super::speed::{wait_limit, SpeedModel};
use super::stats::{FallbackReason, HosterStats, StatsSnapshot};
use super::verify::{verify_result, InputFiles, OutputCheck};
use super::workers::Workers;
use crate::etcd::client::{EtcdClient, EtcdError};
use crate::etcd::config::EtcdConfig;
use crate::etcd::follow::Follower;
use crate::etcd::keys;
use crate::protocol::answers;
use crate::protocol::attempt::{relative_below, AttemptKey, AttemptName};
use crate::protocol::job::{Job, PluginVersion};
use crate::protocol::version::PROTOCOL_VERSION;
use crate::rocks::serialized::InputInfo;
use crate::rocks::service::{
    self, CompactionService, InstallStatus, JobInfo, ScheduleAnswer, WaitAnswer,
};
use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod schedule;
mod wait;

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
    /// An `https://` worker's `ca`, `cert` or `key` could not be used.
    #[error("http_workers {worker}: {source}")]
    WorkerTls {
        worker: String,
        #[source]
        source: crate::tls::TlsError,
    },
    /// A thread following etcd could not be started.
    #[error("failed to start an etcd thread: {0}")]
    Thread(#[source] std::io::Error),
    /// With `storage: "http"`: the file endpoint could not be started.
    #[error("failed to start the file endpoint on {listen}: {source}")]
    Endpoint {
        listen: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// With `storage: "http"`: the capabilities and the endpoint that serves
/// them.
pub(super) struct RemoteSide {
    pub(super) grants: Arc<Grants>,
    pub(super) endpoint: FileEndpoint,
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
    /// Attempt numbers, the in-flight count, completion wake-ups.
    book: Arc<AttemptBook>,
    /// Attempts with a verified result, until RocksDB installs them (by
    /// the id RocksDB knows them by).
    pending: Mutex<HashMap<String, RemoteAttempt>>,
    /// Bumped by `cancel_awaiting`: waits that began before give up.
    generation: AtomicU64,
    stats: HosterStats,
    speed: SpeedModel,
    /// With `storage: "http"`: the file endpoint and its capabilities.
    remote: Option<RemoteSide>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the output directories an earlier crash of this process left.
/// A worker may still be running one of that process's attempts and
/// writing into its directory, so a removal can fail ("directory not
/// empty"): after a few tries what is left stays until the next open,
/// and the open goes on. This run's own directory is new, so nothing left
/// there stands in its way.
fn sweep_orphaned_outputs(outputs: &Path) {
    const TRIES: u32 = 3;
    for attempt in 1..=TRIES {
        match std::fs::remove_dir_all(outputs) {
            Ok(()) => {
                tracing::info!(path = %outputs.display(), "removed orphaned farm output directories");
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if attempt < TRIES => {
                tracing::debug!(path = %outputs.display(), error = %e, "orphaned outputs still being written; trying again");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => tracing::warn!(
                path = %outputs.display(),
                error = %e,
                "could not remove orphaned farm output directories (a worker may still write there); left for the next open"
            ),
        }
    }
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
        let outputs = Path::new(&dbname).join(OUTPUT_SUBDIR);
        sweep_orphaned_outputs(&outputs);
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
        let remote = match &config.storage {
            Storage::Shared => None,
            Storage::Http { listen, url } => {
                let grants = Arc::new(Grants::default());
                let endpoint = FileEndpoint::start(*listen, url.clone(), grants.clone()).map_err(
                    |source| HosterError::Endpoint {
                        listen: *listen,
                        source,
                    },
                )?;
                tracing::info!(url = endpoint.url(), addr = %endpoint.addr(), "file endpoint for workers (storage: http)");
                Some(RemoteSide { grants, endpoint })
            }
        };
        Ok(FarmService {
            remote,
            book: AttemptBook::new(completions.clone()),
            client: Client::new(&config)?,
            speed: SpeedModel::new(config.estimate_speed),
            workers,
            completions,
            done_follower,
            discovery,
            config,
            dbname,
            start_time,
            run_dir,
            pending: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
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

    /// With `storage: "http"`: the file endpoint's URL and the
    /// capabilities alive now.
    pub fn file_endpoint(&self) -> Option<(&str, usize)> {
        self.remote
            .as_ref()
            .map(|r| (r.endpoint.url(), r.grants.live()))
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
        self.book.in_flight()
    }

    fn local(&self, reason: FallbackReason, why: &dyn std::fmt::Display) -> ScheduleAnswer {
        tracing::info!(reason = reason.name(), error = %why, "compacting locally");
        self.stats.fallback_because(reason, why.to_string());
        ScheduleAnswer::UseLocal
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

    /// Ends an attempt without installing it: cancel it on the worker
    /// (when it may still run), then let go of it (its output directory is
    /// removed, see [`RemoteAttempt`]).
    fn abandon(
        &self,
        p: RemoteAttempt,
        reason: FallbackReason,
        why: &dyn std::fmt::Display,
        cancel_remote: bool,
    ) -> WaitAnswer {
        if cancel_remote {
            p.cancel_on_worker(&self.client);
        }
        drop(p);
        self.local(reason, why);
        WaitAnswer::UseLocal
    }

    fn abandon_unknown(&self, id: &str) -> WaitAnswer {
        self.local(
            FallbackReason::Internal,
            &format!("wait for unknown job {id}"),
        );
        WaitAnswer::UseLocal
    }

    fn install(&self, mut p: RemoteAttempt, result: &[u8]) -> WaitAnswer {
        let started = Instant::now();
        let inputs = InputFiles {
            db: Path::new(&self.dbname),
            files: &p.input_files,
        };
        let check =
            OutputCheck::from_params(self.config.verify_output, self.config.verify_output_blocks);
        let verified = verify_result(result, &p.output_dir, check, &inputs);
        self.stats.verified(started.elapsed().as_micros() as u64);
        match verified {
            Ok((bytes, info)) => {
                p.verified = Some((info.bytes_read, info.bytes_written));
                self.completions.forget(&p.name);
                lock(&self.pending).insert(p.id(), p);
                WaitAnswer::Success(bytes)
            }
            Err(e) => self.abandon(p, e.reason(), &e, false),
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

impl Drop for FarmService {
    /// Both etcd threads stop at once; dropping the fields then joins them.
    /// Attempts RocksDB never installed are let go of (their output
    /// directories removed); this run's directory goes when nothing is
    /// left in it.
    fn drop(&mut self) {
        lock(&self.pending).clear();
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
        // Dropping `p` removes the output directory, emptied by RocksDB.
    }

    fn release(&self, scheduled_job_id: &str) {
        let p = lock(&self.pending).remove(scheduled_job_id);
        if let Some(p) = p {
            self.abandon(
                p,
                FallbackReason::Internal,
                &"the RocksDB bridge answered kUseLocal in place of this service",
                true,
            );
        }
    }
}
