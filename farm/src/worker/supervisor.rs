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
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::child::spawner::Spawner;
use crate::worker::child::spec::{self as child_spec, ChildSpec};
use crate::worker::child::supervise::{supervise, Limits};
use crate::worker::config::WorkerConfig;
use crate::worker::outcome::Outcome;
use crate::worker::plugin_catalog::Catalog;
use crate::worker::queue_order::priority;
use crate::worker::runner::{self, PreparedJob, RunResult};
use crate::worker::stats::{Counters, RejectReason};
use crate::worker::zip_link::{ZipLink, ZipLinkSnapshot};
use base64::Engine;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
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
    pub outcome: Option<String>,
    pub elapsed_ms: u64,
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
    identity: String,
    state: Mutex<State>,
    tasks: TaskTracker,
    /// With MULTI_PROCESS, the thread that forks attempt children.
    spawner: Option<Spawner>,
    catalog: Arc<Catalog>,
    /// With MULTI_PROCESS and a zipserver configured.
    zip: Option<ZipLink>,
}

impl Supervisor {
    /// With MULTI_PROCESS, starts the spawner thread for children running
    /// `worker_exe`.
    pub fn new(
        config: Arc<WorkerConfig>,
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
        Ok(Arc::new(Supervisor {
            config,
            identity,
            state: Mutex::new(State::default()),
            tasks: TaskTracker::new(),
            spawner,
            catalog,
            zip,
        }))
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than losing the worker: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count_reject(&self, reason: RejectReason) {
        self.lock().counters.reject(reason);
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
            return Err(SubmitError::Busy {
                running: st.running,
                waiting: st.queue.len(),
                parallel,
                queue,
            });
        }
        tracing::info!(attempt = %name, "accepted");
        st.counters.accepted += 1;
        st.attempts.insert(
            key.clone(),
            Entry {
                name,
                job: Arc::new(job),
                prepared: Some(prepared),
                accepted: Instant::now(),
                phase: Phase::Queued,
            },
        );
        st.queue.push_back(key);
        self.dispatch(&mut st);
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
                    sup.run_attempt(&name, &job, &mut prepared, &cancel)
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

    fn run_attempt(
        &self,
        name: &AttemptName,
        job: &Job,
        prepared: &mut PreparedJob,
        cancel: &CancelFlag,
    ) -> (Outcome, Option<String>, u64, u64) {
        let dir = match AttemptDir::create(&self.config.worker_db_root, name, job) {
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
            prepared.db_path.display(),
            prepared.output_dir.display(),
            prepared.cf_name,
            prepared.options_file.display()
        ));
        let started = Instant::now();
        let r = match &self.spawner {
            None => runner::run(prepared, &dir, &self.identity, cancel),
            Some(spawner) => self.run_child(spawner, name, job, prepared, &dir, cancel),
        };
        dir.log(&format!(
            "end outcome={} elapsed_ms={}",
            r.outcome,
            started.elapsed().as_millis()
        ));
        tracing::info!(attempt = %name, outcome = %r.outcome, elapsed_ms = started.elapsed().as_millis() as u64, "finished");
        if self.config.del_worker_temp_db {
            if let Err(e) = dir.remove(&self.config.worker_db_root) {
                tracing::warn!(attempt = %name, error = %e, "failed to remove attempt dir");
            }
        }
        let result = r
            .result
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b));
        (r.outcome, result, r.bytes_read, r.bytes_written)
    }

    /// MULTI_PROCESS: the attempt in a child, supervised.
    fn run_child(
        &self,
        spawner: &Spawner,
        name: &AttemptName,
        job: &Job,
        prepared: &PreparedJob,
        dir: &AttemptDir,
        cancel: &CancelFlag,
    ) -> RunResult {
        let spec = ChildSpec {
            db_path: prepared.db_path.clone(),
            output_dir: prepared.output_dir.clone(),
            options_file: prepared.options_file.clone(),
            cf_name: prepared.cf_name.clone(),
            identity: self.identity.clone(),
            plugins: self.config.plugins.clone(),
            zip: self.zip.as_ref().map(ZipLink::child_spec),
        };
        let written = serde_json::to_vec_pretty(&spec)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(dir.path().join(child_spec::CHILD_SPEC), json));
        if let Err(e) = written {
            return RunResult::failed(Outcome::SetupFailed(format!(
                "failed to write child spec: {e}"
            )));
        }
        let spawned = match spawner.spawn(dir.path(), name.as_str()) {
            Ok(s) => s,
            Err(e) => return RunResult::failed(Outcome::SpawnFailed(e.to_string())),
        };
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
        let r = supervise(spawned.child, cancel, limits, dir.path(), name.as_str());
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
        r
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
        match &outcome {
            Outcome::Succeeded => {
                st.counters.succeeded += 1;
                st.counters.bytes_read += read;
                st.counters.bytes_written += written;
            }
            other => *st.counters.failed.entry(other.name()).or_default() += 1,
        }
        if let Some(entry) = st.attempts.get_mut(key) {
            entry.phase = Phase::Finished {
                outcome,
                result,
                at: Instant::now(),
            };
        }
        self.dispatch(&mut st);
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
                    input_bytes: 0,
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
                let (state, outcome, since) = match &e.phase {
                    Phase::Queued => ("queued", None, e.accepted),
                    Phase::Running { started, .. } => ("running", None, *started),
                    Phase::Finished { outcome, at, .. } => {
                        ("finished", Some(outcome.to_string()), *at)
                    }
                };
                AttemptRow {
                    name: e.name.to_string(),
                    key: e.job.key(),
                    state,
                    outcome,
                    elapsed_ms: now.saturating_duration_since(since).as_millis() as u64,
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
            attempts,
            zipserver: self.zip.as_ref().map(ZipLink::snapshot),
        }
    }

    /// Directories of attempts that are queued or running.
    pub fn active_dirs(&self) -> HashSet<PathBuf> {
        let st = self.lock();
        st.attempts
            .values()
            .filter(|e| !matches!(e.phase, Phase::Finished { .. }))
            .map(|e| self.config.worker_db_root.join(e.name.as_str()))
            .collect()
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
