//! `wait`: probing a pending attempt until it ends, woken by etcd's
//! "done" events when they arrive, with a result on disk as the fallback
//! when its worker is gone.

use super::*;

/// What one probe decided.
enum Step {
    /// Still queued or running (or a transient failure): probe again.
    Again,
    /// Done: install this result.
    Install(Vec<u8>),
    /// Ended without a result: compact locally (cancelling the attempt on
    /// its worker when `true`).
    Abandon(FallbackReason, String, bool),
}

/// The state of one wait between probes.
struct Waiting {
    deadline: Instant,
    pause: Duration,
    /// Transient probe failures in a row.
    transient: u32,
    /// The last pause ended with etcd's "done" event.
    woken: bool,
}

impl FarmService {
    pub(super) fn wait_job(&self, id: &str) -> WaitAnswer {
        let Some(p) = lock(&self.pending).remove(id) else {
            return self.abandon_unknown(id);
        };
        // While etcd's events arrive, the first probe waits for one:
        // probing is the fallback.
        let mut w = Waiting {
            deadline: p.submitted + p.wait_limit,
            pause: Duration::from_millis(5),
            transient: 0,
            woken: self.watching_completions()
                && self
                    .completions
                    .wait(&p.name, PROBE_PAUSE_MAX_WATCHED.min(p.wait_limit)),
        };
        loop {
            if let Some((reason, why)) = self.given_up(&p, &w) {
                return self.abandon(p, reason, &why, true);
            }
            // Without etcd's events, the worker holds the probe until the
            // attempt ends (or `probe_wait` passes).
            let held = if self.watching_completions() {
                Duration::ZERO
            } else {
                self.config
                    .probe_wait
                    .min(w.deadline.saturating_duration_since(Instant::now()))
            };
            let probe_started = Instant::now();
            match self.probe_once(&p, &mut w, held) {
                Step::Again => {}
                Step::Install(result) => return self.install(p, &result),
                Step::Abandon(reason, why, cancel) => return self.abandon(p, reason, &why, cancel),
            }
            self.pause(&p, &mut w, held, probe_started);
        }
    }

    /// Why the wait ends before the next probe: RocksDB cancelled awaiting
    /// jobs, or the wait limit passed.
    fn given_up(&self, p: &RemoteAttempt, w: &Waiting) -> Option<(FallbackReason, String)> {
        if self.generation.load(Ordering::Acquire) != p.generation {
            let why = "RocksDB cancelled awaiting jobs".to_owned();
            return Some((FallbackReason::Cancelled, why));
        }
        if Instant::now() >= w.deadline {
            let why = format!(
                "no result after {:?} (timeout_multiplier x estimate, or overall_timeout)",
                p.wait_limit
            );
            return Some((FallbackReason::Timeout, why));
        }
        None
    }

    /// One probe of `p`'s worker, held up to `held`.
    fn probe_once(&self, p: &RemoteAttempt, w: &mut Waiting, held: Duration) -> Step {
        self.stats.probed();
        let a = match self.client.probe(&p.worker, &p.key, held) {
            Ok(a) => a,
            Err(e)
                if e.reason == FallbackReason::Timeout
                    && w.transient + 1 < self.config.http_max_retry =>
            {
                w.transient += 1;
                return Step::Again;
            }
            Err(e) => return self.unreachable(p, e),
        };
        match a.status.as_str() {
            answers::QUEUED | answers::RUNNING => {
                w.transient = 0;
                Step::Again
            }
            answers::DONE => match a
                .result
                .as_deref()
                .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
            {
                Some(result) => {
                    self.stats.done_seen(w.woken);
                    Step::Install(result)
                }
                None => {
                    let why = "done without a base64 result".to_owned();
                    Step::Abandon(FallbackReason::Protocol, why, false)
                }
            },
            answers::FAILED => {
                let why = a.error.unwrap_or_default();
                Step::Abandon(FallbackReason::RemoteFailed, why, false)
            }
            other => {
                let why = format!("unknown probe status {other:?}");
                Step::Abandon(FallbackReason::Protocol, why, true)
            }
        }
    }

    /// The worker did not answer: its result on disk, if it left one for
    /// this attempt (one that died right after finishing still delivers);
    /// otherwise the worker backs off and the attempt is abandoned.
    fn unreachable(&self, p: &RemoteAttempt, e: RequestError) -> Step {
        if let Some(result) = output_dir::finished_on_disk(&p.output_dir, &p.key) {
            tracing::info!(job = p.id(), error = %e, "worker unreachable; collecting its result from the output directory");
            return Step::Install(result);
        }
        self.workers.failed(&p.worker);
        let cancel = e.reason != FallbackReason::NotFound;
        Step::Abandon(e.reason, e.to_string(), cancel)
    }

    /// Until the next probe: etcd's event, at once after a held probe, or
    /// a pause that doubles up to [`PROBE_PAUSE_MAX`].
    fn pause(&self, p: &RemoteAttempt, w: &mut Waiting, held: Duration, probe_started: Instant) {
        let until_deadline = w.deadline.saturating_duration_since(Instant::now());
        if self.watching_completions() {
            w.woken = self
                .completions
                .wait(&p.name, PROBE_PAUSE_MAX_WATCHED.min(until_deadline));
        } else if !held.is_zero() && probe_started.elapsed() >= held / 2 {
            // The worker held the probe: ask again at once.
        } else {
            // No wait asked, or a worker that answers at once.
            std::thread::sleep(w.pause.min(until_deadline));
            w.pause = (w.pause * 2).min(PROBE_PAUSE_MAX);
        }
    }
}
