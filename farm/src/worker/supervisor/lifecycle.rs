//! The supervisor over time: the sweep of finished attempts, tombstones
//! and queued attempts nobody probes, and shutdown.

use super::*;

/// Beyond `CANCEL_GRACE`, how long shutdown waits for cancelled attempts.
const FINAL_WAIT_MARGIN: Duration = Duration::from_secs(5);
/// The most a stopping worker waits for its spare children to end (each
/// has 2 s to exit on the end of its input, then is killed).
const SPARES_END_WAIT: Duration = Duration::from_secs(10);

impl Supervisor {
    /// Forgets finished attempts older than `RESULT_RETENTION`.
    pub fn sweep(&self) {
        let retention = self.config.result_retention;
        let unprobed: Vec<AttemptKey> = {
            let mut st = self.lock();
            st.attempts.retain(|_, e| match &e.phase {
                Phase::Finished { at, .. } => at.elapsed() < retention,
                _ => true,
            });
            self.bound_finished(&mut st);
            st.tombstones.prune();
            let limit = self.config.queue_probe_timeout;
            st.attempts
                .iter()
                .filter(|(_, e)| {
                    matches!(e.phase, Phase::Queued { .. }) && e.seen.elapsed() > limit
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for key in &unprobed {
            tracing::warn!(
                dbname = %key.dbname,
                job_id = key.job_id,
                attempt = key.attempt,
                "queued attempt not probed for QUEUE_PROBE_TIMEOUT={:?}: its hoster gave up on it; cancelled",
                self.config.queue_probe_timeout
            );
            self.cancel(key);
        }
    }

    /// Forgets the oldest finished attempts beyond the bounds of
    /// [`finished_bound`], and shows what is kept in `/metrics`.
    pub(super) fn bound_finished(&self, st: &mut State) {
        let finished: Vec<_> = st
            .attempts
            .iter()
            .filter_map(|(k, e)| match &e.phase {
                Phase::Finished { at, result, .. } => Some(finished_bound::Finished {
                    key: k.clone(),
                    at: *at,
                    bytes: finished_bound::retained_bytes(&e.job, result.as_deref()),
                }),
                _ => None,
            })
            .collect();
        let (evict, kept, kept_bytes) = finished_bound::to_evict(
            finished,
            finished_bound::MAX_FINISHED,
            finished_bound::MAX_FINISHED_BYTES,
        );
        for key in &evict {
            st.attempts.remove(key);
        }
        if !evict.is_empty() {
            tracing::info!(
                evicted = evict.len(),
                kept,
                kept_bytes,
                "forgot the oldest finished attempts before RESULT_RETENTION: too many kept"
            );
        }
        self.metrics.finished_bounded(kept, kept_bytes, evict.len());
    }

    /// Stops admitting (new jobs get 412, `/health` 412), cancels queued
    /// attempts, lets running ones finish until `SHUTDOWN_GRACE` has passed,
    /// then cancels them, and waits until every attempt's task has ended
    /// (at most `CANCEL_GRACE` and a margin more).
    pub async fn shutdown(&self) {
        self.shutdown_within(self.config.shutdown_grace).await
    }

    /// [`Supervisor::shutdown`] with `grace` in place of `SHUTDOWN_GRACE`
    /// (a drain that spent its grace already passes what is left, or zero).
    pub async fn shutdown_within(&self, grace: Duration) {
        let queued: Vec<AttemptKey> = {
            let mut st = self.lock();
            st.stopping = true;
            st.queue.iter().cloned().collect()
        };
        for key in &queued {
            self.cancel(key);
        }
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
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
            // A child is killed within CANCEL_GRACE; an in-process attempt
            // whose code hangs is abandoned at its deadline: wait a bounded
            // time, never for ever.
            let bound = self.config.cancel_grace + FINAL_WAIT_MARGIN;
            if tokio::time::timeout(bound, self.tasks.wait())
                .await
                .is_err()
            {
                tracing::error!(
                    waited_ms = bound.as_millis() as u64,
                    "attempt threads still running after the final wait: stopping without them"
                );
            }
        }
        // No attempt will take a spare child: end them.
        if let Some(done) = self.spawner.as_ref().map(|s| s.end_spares()) {
            let _ = tokio::task::spawn_blocking(move || done.recv_timeout(SPARES_END_WAIT)).await;
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
