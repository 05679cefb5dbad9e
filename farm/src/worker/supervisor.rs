//! The supervisor: owns the state of every attempt.
//!
//! Admission: at most `MAX_PARALLEL_COMPACTIONS` attempts run at once, at
//! most `MAX_WAITING_COMPACTIONS` wait (the next to run is chosen by
//! [`priority`]), and beyond that a
//! submission is answered 503. A submission reserves its place before its
//! job is admitted ([`Supervisor::enter_admission`], see
//! [`crate::worker::admission_gate`]), so attempts being admitted count
//! too, and a full worker refuses before it reads anything. A queued
//! attempt's entry owns its place and prepared job; when it starts, both
//! move to the [`Attempt`] its tracked blocking task owns (see
//! [`crate::worker::attempt`]), and its entry keeps only the cancel flag.
//! A finished attempt stays answerable by `/probe` for `RESULT_RETENTION`.
//!
//! Failure modes: a panic in an attempt is caught and classified
//! (`panicked`); an attempt that cannot be prepared is `setup_failed`; a
//! cancel sets RocksDB's canceled flag and the attempt ends `cancelled`; an
//! attempt past its deadline ends `timed_out` (a child is killed, an
//! in-process attempt abandoned, see [`crate::worker::deadline`]). A run
//! ends once ([`AttemptEnd`]): whoever ends it first frees its slot.
//!
//! This file holds the state and its transitions (submit, dispatch,
//! finish, probe, cancel); `run` runs one attempt, `snapshot` is what
//! `/stat` shows, `lifecycle` the sweep and shutdown.

use crate::protocol::answers::{self, ProbeAnswer, Progress};
use crate::protocol::attempt::{AttemptKey, AttemptName};
use crate::protocol::job::Job;
use crate::rocks::open_and_compact::CancelFlag;
use crate::rocks::plugins::{self, PluginClass, PluginCounts};
use crate::rocks::serialized::ResultInfo;
use crate::worker::admission_gate::{AdmissionGate, AdmissionPermit, Closed, Reservation};
use crate::worker::attempt::directory::OwnedDir;
use crate::worker::attempt::end::{AttemptEnd, Ended};
use crate::worker::attempt::owned::{Attempt, AttemptWork};
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::child::spawner::Spawner;
use crate::worker::child::spec::{self as child_spec, ChildRemote, ChildSpec};
use crate::worker::child::supervise::{supervise, Limits};
use crate::worker::config::WorkerConfig;
use crate::worker::deadline::Watchdog;
use crate::worker::drain::Drain;
use crate::worker::finished_bound;
use crate::worker::metrics::attempts::AttemptMetrics;
use crate::worker::metrics::queue;
use crate::worker::mounts::stale::is_stale_handle;
use crate::worker::mounts::stats::MountsSnapshot;
use crate::worker::mounts::table::MountTable;
use crate::worker::outcome::Outcome;
use crate::worker::plugin_catalog::Catalog;
use crate::worker::queue_order::{priority, Waiting};
use crate::worker::registration::{RegistrationSnapshot, RegistrationStatus};
use crate::worker::remote::counts::RemoteCounts;
use crate::worker::root_guard::WorkerRoot;
use crate::worker::runner::{self, AttemptDirs, PreparedJob, RunError, RunResult};
use crate::worker::stats::{Counters, RejectReason};
use crate::worker::summary::Summary;
use crate::worker::timings::{now_us, AttemptTimings, CHILD_TIMINGS};
use crate::worker::tombstones::{self, Tombstones};
use crate::worker::zip_link::{ZipLink, ZipLinkSnapshot};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::task::TaskTracker;

mod delivery;
mod drain_progress;
mod lifecycle;
mod run;
mod snapshot;

pub use drain_progress::DrainProgress;
pub use snapshot::{AttemptRow, PluginsSnapshot, StatSnapshot};

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("worker is stopping")]
    Stopping,
    #[error("attempt {0} was already submitted")]
    Duplicate(AttemptName),
    #[error("attempt {0} was cancelled by its hoster before it was admitted")]
    CancelledEarly(AttemptName),
    #[error(
        "attempt name {name} is in use by another job (dbname {other:?}): two jobs whose \
         dbnames differ only in '/' against '_' or a trailing '/' share one name; \
         this one is compacted locally"
    )]
    NameInUse { name: AttemptName, other: String },
    #[error("worker busy: {running} running and {waiting} waiting, {admitting} being admitted (MAX_PARALLEL_COMPACTIONS={parallel}, MAX_WAITING_COMPACTIONS={queue})")]
    Busy {
        running: usize,
        waiting: usize,
        admitting: usize,
        parallel: usize,
        queue: usize,
    },
    #[error("worker busy: MAX_ADMISSIONS={max} jobs are being admitted (their storage may be slow to answer); try another worker")]
    AdmissionsFull { max: usize },
}

impl SubmitError {
    /// What the refusal counts as, and answers (see the server's one
    /// table from a refusal to its HTTP status).
    pub fn reason(&self) -> RejectReason {
        match self {
            SubmitError::Busy { .. } => RejectReason::Busy,
            SubmitError::AdmissionsFull { .. } => RejectReason::AdmissionsFull,
            _ => RejectReason::Refused,
        }
    }
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
    /// Waiting in the queue, holding its place and its prepared job (with
    /// the mount lease): both given back when the phase is left other than
    /// by starting.
    Queued {
        place: Reservation,
        prepared: Box<PreparedJob>,
    },
    /// Its [`Attempt`] is owned by the task that runs it.
    Running {
        started: Instant,
        cancel: Arc<CancelFlag>,
        /// The result its child delivered before exiting (see
        /// `supervisor/delivery.rs`): `/probe` answers it while the slot
        /// stays taken until the child is gone.
        delivered: Option<Ended>,
    },
    Finished {
        outcome: Outcome,
        result: Option<String>,
        at: Instant,
    },
}

impl Phase {
    /// Leaves the queue for `running`: the place and the prepared job,
    /// or `None` (and nothing changed) when not queued.
    fn start(&mut self, running: Phase) -> Option<(Reservation, PreparedJob)> {
        if !matches!(self, Phase::Queued { .. }) {
            return None;
        }
        match std::mem::replace(self, running) {
            Phase::Queued { place, prepared } => Some((place, *prepared)),
            _ => None,
        }
    }
}

struct Entry {
    name: AttemptName,
    job: Arc<Job>,
    accepted: Instant,
    /// The last submission or probe of this attempt: a queued attempt
    /// nobody asks about for `QUEUE_PROBE_TIMEOUT` is cancelled.
    seen: Instant,
    phase: Phase,
    /// The input's size at admission.
    input_bytes: u64,
    /// From start to end, once ended after running.
    ran: Option<Duration>,
    bytes_read: u64,
    bytes_written: u64,
    /// Its end was answered to a probe, or its hoster cancelled it after
    /// the end: a drain need not wait for anyone to collect it.
    collected: bool,
}

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
    /// What HTTP storage attempts fetched and pushed, summed.
    remote_counts: RemoteCounts,
    /// Cancels of attempts not (yet) submitted.
    tombstones: Tombstones,
}

impl State {
    fn new(tombstones: Tombstones) -> Self {
        State {
            attempts: HashMap::new(),
            queue: VecDeque::new(),
            running: 0,
            running_high_water: 0,
            stopping: false,
            counters: Counters::default(),
            child_plugin_counts: PluginCounts::default(),
            remote_counts: RemoteCounts::default(),
            tombstones,
        }
    }
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
    /// Places in the queue and admission permits.
    gate: AdmissionGate,
    /// Whether the worker drains (`/stat`, `/metrics`, admission).
    drain: Arc<Drain>,
}

impl Supervisor {
    /// With MULTI_PROCESS, starts the spawner thread for children running
    /// `worker_exe`, each in a cgroup below `cgroups` when set.
    pub fn new(
        config: Arc<WorkerConfig>,
        root: Arc<WorkerRoot>,
        identity: String,
        worker_exe: &Path,
        catalog: Arc<Catalog>,
        cgroups: Option<Arc<CgroupHome>>,
        drain: Arc<Drain>,
    ) -> std::io::Result<Arc<Self>> {
        let spawner = if config.multi_process {
            Some(Spawner::start(
                worker_exe.to_owned(),
                config.preloaded.clone(),
                config.child_limits.clone(),
                cgroups,
                config.child_spares,
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
            )?),
            _ => None,
        };
        let registry = prometheus::Registry::new();
        let metrics = AttemptMetrics::new(&registry).map_err(std::io::Error::other)?;
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(std::io::Error::other)?;
        let gate = AdmissionGate::new(
            config.max_parallel_compactions + config.max_waiting_compactions,
            config.max_admissions,
        );
        let tombstones = Tombstones::new(tombstones::CAPACITY, config.result_retention);
        let sup = Arc::new(Supervisor {
            gate,
            drain,
            root,
            mounts,
            zip,
            config,
            identity,
            state: Mutex::new(State::new(tombstones)),
            tasks: TaskTracker::new(),
            spawner,
            catalog,
            registry,
            metrics,
            observer: OnceLock::new(),
            registration: OnceLock::new(),
            ended: tokio::sync::watch::channel(0).0,
        });
        sup.register_collectors().map_err(std::io::Error::other)?;
        Ok(sup)
    }

    /// The queue gauges, and the zipserver's and the mounts' collectors
    /// when there are any. Weak: the registry lives in the supervisor it
    /// reads.
    fn register_collectors(self: &Arc<Self>) -> Result<(), prometheus::Error> {
        let gauges = queue::collector(Arc::downgrade(self))?;
        self.registry.register(Box::new(gauges))?;
        let remote = crate::worker::metrics::remote::collector(Arc::downgrade(self))?;
        self.registry.register(Box::new(remote))?;
        if self.zip.is_some() {
            let zip = crate::worker::metrics::zip::collector(Arc::downgrade(self))?;
            self.registry.register(Box::new(zip))?;
        }
        if let Some(table) = &self.mounts {
            let mounts = crate::worker::metrics::mounts::collector(Arc::downgrade(table))?;
            self.registry.register(Box::new(mounts))?;
        }
        Ok(())
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
            draining: self.drain.is_draining(),
            admitting: self.gate.admitting(),
            max_admissions: self.gate.max_admissions(),
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

    /// A place in the queue and an admission permit for a submission, taken
    /// before its job is read; 412 while stopping, 503 when the queue or
    /// the admissions are full.
    pub fn enter_admission(&self) -> Result<(Reservation, AdmissionPermit), SubmitError> {
        let mut st = self.lock();
        if st.stopping {
            st.counters.reject(RejectReason::Refused);
            self.metrics.rejected(RejectReason::Refused);
            return Err(SubmitError::Stopping);
        }
        let closed = match self.gate.enter() {
            Ok(entered) => return Ok(entered),
            Err(closed) => closed,
        };
        let (reason, err) = match closed {
            Closed::QueueFull => {
                let (running, waiting) = (st.running, st.queue.len());
                let err = SubmitError::Busy {
                    running,
                    waiting,
                    admitting: self.gate.places_taken().saturating_sub(running + waiting),
                    parallel: self.config.max_parallel_compactions,
                    queue: self.config.max_waiting_compactions,
                };
                (RejectReason::Busy, err)
            }
            Closed::AdmissionsFull => {
                let err = SubmitError::AdmissionsFull {
                    max: self.gate.max_admissions(),
                };
                (RejectReason::AdmissionsFull, err)
            }
        };
        st.counters.reject(reason);
        self.metrics.rejected(reason);
        Err(err)
    }

    /// Queues an admitted job in the place `place` reserved for it, or says
    /// why not (the place is then given back).
    pub fn submit(
        self: &Arc<Self>,
        place: Reservation,
        job: Job,
        name: AttemptName,
        prepared: PreparedJob,
    ) -> Result<(), SubmitError> {
        let mut st = self.lock();
        let key = job.key();
        if let Err(e) = refusal(&mut st, &key, &name) {
            st.counters.reject(e.reason());
            self.metrics.rejected(e.reason());
            return Err(e);
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
                accepted: Instant::now(),
                seen: Instant::now(),
                phase: Phase::Queued {
                    place,
                    prepared: Box::new(prepared),
                },
                ran: None,
                bytes_read: 0,
                bytes_written: 0,
                collected: false,
            },
        );
        st.queue.push_back(key);
        self.dispatch(&mut st);
        self.tell(&st, None);
        Ok(())
    }

    /// Starts queued attempts while there are free slots, each on a
    /// tracked blocking task that owns its [`Attempt`].
    fn dispatch(self: &Arc<Self>, st: &mut State) {
        while st.running < self.config.max_parallel_compactions {
            let Some(key) = next_in_queue(st) else {
                break;
            };
            let Some(attempt) = self.start(st, key) else {
                continue;
            };
            let sup = self.clone();
            self.tasks.spawn_blocking(move || sup.run_attempt(attempt));
        }
    }

    /// Moves the queued attempt `key` to running: a slot is taken, and its
    /// place and prepared job go to the [`Attempt`] that is returned.
    fn start(self: &Arc<Self>, st: &mut State, key: AttemptKey) -> Option<Attempt> {
        let entry = st.attempts.get_mut(&key)?;
        let cancel = Arc::new(CancelFlag::new());
        let running = Phase::Running {
            started: Instant::now(),
            cancel: cancel.clone(),
            delivered: None,
        };
        let (place, prepared) = entry.phase.start(running)?;
        let waited = entry.accepted.elapsed();
        self.metrics.started(waited);
        let end = AttemptEnd::new(place, self.end_sink(&key));
        let work = AttemptWork {
            name: entry.name.clone(),
            job: entry.job.clone(),
            key,
            prepared,
            cancel,
            waited,
        };
        st.running += 1;
        st.running_high_water = st.running_high_water.max(st.running);
        let mut attempt = Attempt::new(work, end);
        if let Some(watchdog) = self.watch_in_process(&attempt) {
            attempt.watch(watchdog);
        }
        Some(attempt)
    }

    /// Where the end of a run of `key` goes: [`Supervisor::finish`].
    fn end_sink(self: &Arc<Self>, key: &AttemptKey) -> Box<dyn FnOnce(Ended) + Send> {
        let sup = Arc::downgrade(self);
        let key = key.clone();
        Box::new(move |ended| {
            if let Some(sup) = sup.upgrade() {
                sup.finish(&key, ended);
            }
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Records the end of the running attempt `key` (reported once by its
    /// [`AttemptEnd`]): frees its slot, counts it, and starts the next.
    fn finish(self: &Arc<Self>, key: &AttemptKey, ended: Ended) {
        let mut st = self.lock();
        let Some(entry) = st.attempts.get_mut(key) else {
            return;
        };
        let Phase::Running {
            started, delivered, ..
        } = &mut entry.phase
        else {
            tracing::error!(attempt = %entry.name, outcome = %ended.outcome, "the end of an attempt that is not running: dropped");
            return;
        };
        let ran = Some(started.elapsed());
        let announced = delivered.is_some();
        let ended = delivery::final_end(&entry.name, delivered.take(), ended);
        entry.ran = ran;
        entry.bytes_read = ended.bytes_read;
        entry.bytes_written = ended.bytes_written;
        let name = entry.name.clone();
        entry.phase = Phase::Finished {
            outcome: ended.outcome.clone(),
            result: ended.result,
            at: Instant::now(),
        };
        // Kept for probing without its compaction input.
        entry.job = Arc::new(finished_bound::slim(&entry.job));
        st.running -= 1;
        if !announced {
            // A delivered attempt was counted at its delivery.
            self.count_end(
                &mut st,
                &ended.outcome,
                ran,
                ended.bytes_read,
                ended.bytes_written,
            );
        }
        self.bound_finished(&mut st);
        self.dispatch(&mut st);
        if announced {
            // Its end was told at the delivery: only the load changed.
            self.ended.send_modify(|n| *n += 1);
            self.tell(&st, None);
        } else {
            self.tell(&st, Some(&name));
        }
    }

    /// Counts an attempt's end, once: in the counters and the metrics.
    fn count_end(
        &self,
        st: &mut State,
        outcome: &Outcome,
        ran: Option<Duration>,
        read: u64,
        written: u64,
    ) {
        self.metrics.ended(outcome, ran, read, written);
        match outcome {
            Outcome::Succeeded => {
                st.counters.succeeded += 1;
                st.counters.bytes_read += read;
                st.counters.bytes_written += written;
            }
            other => *st.counters.failed.entry(other.name()).or_default() += 1,
        }
    }

    pub fn probe(&self, key: &AttemptKey) -> Option<ProbeAnswer> {
        let mut st = self.lock();
        let entry = st.attempts.get_mut(key)?;
        entry.seen = Instant::now();
        entry.collected |= matches!(
            entry.phase,
            Phase::Finished { .. }
                | Phase::Running {
                    delivered: Some(_),
                    ..
                }
        );
        Some(match &entry.phase {
            Phase::Queued { .. } => ProbeAnswer {
                status: answers::QUEUED.into(),
                ..Default::default()
            },
            Phase::Running {
                delivered: Some(d), ..
            } => ProbeAnswer {
                status: answers::DONE.into(),
                result: d.result.clone(),
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
        let mut left = None;
        let cancelled = self.cancel_locked(key, &mut left);
        // A queued attempt's place, prepared job and mount lease are let go
        // of here, after the state lock.
        drop(left);
        cancelled
    }

    /// [`Supervisor::cancel`] under the state lock; what a queued attempt
    /// held goes into `left`.
    fn cancel_locked(&self, key: &AttemptKey, left: &mut Option<Phase>) -> bool {
        let mut st = self.lock();
        let st = &mut *st;
        let Some(entry) = st.attempts.get_mut(key) else {
            // Perhaps still being admitted: its submission will be refused.
            st.tombstones.record(key.clone());
            return false;
        };
        match &entry.phase {
            Phase::Queued { .. } => {
                st.queue.retain(|k| k != key);
                let ended = Phase::Finished {
                    outcome: Outcome::Cancelled,
                    result: None,
                    at: Instant::now(),
                };
                *left = Some(std::mem::replace(&mut entry.phase, ended));
                let name = entry.name.clone();
                entry.job = Arc::new(finished_bound::slim(&entry.job));
                self.count_end(st, &Outcome::Cancelled, None, 0, 0);
                self.bound_finished(st);
                self.tell(st, Some(&name));
                true
            }
            Phase::Running { cancel, .. } => {
                tracing::info!(attempt = %entry.name, "cancel requested");
                cancel.cancel();
                true
            }
            Phase::Finished { .. } => {
                // Its hoster gave up on it: nobody will collect it.
                entry.collected = true;
                false
            }
        }
    }

    /// The worker's root, checked and opened at start.
    pub fn root(&self) -> &Arc<WorkerRoot> {
        &self.root
    }

    pub fn is_stopping(&self) -> bool {
        self.lock().stopping
    }
}

/// Why the admitted job `key` named `name` cannot be queued, if it cannot.
fn refusal(st: &mut State, key: &AttemptKey, name: &AttemptName) -> Result<(), SubmitError> {
    if st.stopping {
        return Err(SubmitError::Stopping);
    }
    if st.attempts.contains_key(key) {
        return Err(SubmitError::Duplicate(name.clone()));
    }
    if st.tombstones.take(key) {
        return Err(SubmitError::CancelledEarly(name.clone()));
    }
    if let Some(other) = name_in_use(st, name) {
        return Err(SubmitError::NameInUse {
            name: name.clone(),
            other: other.dbname.clone(),
        });
    }
    Ok(())
}

/// The key of another attempt the worker still knows (queued, running, or
/// finished and answerable) that has `name`: two keys can share a name
/// (`/data/a_b` and `/data/a/b` are both `a_b`), and an attempt's name is
/// its directory, so the second is refused while the first is known.
fn name_in_use<'a>(st: &'a State, name: &AttemptName) -> Option<&'a AttemptKey> {
    st.attempts
        .iter()
        .find(|(_, e)| &e.name == name)
        .map(|(k, _)| k)
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
                priority(Waiting {
                    waited: now.saturating_duration_since(e.accepted),
                    input_bytes: e.input_bytes,
                    hint_us: e.job.estimate_time_us,
                    output_level: e.job.output_level,
                    attempt: e.job.attempt,
                })
            });
            (i, p)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)?;
    st.queue.remove(best)
}
