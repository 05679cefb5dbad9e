//! Running one attempt on its blocking task: its directory, its run
//! in-process (under a [`Watchdog`]) or in a supervised child (its result
//! answered from its delivery on, see `delivery.rs`), a retry after a stale
//! file handle, its summary, its open retries counted, and its end through
//! [`Attempt::finish`].

use super::*;
use crate::rocks::open_race::OpenRace;
use crate::worker::remote::note_manifest;
use crate::worker::timings::OpenRetry;

impl Supervisor {
    /// An in-process attempt's deadline (a child's is kept by its
    /// supervisor): cancelled at `ATTEMPT_TIMEOUT_*`, ended `timed_out`
    /// through its [`AttemptEnd`] `CANCEL_GRACE` later if it has not
    /// returned.
    pub(super) fn watch_in_process(&self, attempt: &Attempt) -> Option<Watchdog> {
        if self.spawner.is_some() {
            return None;
        }
        let end = attempt.end().clone();
        let abandon = move || {
            end.report(Ended::failed(Outcome::TimedOut));
        };
        let w = &attempt.work;
        let timeout = self.config.attempt_timeout(w.job.estimate_time_us);
        Watchdog::start(
            w.name.to_string(),
            w.cancel.clone(),
            timeout,
            self.config.cancel_grace,
            abandon,
        )
        .map_err(|e| tracing::error!(attempt = %w.name, error = %e, "no deadline for this attempt: failed to start its watchdog"))
        .ok()
    }

    /// Runs `attempt` and ends it: a panic is caught and ends it
    /// `panicked`.
    pub(super) fn run_attempt(&self, mut attempt: Attempt) {
        let ran = catch_unwind(AssertUnwindSafe(|| self.run_to_end(&mut attempt)));
        let ended =
            ran.unwrap_or_else(|panic| Ended::failed(Outcome::Panicked(panic_text(&*panic))));
        let (name, outcome) = (attempt.work.name.clone(), ended.outcome.clone());
        if !attempt.finish(ended) {
            tracing::info!(attempt = %name, outcome = %outcome, "dropped the late end of an attempt that was already ended");
        }
    }

    /// Runs one attempt to its end: its span carries the attempt name to
    /// every event logged while it runs.
    #[tracing::instrument(name = "attempt", skip_all, fields(attempt = %attempt.work.name))]
    fn run_to_end(&self, attempt: &mut Attempt) -> Ended {
        attempt.work.prepared.timings.started_us = Some(now_us());
        let w = &attempt.work;
        let keep = !self.config.del_worker_temp_db;
        let dir = match OwnedDir::create(&self.root, &w.name, &w.job, &self.identity, !keep) {
            Ok(d) => d,
            Err(e) => {
                let why = format!("failed to create attempt dir: {e}");
                return Ended::failed(Outcome::SetupFailed(why));
            }
        };
        let (work, dir) = attempt.hold_dir(dir);
        self.log_start(work, dir);
        let started = Instant::now();
        let started_at = SystemTime::now();
        let (r, spawn_latency) = self.run_with_retry(work, dir);
        self.deliver_in_process(work, &r);
        if let Some(remote) = &work.prepared.remote {
            // What admission fetched (all of it for an in-process
            // attempt; a child's own fetches are collected from its file).
            if self.spawner.is_none() {
                if let Some(line) = note_manifest(&remote.registration, &remote.source) {
                    dir.log(&line);
                }
            }
            let mut fetched = remote.source.counts();
            if self.spawner.is_some() {
                fetched.jobs = 0;
            }
            self.lock().remote_counts.add(&fetched);
        }
        let ran = started.elapsed();
        self.log_end(work, dir, &r, ran);
        self.count_open_races(&work.prepared.timings.open_retries, &r.outcome);
        let summary = Summary {
            name: &work.name,
            identity: &self.identity,
            job: &work.job,
            inputs: &work.prepared.input_files,
            outcome: &r.outcome,
            result: r.result.as_deref(),
            bytes_read: r.bytes_read,
            bytes_written: r.bytes_written,
            waited: work.waited,
            started_at,
            ran,
            spawn_latency,
            timings: &work.prepared.timings,
        };
        if let Err(e) = summary.write(dir.path()) {
            tracing::warn!(error = %e, "failed to write summary.html");
        }
        Ended::of_run(&r)
    }

    /// An in-process attempt's result is in place once it returns: `/probe`
    /// answers it from here on, before its last lines, its summary and its
    /// directory's removal (a child's is answered from its delivery, see
    /// `delivery.rs`).
    fn deliver_in_process(&self, work: &mut AttemptWork, r: &RunResult) {
        if self.spawner.is_some() || r.outcome != Outcome::Succeeded {
            return;
        }
        if self.deliver_early(&work.key, Ended::of_run(r)) {
            work.prepared.timings.delivered_us = Some(now_us());
        }
    }

    fn log_start(&self, work: &AttemptWork, dir: &AttemptDir) {
        let p = &work.prepared;
        dir.log(&format!(
            "attempt {} running on {}",
            work.name, self.identity
        ));
        dir.log(&format!(
            "start db={} output_dir={} cf={} options={}",
            p.db.path().display(),
            p.output.path().display(),
            p.cf_name,
            p.options_file
        ));
    }

    /// The end's timings, and its lines in `LOG` and the worker's log.
    fn log_end(&self, work: &mut AttemptWork, dir: &AttemptDir, r: &RunResult, ran: Duration) {
        let timings = &mut work.prepared.timings;
        timings.ended_us = Some(now_us());
        timings.compaction_us = r
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
            serde_json::to_string(&timings).unwrap_or_default(),
            timings.describe()
        ));
        tracing::info!(outcome = %r.outcome, elapsed_ms = ran.as_millis() as u64, "finished");
    }

    /// Counts the secondary opens an attempt ran again after losing a
    /// race with the primary ([`crate::worker::open_retry`]), and whether
    /// it still ended on a lost race.
    fn count_open_races(&self, retries: &[OpenRetry], outcome: &Outcome) {
        let retried: Vec<OpenRace> = retries
            .iter()
            .filter_map(|r| OpenRace::from_name(&r.race))
            .collect();
        let unresolved =
            matches!(outcome, Outcome::CompactionFailed(e) if OpenRace::classify(e).is_some());
        if retried.is_empty() && !unresolved {
            return;
        }
        self.metrics.open_races(&retried, unresolved);
        self.lock().counters.open_races(&retried, unresolved);
    }

    /// Creates the output directory and runs the attempt; after a stale
    /// file handle on a dynamic mount, remounts once and runs once more.
    fn run_with_retry(
        &self,
        work: &mut AttemptWork,
        dir: &AttemptDir,
    ) -> (RunResult, Option<Duration>) {
        let dirs = match AttemptDirs::create(&work.prepared) {
            Ok(d) => d,
            Err(e) => return (RunResult::failed(Outcome::SetupFailed(e.to_string())), None),
        };
        if let (Some(table), Some(lease)) = (&self.mounts, &work.prepared.mount) {
            table.observe(lease);
        }
        let first = self.run_once(work, &dirs, dir);
        let stale = first.0.outcome.error().is_some_and(|e| is_stale_handle(&e));
        let (true, Some(table), Some(lease)) = (stale, &self.mounts, &work.prepared.mount) else {
            return first;
        };
        dir.log(&format!(
            "stale file handle ({}): remounting instance {} and retrying once",
            first.0.outcome,
            lease.instance()
        ));
        tracing::warn!(outcome = %first.0.outcome, "stale file handle: remounting and retrying");
        drop(dirs);
        let again = table
            .remount(lease)
            .map_err(RunError::Remount)
            .and_then(|()| AttemptDirs::reopen(&work.prepared));
        match again {
            Ok(dirs) => self.run_once(work, &dirs, dir),
            Err(e) => (RunResult::failed(Outcome::SetupFailed(e.to_string())), None),
        }
    }

    /// One run, in-process or in a child.
    fn run_once(
        &self,
        work: &mut AttemptWork,
        dirs: &AttemptDirs,
        dir: &AttemptDir,
    ) -> (RunResult, Option<Duration>) {
        match &self.spawner {
            None => (runner::run(work, dirs, dir, &self.identity), None),
            Some(spawner) => self.run_child(spawner, work, dir),
        }
    }

    /// MULTI_PROCESS: the attempt in a child, supervised. Also says how
    /// long starting the child took.
    fn run_child(
        &self,
        spawner: &Spawner,
        work: &mut AttemptWork,
        dir: &AttemptDir,
    ) -> (RunResult, Option<Duration>) {
        if let Err(e) = self.write_child_spec(work, dir) {
            let failed = Outcome::SetupFailed(format!("failed to write child spec: {e}"));
            return (RunResult::failed(failed), None);
        }
        // Unique on this host: two workers may run attempts of one name.
        let marker = child_spec::attempt_marker(work.name.as_str());
        let spawned = match spawner.spawn(dir.path(), &marker) {
            Ok(s) => s,
            Err(e) => return (RunResult::failed(Outcome::SpawnFailed(e.to_string())), None),
        };
        work.prepared.timings.spawned_us = Some(now_us());
        self.metrics.child_spawned(spawned.latency);
        let latency = spawned.latency;
        let limits = Limits {
            timeout: self.config.attempt_timeout(work.job.estimate_time_us),
            grace: self.config.cancel_grace,
        };
        let cgroup = spawned.cgroup.as_ref().map_or_else(
            || "none (resource limits)".to_owned(),
            |c| c.path().display().to_string(),
        );
        let spare = spawned.spare_for.map_or_else(String::new, |waited| {
            format!(" (a spare, started {} ms before)", waited.as_millis())
        });
        dir.log(&format!(
            "child pid={} spawned in {} us{spare}; timeout {:?}; cgroup {cgroup}",
            spawned.process.id(),
            spawned.latency.as_micros(),
            limits.timeout
        ));
        let log = |line: &str| dir.log(line);
        let delivered_us = std::cell::Cell::new(None);
        let delivered = || {
            let early = delivery::delivered_end(dir.path());
            if early.is_some_and(|e| self.deliver_early(&work.key, e)) {
                delivered_us.set(Some(now_us()));
                dir.log("result delivered; the child is exiting");
            }
        };
        let (r, reaped_us) = supervise(spawned, &work.cancel, limits, dir.path(), &log, &delivered);
        work.prepared.timings.delivered_us = delivered_us.get();
        work.prepared.timings.reaped_us = Some(reaped_us);
        self.collect_child_files(work, dir);
        (r, Some(latency))
    }

    /// `child.json`: what the child needs to run the attempt.
    fn write_child_spec(&self, work: &AttemptWork, dir: &AttemptDir) -> std::io::Result<()> {
        let p = &work.prepared;
        let spec = ChildSpec {
            key: work.key.clone(),
            db: p.db.clone(),
            output: p.output.clone(),
            options_file: p.options_file.clone(),
            cf_name: p.cf_name.clone(),
            identity: self.identity.clone(),
            plugins: self.config.plugins.clone(),
            zip: self.zip.as_ref().map(|z| z.child_spec(work.name.as_str())),
            remote: p.remote.as_ref().map(|r| ChildRemote {
                storage: r.storage.clone(),
                inputs: r.inputs.clone(),
                hoster_output: work.job.output_dir.clone(),
            }),
        };
        let json = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other)?;
        std::fs::write(dir.path().join(child_spec::CHILD_SPEC), json)
    }

    /// What an ended child left beside its result: its timings, its plugin
    /// counts, its zipserver counts.
    fn collect_child_files(&self, work: &mut AttemptWork, dir: &AttemptDir) {
        if let Ok(bytes) = std::fs::read(dir.path().join(CHILD_TIMINGS)) {
            if let Ok(child) = serde_json::from_slice::<AttemptTimings>(&bytes) {
                work.prepared.timings.merge(&child);
            }
        }
        if let Ok(bytes) = std::fs::read(dir.path().join(child_spec::PLUGIN_COUNTS)) {
            if let Ok(counts) = serde_json::from_slice::<PluginCounts>(&bytes) {
                self.lock().child_plugin_counts.add(&counts);
            }
        }
        if let Ok(bytes) = std::fs::read(dir.path().join(child_spec::REMOTE_COUNTS)) {
            if let Ok(counts) = serde_json::from_slice::<RemoteCounts>(&bytes) {
                dir.log(&counts.describe());
                self.lock().remote_counts.add(&counts);
            }
        }
        if let Some(c) = self.zip.as_ref().and_then(|z| z.collect(dir.path())) {
            dir.log(&format!(
                "zip blocks_seen={} remote_blocks={} remote_bytes_in={} remote_bytes_out={} fallback_blocks={}",
                c.blocks_seen, c.remote_blocks, c.remote_bytes_in, c.remote_bytes_out, c.fallback_blocks
            ));
        }
    }
}

/// The message a caught panic carried.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
