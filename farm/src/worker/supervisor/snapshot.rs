//! What `/stat` shows of the supervisor: the attempts, the load, the
//! counters, the plugins, the mounts and the zipserver link.

use super::*;

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
    /// A drain began: new jobs are answered 503 `stopping`.
    pub draining: bool,
    /// What began the drain, and when; absent before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<crate::worker::drain::DrainSnapshot>,
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
    /// What HTTP storage attempts fetched from hosters and pushed to them,
    /// summed over the attempts that ended (`worker::remote::counts`).
    pub remote: RemoteCounts,
}

/// The plugin part of `/stat`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginsSnapshot {
    pub classes: Vec<PluginClass>,
    /// Merges resolved, entries filtered, dropped, changed by plugin code on
    /// this worker (in-process and in children).
    pub counts: PluginCounts,
}

impl Supervisor {
    pub fn stat(&self) -> StatSnapshot {
        // Before the state lock, never under it: the mount table has a lock
        // of its own.
        let mounts = self.mounts.as_ref().map(|m| m.snapshot());
        let st = self.lock();
        let now = Instant::now();
        let mut attempts: Vec<AttemptRow> = st
            .attempts
            .values()
            .map(|e| {
                let (state, outcome, since, run) = match &e.phase {
                    Phase::Queued { .. } => ("queued", None, e.accepted, Duration::ZERO),
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
            draining: self.drain.is_draining(),
            drain: self.drain.snapshot(),
            counters: st.counters.clone(),
            plugins: PluginsSnapshot {
                classes: self.catalog.classes(),
                counts: {
                    let mut c = plugins::counts();
                    c.add(&st.child_plugin_counts);
                    c
                },
            },
            mounts,
            etcd: self.registration.get().map(|r| r.snapshot()),
            attempts,
            zipserver: self.zip_snapshot(),
            remote: st.remote_counts,
        }
    }

    /// What HTTP storage attempts fetched and pushed so far.
    pub fn remote_counts(&self) -> RemoteCounts {
        self.lock().remote_counts
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
}
