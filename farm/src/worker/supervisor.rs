//! The supervisor: owns the state of every attempt.
//!
//! Admission: at most `MAX_PARALLEL_COMPACTIONS` attempts run at once, at
//! most `MAX_WAITING_COMPACTIONS` wait (the next to run is chosen by
//! [`priority`]), and beyond that a
//! submission is answered 503. A submission reserves its place before its
//! job is admitted ([`Supervisor::enter_admission`], see
//! [`crate::worker::admission_gate`]), so attempts being admitted count
//! too, and a full worker refuses before it reads anything. Each running attempt is a tracked blocking
//! task with its own cancel flag. A finished attempt stays answerable by
//! `/probe` for `RESULT_RETENTION`.
//!
//! Failure modes: a panic in an attempt is caught and classified
//! (`panicked`); an attempt that cannot be prepared is `setup_failed`; a
//! cancel sets RocksDB's canceled flag and the attempt ends `cancelled`; an
//! attempt past its deadline ends `timed_out` (a child is killed, an
//! in-process attempt abandoned, see [`crate::worker::deadline`]). Every
//! run has a number, and only its first end counts.
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
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::child::spawner::Spawner;
use crate::worker::child::spec::{self as child_spec, ChildSpec};
use crate::worker::child::supervise::{supervise, Limits};
use crate::worker::config::WorkerConfig;
use crate::worker::deadline::Watchdog;
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
use crate::worker::root_guard::WorkerRoot;
use crate::worker::runner::{self, AttemptDirs, PreparedJob, RunResult};
use crate::worker::stats::{Counters, RejectReason};
use crate::worker::summary::Summary;
use crate::worker::timings::{now_us, AttemptTimings, CHILD_TIMINGS};
use crate::worker::tombstones::{self, Tombstones};
use crate::worker::zip_link::{ZipLink, ZipLinkSnapshot};
use base64::Engine;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::task::TaskTracker;

mod lifecycle;
mod run;
mod snapshot;

pub use snapshot::{AttemptRow, PluginsSnapshot, StatSnapshot};

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Refused(String),
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
        /// This run's number: an end reported for another run (an
        /// abandoned thread returning late) is dropped.
        run: u64,
    },
    Finished {
        outcome: Outcome,
        result: Option<String>,
        at: Instant,
    },
}

struct Entry {
    name: AttemptName,
    /// Its place in the queue, until the attempt ends.
    place: Option<Reservation>,
    job: Arc<Job>,
    prepared: Option<PreparedJob>,
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
}

struct State {
    attempts: HashMap<AttemptKey, Entry>,
    queue: VecDeque<AttemptKey>,
    running: usize,
    /// The most attempts ever running at once.
    running_high_water: usize,
    stopping: bool,
    /// The number of the next run.
    next_run: u64,
    counters: Counters,
    /// What plugin code did in attempt children that have ended.
    child_plugin_counts: PluginCounts,
    /// Cancels of attempts not (yet) submitted.
    tombstones: Tombstones,
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
    ) -> std::io::Result<Arc<Self>> {
        let spawner = if config.multi_process {
            Some(Spawner::start(
                worker_exe.to_owned(),
                config.plugins.clone(),
                config.child_limits.clone(),
                cgroups,
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
            root,
            mounts,
            zip,
            config,
            identity,
            state: Mutex::new(State {
                attempts: HashMap::new(),
                queue: VecDeque::new(),
                running: 0,
                running_high_water: 0,
                stopping: false,
                next_run: 0,
                counters: Counters::default(),
                child_plugin_counts: PluginCounts::default(),
                tombstones,
            }),
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
            return Err(SubmitError::Refused("worker is stopping".into()));
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
        if st.tombstones.take(&key) {
            return refuse(
                &mut st,
                format!("attempt {name} was cancelled by its hoster before it was admitted"),
            );
        }
        if let Some(other) = name_in_use(&st, &name).cloned() {
            return refuse(
                &mut st,
                format!(
                    "attempt name {name} is in use by another job (dbname {:?}): two jobs whose \
                     dbnames differ only in '/' against '_' or a trailing '/' share one name; \
                     this one is compacted locally",
                    other.dbname
                ),
            );
        }
        tracing::info!(attempt = %name, "accepted");
        st.counters.accepted += 1;
        self.metrics.accepted();
        st.attempts.insert(
            key.clone(),
            Entry {
                name,
                place: Some(place),
                job: Arc::new(job),
                input_bytes: prepared.input_bytes,
                prepared: Some(prepared),
                accepted: Instant::now(),
                seen: Instant::now(),
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
            let run = st.next_run;
            st.next_run += 1;
            let Some(entry) = st.attempts.get_mut(&key) else {
                continue;
            };
            entry.phase = Phase::Running {
                started: Instant::now(),
                cancel: cancel.clone(),
                run,
            };
            st.running += 1;
            st.running_high_water = st.running_high_water.max(st.running);
            let name = entry.name.clone();
            let job = entry.job.clone();
            let watchdog = self.watch_in_process(&key, &name, &job, run, &cancel);
            let sup = self.clone();
            self.tasks.spawn_blocking(move || {
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    sup.run_attempt(&name, &job, &mut prepared, &cancel, waited)
                }));
                let timed_out = watchdog.as_ref().is_some_and(Watchdog::fired);
                drop(watchdog);
                let (outcome, result, read, written) = match ran {
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
                if timed_out {
                    sup.finish(&key, run, Outcome::TimedOut, None, read, written);
                } else {
                    sup.finish(&key, run, outcome, result, read, written);
                }
            });
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Ends run `run` of the attempt `key`, once: a second end of the
    /// same run (a thread abandoned at its deadline that returns late) is
    /// dropped.
    fn finish(
        self: &Arc<Self>,
        key: &AttemptKey,
        run: u64,
        outcome: Outcome,
        result: Option<String>,
        read: u64,
        written: u64,
    ) {
        let mut st = self.lock();
        let Some(entry) = st.attempts.get_mut(key) else {
            return;
        };
        let ran = match &entry.phase {
            Phase::Running {
                started, run: now, ..
            } if *now == run => Some(started.elapsed()),
            _ => {
                tracing::info!(attempt = %entry.name, outcome = %outcome, "dropped the late end of an attempt that was already ended");
                return;
            }
        };
        entry.ran = ran;
        entry.bytes_read = read;
        entry.bytes_written = written;
        entry.place = None;
        st.running -= 1;
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
            entry.job = Arc::new(finished_bound::slim(&entry.job));
            ended = Some(entry.name.clone());
        }
        self.bound_finished(&mut st);
        self.dispatch(&mut st);
        self.tell(&st, ended.as_ref());
    }

    pub fn probe(&self, key: &AttemptKey) -> Option<ProbeAnswer> {
        let mut st = self.lock();
        let entry = st.attempts.get_mut(key)?;
        entry.seen = Instant::now();
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
            // Perhaps still being admitted: its submission will be refused.
            st.tombstones.record(key.clone());
            return false;
        };
        match &entry.phase {
            Phase::Queued => {
                st.queue.retain(|k| k != key);
                entry.prepared = None;
                entry.place = None;
                entry.phase = Phase::Finished {
                    outcome: Outcome::Cancelled,
                    result: None,
                    at: Instant::now(),
                };
                entry.job = Arc::new(finished_bound::slim(&entry.job));
                *st.counters.failed.entry("cancelled").or_default() += 1;
                self.metrics.ended(&Outcome::Cancelled, None, 0, 0);
                let name = entry.name.clone();
                self.bound_finished(st);
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

    /// The worker's root, checked and opened at start.
    pub fn root(&self) -> &Arc<WorkerRoot> {
        &self.root
    }

    pub fn is_stopping(&self) -> bool {
        self.lock().stopping
    }
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
