//! The steps of a drain once it began (see [`crate::worker::drain`]):
//! leave etcd, wait for the accepted attempts within `SHUTDOWN_GRACE`,
//! wait for their results to be collected within `RESULT_RETENTION`, then
//! let the supervisor shut down.

use crate::worker::registration::Registrar;
use crate::worker::supervisor::{DrainProgress, Supervisor};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the waits look again when nothing wakes them (a probe that
/// collects a result sends no event).
const LOOK_AGAIN: Duration = Duration::from_millis(100);

/// Waits until the supervisor's drain begins, drains, and returns once
/// the supervisor has shut down: every attempt ended, the zipserver and
/// mounts gone. The HTTP server serves `/probe` until then.
pub async fn drain_then_stop(sup: Arc<Supervisor>, registrar: Option<Arc<Registrar>>) {
    let drain = sup.drain().clone();
    drain.begun().await;
    if let Some(r) = &registrar {
        r.deregister();
    }
    let config = sup.config();
    let (grace, retention) = (config.shutdown_grace, config.result_retention);
    let began = Instant::now();
    let p = sup.drain_progress();
    tracing::info!(
        attempts = p.attempts,
        uncollected = p.uncollected,
        "draining: waiting for the accepted attempts (at most SHUTDOWN_GRACE={grace:?})"
    );
    let ended = wait_for(&sup, grace, |p| p.attempts == 0).await;
    if ended {
        let p = sup.drain_progress();
        tracing::info!(
            uncollected = p.uncollected,
            "draining: every attempt ended; waiting until their results are collected (at most RESULT_RETENTION={retention:?})"
        );
        if !wait_for(&sup, retention, |p| p.uncollected == 0).await {
            let p = sup.drain_progress();
            tracing::warn!(
                uncollected = p.uncollected,
                "draining: results never collected; stopping without them"
            );
        }
    } else if !drain.is_stopping_now() {
        tracing::warn!(
            attempts = sup.drain_progress().attempts,
            "draining: SHUTDOWN_GRACE passed; cancelling what still runs"
        );
    }
    let left = if drain.is_stopping_now() {
        Duration::ZERO
    } else {
        grace.saturating_sub(began.elapsed())
    };
    sup.shutdown_within(left).await;
    tracing::info!(drained_ms = began.elapsed().as_millis() as u64, "drained");
}

/// Waits until `done` holds, at most `limit`, or until the drain is to
/// stop now; whether `done` held.
async fn wait_for(sup: &Supervisor, limit: Duration, done: impl Fn(DrainProgress) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let drain = sup.drain().clone();
    let mut ended = sup.ended_events();
    loop {
        if done(sup.drain_progress()) {
            return true;
        }
        if drain.is_stopping_now() || Instant::now() >= deadline {
            return false;
        }
        let next = (Instant::now() + LOOK_AGAIN).min(deadline);
        tokio::select! {
            _ = ended.changed() => {}
            _ = tokio::time::sleep_until(next) => {}
            _ = drain.stopped_now() => {}
        }
    }
}
