//! Running one attempt: its directory, its run in-process (under a
//! [`Watchdog`]) or in a supervised child, a retry after a stale file
//! handle, and its summary.

use super::*;

impl Supervisor {
    /// An in-process attempt's deadline (a child's is kept by its
    /// supervisor): cancelled at `ATTEMPT_TIMEOUT_*`, ended `timed_out`
    /// and its slot freed `CANCEL_GRACE` later if it has not returned.
    pub(super) fn watch_in_process(
        self: &Arc<Self>,
        key: &AttemptKey,
        name: &AttemptName,
        job: &Job,
        run: u64,
        cancel: &Arc<CancelFlag>,
    ) -> Option<Watchdog> {
        if self.spawner.is_some() {
            return None;
        }
        let sup = Arc::downgrade(self);
        let key = key.clone();
        let abandon = move || {
            if let Some(sup) = sup.upgrade() {
                sup.finish(&key, run, Outcome::TimedOut, None, 0, 0);
            }
        };
        let timeout = self.config.attempt_timeout(job.estimate_time_us);
        Watchdog::start(
            name.to_string(),
            cancel.clone(),
            timeout,
            self.config.cancel_grace,
            abandon,
        )
        .map_err(|e| tracing::error!(attempt = %name, error = %e, "no deadline for this attempt: failed to start its watchdog"))
        .ok()
    }

    /// Runs one attempt to its end: its span carries the attempt name to
    /// every event logged while it runs.
    #[tracing::instrument(name = "attempt", skip_all, fields(attempt = %name))]
    pub(super) fn run_attempt(
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
        let cgroup = spawned.cgroup.as_ref().map_or_else(
            || "none (resource limits)".to_owned(),
            |c| c.path().display().to_string(),
        );
        dir.log(&format!(
            "child pid={} spawned in {} us; timeout {:?}; cgroup {cgroup}",
            spawned.process.id(),
            spawned.latency.as_micros(),
            limits.timeout
        ));
        let log = |line: &str| dir.log(line);
        let r = supervise(spawned, cancel, limits, dir.path(), &marker, &log);
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
}
