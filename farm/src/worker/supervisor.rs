//! The supervisor: owns the state of every attempt.
//!
//! Admission: at most `MAX_PARALLEL_COMPACTIONS` attempts run at once, at
//! most `MAX_WAITING_COMPACTIONS` wait (the next to run is chosen by
//! [`priority`]), and beyond that a
//! submission is answered 503. Each running attempt is a tracked blocking
//! task with its own cancel flag. A finished attempt stays answerable by
//! `/probe` for `RESULT_RETENTION`.
//!
//! Failure modes: a panic in an attempt is caught and classified
//! (`panicked`); an attempt that cannot be prepared is `setup_failed`; a
//! cancel sets RocksDB's canceled flag and the attempt ends `cancelled`.

use crate::protocol::answers::{self, ProbeAnswer, Progress};
use crate::protocol::attempt::{AttemptKey, AttemptName};
use crate::protocol::job::Job;
use crate::rocks::open_and_compact::CancelFlag;
use crate::rocks::plugins::{self, PluginClass, PluginCounts};
use crate::rocks::serialized::ResultInfo;
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::child::spawner::Spawner;
use crate::worker::child::spec::{self as child_spec, ChildSpec};
use crate::worker::child::supervise::{supervise, Limits};
use crate::worker::config::WorkerConfig;
use crate::worker::metrics::attempts::AttemptMetrics;
use crate::worker::metrics::queue;
use crate::worker::mounts::stale::is_stale_handle;
use crate::worker::mounts::stats::MountsSnapshot;
use crate::worker::mounts::table::MountTable;
use crate::worker::outcome::Outcome;
use crate::worker::plugin_catalog::Catalog;
use crate::worker::queue_order::priority;
use crate::worker::registration::{RegistrationSnapshot, RegistrationStatus};
use crate::worker::root_guard::WorkerRoot;
use crate::worker::runner::{self, AttemptDirs, PreparedJob, RunResult};
use crate::worker::stats::{Counters, RejectReason};
use crate::worker::summary::Summary;
use crate::worker::timings::{now_us, AttemptTimings, CHILD_TIMINGS};
use crate::worker::zip_link::{ZipLink, ZipLinkSnapshot};
use base64::Engine;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::task::TaskTracker;

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Refused(String),
    #[error("worker busy: {running} running and {waiting} waiting (MAX_PARALLEL_COMPACTIONS={parallel}, MAX_WAITING_COMPACTIONS={queue})")]
    Busy {
        running: usize,
        waiting: usize,
        parallel: usize,
        queue: usize,
    },
}

/// What the supervisor tells its observer (the etcd registrar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// Attempts running and waiting changed.
    Load { running: usize, waiting: usize },
    /// An attempt ended, whatever its outcome.
    Ended(AttemptName),
}

type Observer = Box<dyn Fn(SupervisorEvent) + Send + Sync>;

enum Phase {
    Queued,
    Running {
        started: Instant,
        cancel: Arc<CancelFlag>,
    },
    Finished {
        outcome: Outcome,
        result: Option<String>,
        at: Instant,
    },
}

struct Entry {
    name: AttemptName,
    job: Arc<Job>,
    prepared: Option<PreparedJob>,
    accepted: Instant,
    phase: Phase,
    /// The input's size at admission.
    input_bytes: u64,
    /// From start to end, once ended after running.
    ran: Option<Duration>,
    bytes_read: u64,
    bytes_written: u64,
}

#[derive(Default)]
struct State {
    attempts: HashMap<AttemptKey, Entry>,
    queue: VecDeque<AttemptKey>,
    running: usize,
    /// The most attempts ever running at once.
    running_high_water: usize,
    stopping: bool,
    counters: Counters,
    /// What plugin code did in attempt children that have ended.
    child_plugin_counts: PluginCounts,
}

/// One row of `/stat`'s attempt list.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub name: String,
    /// The body `/probe` and `/shutdown` take for this attempt.
    pub key: AttemptKey,
    pub state: &'static str,
    /// How it ended, with the error: `failed: <error>`.
    pub outcome: Option<String>,
    /// The time since the last change of state (accepted, started, ended).
    pub elapsed_ms: u64,
    /// The closed outcome name (`succeeded`, `cancelled`, ...), once ended.
    pub outcome_name: Option<&'static str>,
    /// The input SSTs' total size at admission.
    pub input_bytes: u64,
    /// RocksDB's figures of a succeeded attempt.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The hoster's estimate of the run time.
    pub estimate_ms: u64,
    /// Run time so far (running) or in all (ended); 0 while queued.
    pub run_ms: u64,
}

/// `/stat?html=0`.
#[derive(Debug, Clone, Serialize)]
pub struct StatSnapshot {
    pub identity: String,
    pub running: usize,
    /// The most attempts ever running at once.
    pub running_high_water: usize,
    pub waiting: usize,
    pub max_parallel_compactions: usize,
    pub max_waiting_compactions: usize,
    pub stopping: bool,
    pub counters: Counters,
    pub plugins: PluginsSnapshot,
    /// With `NFS_DYNAMIC_MOUNT`: the mounts and their counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<MountsSnapshot>,
    /// The registration in etcd, with `ETCD_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<RegistrationSnapshot>,
    pub attempts: Vec<AttemptRow>,
    /// The zipserver the children use (MULTI_PROCESS with a zipserver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipserver: Option<ZipLinkSnapshot>,
}

/// The plugin part of `/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginsSnapshot {
    pub classes: Vec<PluginClass>,
    /// Merges resolved, entries filtered, dropped, changed by plugin code on
    /// this worker (in-process and in children).
    pub counts: PluginCounts,
}

pub struct Supervisor {
    config: Arc<WorkerConfig>,
    /// `WORKER_DB_ROOT`, opened: attempt directories are made beneath it.
    root: Arc<WorkerRoot>,
    identity: String,
    state: Mutex<State>,
    tasks: TaskTracker,
    /// With MULTI_PROCESS, the thread that forks attempt children.
    spawner: Option<Spawner>,
    catalog: Arc<Catalog>,
    /// What `/metrics` serves: the attempt metrics, the queue gauges read
    /// from this supervisor, and the process's own figures.
    registry: prometheus::Registry,
    metrics: AttemptMetrics,
    /// With `NFS_DYNAMIC_MOUNT`: one mount per hoster instance.
    mounts: Option<Arc<MountTable>>,
    /// Called under the state lock: it must only pass the event on.
    observer: OnceLock<Observer>,
    /// The etcd registration shown by `/stat`.
    registration: OnceLock<Arc<RegistrationStatus>>,
    /// With MULTI_PROCESS and a zipserver configured.
    zip: Option<ZipLink>,
    /// Bumped whenever an attempt ends: what a held `/probe` waits for.
    ended: tokio::sync::watch::Sender<u64>,
}

impl Supervisor {
    /// With MULTI_PROCESS, starts the spawner thread for children running
    /// `worker_exe`.
    pub fn new(
        config: Arc<WorkerConfig>,
        root: Arc<WorkerRoot>,
        identity: String,
        worker_exe: &Path,
        catalog: Arc<Catalog>,
    ) -> std::io::Result<Arc<Self>> {
        let spawner = if config.multi_process {
            Some(Spawner::start(
                worker_exe.to_owned(),
                config.plugins.clone(),
                config.child_limits.clone(),
            )?)
        } else {
            None
        };
        let zip = ZipLink::start(&config, worker_exe)?;
        let mounts = match (&config.nfs_mount_root, config.nfs_dynamic_mount) {
            (Some(root), true) => Some(MountTable::new(
                root.clone(),
                config.nfs_mount_cache,
                config.mount_timeout,
            )),
            _ => None,
        };
        let registry = prometheus::Registry::new();
        let metrics = AttemptMetrics::new(&registry).map_err(std::io::Error::other)?;
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(std::io::Error::other)?;
        let sup = Arc::new(Supervisor {
            root,
            mounts,
            zip,
            config,
            identity,
            state: Mutex::new(State::default()),
            tasks: TaskTracker::new(),
            spawner,
            catalog,
            registry,
            metrics,
            observer: OnceLock::new(),
            registration: OnceLock::new(),
            ended: tokio::sync::watch::channel(0).0,
        });
        // Weak: the registry lives in the supervisor it reads.
        let gauges = queue::collector(Arc::downgrade(&sup)).map_err(std::io::Error::other)?;
        sup.registry
            .register(Box::new(gauges))
            .map_err(std::io::Error::other)?;
        if sup.zip.is_some() {
            let zip = crate::worker::metrics::zip::collector(Arc::downgrade(&sup))
                .map_err(std::io::Error::other)?;
            sup.registry
                .register(Box::new(zip))
                .map_err(std::io::Error::other)?;
        }
        if let Some(table) = &sup.mounts {
            let mounts = crate::worker::metrics::mounts::collector(Arc::downgrade(table))
                .map_err(std::io::Error::other)?;
            sup.registry
                .register(Box::new(mounts))
                .map_err(std::io::Error::other)?;
        }
        Ok(sup)
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    /// The attempt metrics, for events outside the supervisor (retention).
    pub fn metrics(&self) -> &AttemptMetrics {
        &self.metrics
    }

    /// The queue's state, for the gauges.
    pub fn queue_state(&self) -> queue::QueueState {
        let st = self.lock();
        queue::QueueState {
            running: st.running,
            waiting: st.queue.len(),
            running_high_water: st.running_high_water,
            max_parallel: self.config.max_parallel_compactions,
            max_waiting: self.config.max_waiting_compactions,
            stopping: st.stopping,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// The zipserver link, with MULTI_PROCESS and a zipserver configured.
    pub fn zip_snapshot(&self) -> Option<ZipLinkSnapshot> {
        self.zip.as_ref().map(ZipLink::snapshot)
    }

    pub fn mounts(&self) -> Option<&Arc<MountTable>> {
        self.mounts.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than losing the worker: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the one observer of load changes and ended attempts; `false`
    /// when one is set already.
    pub fn observe(&self, observer: impl Fn(SupervisorEvent) + Send + Sync + 'static) -> bool {
        self.observer.set(Box::new(observer)).is_ok()
    }

    /// Shows `status` in `/stat` from now on.
    pub fn show_registration(&self, status: Arc<RegistrationStatus>) {
        let _ = self.registration.set(status);
    }

    /// Changes whenever an attempt ends (see `/probe`'s `wait_ms`).
    pub fn ended_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ended.subscribe()
    }

    fn tell(&self, st: &State, ended: Option<&AttemptName>) {
        if ended.is_some() {
            self.ended.send_modify(|n| *n += 1);
        }
        if let Some(o) = self.observer.get() {
            if let Some(name) = ended {
                o(SupervisorEvent::Ended(name.clone()));
            }
            o(SupervisorEvent::Load {
                running: st.running,
                waiting: st.queue.len(),
            });
        }
    }

    pub fn count_reject(&self, reason: RejectReason) {
        self.lock().counters.reject(reason);
        self.metrics.rejected(reason);
    }

    /// Admits a validated job, or says why not.
    pub fn submit(
        self: &Arc<Self>,
        job: Job,
        name: AttemptName,
        prepared: PreparedJob,
    ) -> Result<(), SubmitError> {
        let mut st = self.lock();
        let key = job.key();
        let refuse = |st: &mut State, why: String| {
            st.counters.reject(RejectReason::Refused);
            self.metrics.rejected(RejectReason::Refused);
            Err(SubmitError::Refused(why))
        };
        if st.stopping {
            return refuse(&mut st, "worker is stopping".into());
        }
        if st.attempts.contains_key(&key) {
            return refuse(&mut st, format!("attempt {name} was already submitted"));
        }
        let parallel = self.config.max_parallel_compactions;
        let queue = self.config.max_waiting_compactions;
        if st.running + st.queue.len() >= parallel + queue {
            st.counters.reject(RejectReason::Busy);
            self.metrics.rejected(RejectReason::Busy);
            return Err(SubmitError::Busy {
                running: st.running,
                waiting: st.queue.len(),
                parallel,
                queue,
            });
        }
        tracing::info!(attempt = %name, "accepted");
        st.counters.accepted += 1;
        self.metrics.accepted();
        st.attempts.insert(
            key.clone(),
            Entry {
                name,
                job: Arc::new(job),
                input_bytes: prepared.input_bytes,
                prepared: Some(prepared),
                accepted: Instant::now(),
                phase: Phase::Queued,
                ran: None,
                bytes_read: 0,
                bytes_written: 0,
            },
        );
        st.queue.push_back(key);
        self.dispatch(&mut st);
        self.tell(&st, None);
        Ok(())
    }

    /// Starts queued attempts while there are free slots.
    fn dispatch(self: &Arc<Self>, st: &mut State) {
        while st.running < self.config.max_parallel_compactions {
            let Some(key) = next_in_queue(st) else {
                break;
            };
            let Some(entry) = st.attempts.get_mut(&key) else {
                continue;
            };
            let Some(mut prepared) = entry.prepared.take() else {
                continue;
            };
            let cancel = Arc::new(CancelFlag::new());
            let waited = entry.accepted.elapsed();
            self.metrics.started(waited);
            entry.phase = Phase::Running {
                started: Instant::now(),
                cancel: cancel.clone(),
            };
            st.running += 1;
            st.running_high_water = st.running_high_water.max(st.running);
            let name = entry.name.clone();
            let job = entry.job.clone();
            let sup = self.clone();
            self.tasks.spawn_blocking(move || {
                let run = catch_unwind(AssertUnwindSafe(|| {
                    sup.run_attempt(&name, &job, &mut prepared, &cancel, waited)
                }));
                let (outcome, result, read, written) = match run {
                    Ok(r) => r,
                    Err(panic) => {
                        let msg = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        (Outcome::Panicked(msg), None, 0, 0)
                    }
                };
                sup.finish(&key, outcome, result, read, written);
            });
        }
    }

    /// Runs one attempt to its end: its span carries the attempt name to
    /// every event logged while it runs.
    #[tracing::instrument(name = "attempt", skip_all, fields(attempt = %name))]
    fn run_attempt(
        &self,
        name: &AttemptName,
        job: &Job,
        prepared: &mut PreparedJob,
        cancel: &CancelFlag,
        waited: Duration,
    ) -> (Outcome, Option<String>, u64, u64) {
        prepared.timings.started_us = Some(now_us());
        let dir = match AttemptDir::create(&self.root, name, job, &self.identity) {
            Ok(d) => d,
            Err(e) => {
                return (
                    Outcome::SetupFailed(format!("failed to create attempt dir: {e}")),
                    None,
                    0,
                    0,
                )
            }
        };
        dir.log(&format!("attempt {name} running on {}", self.identity));
        dir.log(&format!(
            "start db={} output_dir={} cf={} options={}",
            prepared.db.path().display(),
            prepared.output.path().display(),
            prepared.cf_name,
            prepared.options_file
        ));
        let started = Instant::now();
        let started_at = SystemTime::now();
        let (r, spawn_latency) = self.run_with_retry(name, job, prepared, &dir, cancel);
        let ran = started.elapsed();
        prepared.timings.ended_us = Some(now_us());
        prepared.timings.compaction_us = r
            .result
            .as_deref()
            .and_then(|b| ResultInfo::parse(b).ok())
            .map(|info| info.stats.micros);
        dir.log(&format!(
            "end outcome={} elapsed_ms={}",
            r.outcome,
            ran.as_millis()
        ));
        dir.log(&format!(
            "timings {} {}",
            serde_json::to_string(&prepared.timings).unwrap_or_default(),
            prepared.timings.describe()
        ));
        tracing::info!(outcome = %r.outcome, elapsed_ms = ran.as_millis() as u64, "finished");
        let summary = Summary {
            name,
            identity: &self.identity,
            job,
            inputs: &prepared.input_files,
            outcome: &r.outcome,
            result: r.result.as_deref(),
            bytes_read: r.bytes_read,
            bytes_written: r.bytes_written,
            waited,
            started_at,
            ran,
            spawn_latency,
            timings: &prepared.timings,
        };
        if let Err(e) = summary.write(dir.path()) {
            tracing::warn!(error = %e, "failed to write summary.html");
        }
        if self.config.del_worker_temp_db {
            if let Err(e) = dir.remove(&self.root, name) {
                tracing::warn!(error = %e, "failed to remove attempt dir");
            }
        }
        let result = r
            .result
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b));
        (r.outcome, result, r.bytes_read, r.bytes_written)
    }

    /// Creates the output directory and runs the attempt; after a stale
    /// file handle on a dynamic mount, remounts once and runs once more.
    fn run_with_retry(
        &self,
        name: &AttemptName,
        job: &Job,
        prepared: &mut PreparedJob,
        dir: &AttemptDir,
        cancel: &CancelFlag,
    ) -> (RunResult, Option<Duration>) {
        let run = |prepared: &mut PreparedJob, dirs: &AttemptDirs| match &self.spawner {
            None => (
                runner::run(&job.key(), prepared, dirs, dir, &self.identity, cancel),
                None,
            ),
            Some(spawner) => self.run_child(spawner, name, job, prepared, dir, cancel),
        };
        let dirs = match AttemptDirs::create(prepared) {
            Ok(d) => d,
            Err(e) => return (RunResult::failed(Outcome::SetupFailed(e.to_string())), None),
        };
        if let (Some(table), Some(lease)) = (&self.mounts, &prepared.mount) {
            table.observe(lease);
        }
        let first = run(prepared, &dirs);
        let stale = first.0.outcome.error().is_some_and(|e| is_stale_handle(&e));
        let (true, Some(table), Some(lease)) = (stale, &self.mounts, &prepared.mount) else {
            return first;
        };
        dir.log(&format!(
            "stale file handle ({}): remounting instance {} and retrying once",
            first.0.outcome,
            lease.instance()
        ));
        tracing::warn!(attempt = %name, outcome = %first.0.outcome, "stale file handle: remounting and retrying");
        drop(dirs);
        let again = table
            .remount(lease)
            .map_err(|e| format!("remount after a stale file handle failed: {e}"))
            .and_then(|()| AttemptDirs::reopen(prepared));
        match again {
            Ok(dirs) => run(prepared, &dirs),
            Err(e) => (RunResult::failed(Outcome::SetupFailed(e)), None),
        }
    }

    /// MULTI_PROCESS: the attempt in a child, supervised. Also says how
    /// long starting the child took.
    fn run_child(
        &self,
        spawner: &Spawner,
        name: &AttemptName,
        job: &Job,
        prepared: &mut PreparedJob,
        dir: &AttemptDir,
        cancel: &CancelFlag,
    ) -> (RunResult, Option<Duration>) {
        let spec = ChildSpec {
            key: job.key(),
            db: prepared.db.clone(),
            output: prepared.output.clone(),
            options_file: prepared.options_file.clone(),
            cf_name: prepared.cf_name.clone(),
            identity: self.identity.clone(),
            plugins: self.config.plugins.clone(),
            zip: self.zip.as_ref().map(|z| z.child_spec(name.as_str())),
        };
        let written = serde_json::to_vec_pretty(&spec)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(dir.path().join(child_spec::CHILD_SPEC), json));
        if let Err(e) = written {
            let failed = Outcome::SetupFailed(format!("failed to write child spec: {e}"));
            return (RunResult::failed(failed), None);
        }
        // Unique on this host: two workers may run attempts of one name.
        let marker = child_spec::attempt_marker(name.as_str());
        let spawned = match spawner.spawn(dir.path(), &marker) {
            Ok(s) => s,
            Err(e) => return (RunResult::failed(Outcome::SpawnFailed(e.to_string())), None),
        };
        prepared.timings.spawned_us = Some(now_us());
        self.metrics.child_spawned(spawned.latency);
        let latency = spawned.latency;
        let limits = Limits {
            timeout: self.config.attempt_timeout(job.estimate_time_us),
            grace: self.config.cancel_grace,
        };
        dir.log(&format!(
            "child pid={} spawned in {} us; timeout {:?}",
            spawned.child.id(),
            spawned.latency.as_micros(),
            limits.timeout
        ));
        let r = supervise(spawned.child, cancel, limits, dir.path(), &marker);
        if let Ok(bytes) = std::fs::read(dir.path().join(CHILD_TIMINGS)) {
            if let Ok(child) = serde_json::from_slice::<AttemptTimings>(&bytes) {
                prepared.timings.merge(&child);
            }
        }
        if let Ok(bytes) = std::fs::read(dir.path().join(child_spec::PLUGIN_COUNTS)) {
            if let Ok(counts) = serde_json::from_slice::<PluginCounts>(&bytes) {
                self.lock().child_plugin_counts.add(&counts);
            }
        }
        if let Some(c) = self.zip.as_ref().and_then(|z| z.collect(dir.path())) {
            dir.log(&format!(
                "zip blocks_seen={} remote_blocks={} remote_bytes_in={} remote_bytes_out={} fallback_blocks={}",
                c.blocks_seen, c.remote_blocks, c.remote_bytes_in, c.remote_bytes_out, c.fallback_blocks
            ));
        }
        (r, Some(latency))
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn finish(
        self: &Arc<Self>,
        key: &AttemptKey,
        outcome: Outcome,
        result: Option<String>,
        read: u64,
        written: u64,
    ) {
        let mut st = self.lock();
        st.running -= 1;
        let mut ran = None;
        if let Some(entry) = st.attempts.get_mut(key) {
            if let Phase::Running { started, .. } = &entry.phase {
                ran = Some(started.elapsed());
            }
            entry.ran = ran;
            entry.bytes_read = read;
            entry.bytes_written = written;
        }
        self.metrics.ended(&outcome, ran, read, written);
        match &outcome {
            Outcome::Succeeded => {
                st.counters.succeeded += 1;
                st.counters.bytes_read += read;
                st.counters.bytes_written += written;
            }
            other => *st.counters.failed.entry(other.name()).or_default() += 1,
        }
        let mut ended = None;
        if let Some(entry) = st.attempts.get_mut(key) {
            entry.phase = Phase::Finished {
                outcome,
                result,
                at: Instant::now(),
            };
            ended = Some(entry.name.clone());
        }
        self.dispatch(&mut st);
        self.tell(&st, ended.as_ref());
    }

    pub fn probe(&self, key: &AttemptKey) -> Option<ProbeAnswer> {
        let st = self.lock();
        let entry = st.attempts.get(key)?;
        Some(match &entry.phase {
            Phase::Queued => ProbeAnswer {
                status: answers::QUEUED.into(),
                ..Default::default()
            },
            Phase::Running { started, .. } => ProbeAnswer {
                status: answers::RUNNING.into(),
                progress: Some(Progress {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    estimate_ms: entry.job.estimate_time_us / 1000,
                    input_bytes: entry.input_bytes,
                }),
                ..Default::default()
            },
            Phase::Finished {
                outcome: Outcome::Succeeded,
                result,
                ..
            } => ProbeAnswer {
                status: answers::DONE.into(),
                result: result.clone(),
                ..Default::default()
            },
            Phase::Finished { outcome, .. } => ProbeAnswer {
                status: answers::FAILED.into(),
                outcome: Some(outcome.name().into()),
                error: Some(outcome.to_string()),
                ..Default::default()
            },
        })
    }

    /// Cancels a queued or running attempt. `false`: no such attempt, or it
    /// already ended.
    pub fn cancel(&self, key: &AttemptKey) -> bool {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(entry) = st.attempts.get_mut(key) else {
            return false;
        };
        match &entry.phase {
            Phase::Queued => {
                st.queue.retain(|k| k != key);
                entry.prepared = None;
                entry.phase = Phase::Finished {
                    outcome: Outcome::Cancelled,
                    result: None,
                    at: Instant::now(),
                };
                *st.counters.failed.entry("cancelled").or_default() += 1;
                self.metrics.ended(&Outcome::Cancelled, None, 0, 0);
                let name = entry.name.clone();
                self.tell(st, Some(&name));
                true
            }
            Phase::Running { cancel, .. } => {
                tracing::info!(attempt = %entry.name, "cancel requested");
                cancel.cancel();
                true
            }
            Phase::Finished { .. } => false,
        }
    }

    pub fn stat(&self) -> StatSnapshot {
        let st = self.lock();
        let now = Instant::now();
        let mut attempts: Vec<AttemptRow> = st
            .attempts
            .values()
            .map(|e| {
                let (state, outcome, since, run) = match &e.phase {
                    Phase::Queued => ("queued", None, e.accepted, Duration::ZERO),
                    Phase::Running { started, .. } => (
                        "running",
                        None,
                        *started,
                        now.saturating_duration_since(*started),
                    ),
                    Phase::Finished { outcome, at, .. } => {
                        ("finished", Some(outcome), *at, e.ran.unwrap_or_default())
                    }
                };
                AttemptRow {
                    name: e.name.to_string(),
                    key: e.job.key(),
                    state,
                    outcome: outcome.map(Outcome::to_string),
                    elapsed_ms: now.saturating_duration_since(since).as_millis() as u64,
                    outcome_name: outcome.map(Outcome::name),
                    input_bytes: e.input_bytes,
                    bytes_read: e.bytes_read,
                    bytes_written: e.bytes_written,
                    estimate_ms: e.job.estimate_time_us / 1000,
                    run_ms: run.as_millis() as u64,
                }
            })
            .collect();
        attempts.sort_by(|a, b| a.name.cmp(&b.name));
        StatSnapshot {
            identity: self.identity.clone(),
            running: st.running,
            running_high_water: st.running_high_water,
            waiting: st.queue.len(),
            max_parallel_compactions: self.config.max_parallel_compactions,
            max_waiting_compactions: self.config.max_waiting_compactions,
            stopping: st.stopping,
            counters: st.counters.clone(),
            plugins: PluginsSnapshot {
                classes: self.catalog.classes(),
                counts: {
                    let mut c = plugins::counts();
                    c.add(&st.child_plugin_counts);
                    c
                },
            },
            mounts: self.mounts.as_ref().map(|m| m.snapshot()),
            etcd: self.registration.get().map(|r| r.snapshot()),
            attempts,
            zipserver: self.zip_snapshot(),
        }
    }

    /// Names of attempts that are queued or running.
    pub fn active_names(&self) -> HashSet<String> {
        let st = self.lock();
        st.attempts
            .values()
            .filter(|e| !matches!(e.phase, Phase::Finished { .. }))
            .map(|e| e.name.as_str().to_owned())
            .collect()
    }

    /// The worker's root, checked and opened at start.
    pub fn root(&self) -> &Arc<WorkerRoot> {
        &self.root
    }

    pub fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Forgets finished attempts older than `RESULT_RETENTION`.
    pub fn sweep(&self) {
        let retention = self.config.result_retention;
        let mut st = self.lock();
        st.attempts.retain(|_, e| match &e.phase {
            Phase::Finished { at, .. } => at.elapsed() < retention,
            _ => true,
        });
    }

    /// Stops admitting (new jobs get 412, `/health` 412), cancels queued
    /// attempts, lets running ones finish until `SHUTDOWN_GRACE` has passed,
    /// then cancels them, and waits until every attempt's task has ended.
    pub async fn shutdown(&self) {
        let queued: Vec<AttemptKey> = {
            let mut st = self.lock();
            st.stopping = true;
            st.queue.iter().cloned().collect()
        };
        for key in &queued {
            self.cancel(key);
        }
        self.tasks.close();
        if tokio::time::timeout(self.config.shutdown_grace, self.tasks.wait())
            .await
            .is_err()
        {
            let running: Vec<AttemptKey> = self.lock().attempts.keys().cloned().collect();
            tracing::warn!(
                running = running.len(),
                "shutdown grace passed: cancelling running attempts"
            );
            for key in &running {
                self.cancel(key);
            }
            self.tasks.wait().await;
        }
        // No child compresses any more: stop the zipserver.
        if let Some(mut sidecar) = self.zip.as_ref().and_then(ZipLink::take_sidecar) {
            let _ = tokio::task::spawn_blocking(move || sidecar.stop()).await;
        }
        // Every attempt has ended, so no mount is in use: unmount them all.
        if let Some(table) = self.mounts.clone() {
            let _ = tokio::task::spawn_blocking(move || table.close()).await;
        }
    }

    /// The sweeper's period: often enough that retention is honoured within
    /// a tenth of itself.
    pub fn sweep_period(&self) -> Duration {
        (self.config.result_retention / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(30))
    }
}

/// Removes and returns the waiting attempt with the highest priority.
fn next_in_queue(st: &mut State) -> Option<AttemptKey> {
    let now = Instant::now();
    let best = st
        .queue
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let p = st.attempts.get(key).map_or(f64::MAX, |e| {
                priority(
                    now.saturating_duration_since(e.accepted),
                    e.job.estimate_time_us,
                    e.job.output_level,
                    e.job.attempt,
                )
            });
            (i, p)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)?;
    st.queue.remove(best)
}
