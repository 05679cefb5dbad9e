//! The worker's HTTP server: thin handlers over the [`Supervisor`].
//!
//! The router serves exactly [`Endpoint::ALL`] (`docs/PROTOCOL.md` is the
//! contract, with every status code):
//!
//! | endpoint | answers |
//! | --- | --- |
//! | `POST /dcompact` | 200 `{"status":"ok","addr","protocol"}`, 400, 401, 408, 412, 503 (`busy`; `stopping` while draining) |
//! | `POST /probe` | 200 queued / running / done / failed, 400, 408, 404 `NotFound`; with `wait_ms`, held until the attempt ends or the wait is over |
//! | `POST /shutdown` | 200 `{"status":"ok"}`, 400, 401, 408, 404 `NotFound` (the cancel is remembered: a later submission of that attempt is refused) |
//! | `POST /drain` | 200 `{"status":"ok","cause"}`, 401: begins a drain (see [`crate::worker::drain`]) |
//! | `GET /health` | 200 `{"status":"OK","protocol"}`, 412 while draining or stopping |
//! | `GET /stat`, `GET /list` | HTML; `?html=0`: JSON counters and attempts (see [`web::routes`]) |
//! | `GET /metrics` | Prometheus text format (see [`crate::worker::metrics`]) |
//! | `GET /attempts/<attempt name>/<file>` | an attempt's `LOG`, `LOG.child`, `summary.html`, ...: 400, 403 outside `WORKER_DB_ROOT`, 404 |
//!
//! Every error answer is JSON with `status` and `error`. A request body
//! that does not arrive within `HTTP_BODY_TIMEOUT` is answered 408
//! `{"status":"timeout"}` and its connection closed; connections are
//! accepted and timed by [`crate::worker::listener`].
//!
//! `/dcompact` reserves a place in the queue and an admission permit
//! ([`Supervisor::enter_admission`]) before its job is admitted on a
//! blocking thread: a full worker, or one with `MAX_ADMISSIONS` admissions
//! in progress, answers 503 before it reads any file for the job.

use crate::etcd::keys::Registration;
use crate::protocol::answers::{
    self, CancelAnswer, DrainAnswer, ErrorAnswer, HealthAnswer, SubmitAnswer, NOT_FOUND,
};
use crate::protocol::attempt::AttemptKey;
use crate::protocol::endpoints::Endpoint;
use crate::protocol::probe::{ProbeRequest, MAX_PROBE_WAIT_MS};
use crate::protocol::version::PROTOCOL_VERSION;
use crate::worker::admission::admit;
use crate::worker::advertise;
use crate::worker::cgroup::home::CgroupHome;
use crate::worker::child::cgroups::child_cgroups;
use crate::worker::config::WorkerConfig;
use crate::worker::drain::{Drain, DrainCause};
use crate::worker::drain_wait::drain_then_stop;
use crate::worker::handler_panic;
use crate::worker::listener::{accept, timed_body};
use crate::worker::metrics::http::HttpMetrics;
use crate::worker::plugin_catalog::Catalog;
use crate::worker::registration::Registrar;
use crate::worker::retention;
use crate::worker::root_guard::WorkerRoot;
use crate::worker::root_lock::{RootLock, CLAIM_WAIT};
use crate::worker::stats::RejectReason;
use crate::worker::supervisor::{SubmitError, Supervisor};
use crate::worker::termination_check;
use crate::worker::timings::now_us;
use crate::worker::web;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Shared = Arc<Supervisor>;

pub(crate) fn error(code: StatusCode, status: &str, message: impl Into<String>) -> Response {
    (
        code,
        Json(ErrorAnswer {
            status: status.into(),
            error: message.into(),
        }),
    )
        .into_response()
}

/// The one table from a refused request to its HTTP status and the
/// `status` of its JSON answer.
fn status_of(reason: RejectReason) -> (StatusCode, &'static str) {
    match reason {
        RejectReason::Malformed => (StatusCode::BAD_REQUEST, "malformed"),
        RejectReason::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        RejectReason::Refused => (StatusCode::PRECONDITION_FAILED, "refused"),
        RejectReason::Busy | RejectReason::AdmissionsFull => {
            (StatusCode::SERVICE_UNAVAILABLE, "busy")
        }
        RejectReason::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
        // The answer after which a hoster tries another worker at once.
        RejectReason::Draining => (StatusCode::SERVICE_UNAVAILABLE, STOPPING),
        RejectReason::Panicked => (StatusCode::INTERNAL_SERVER_ERROR, handler_panic::PANICKED),
    }
}

/// The answer to a request refused for `reason`.
fn refusal(reason: RejectReason, message: impl Into<String>) -> Response {
    let (code, status) = status_of(reason);
    error(code, status, message)
}

/// Serves until `drain` has begun and ended (see [`crate::worker::drain`]:
/// the worker leaves etcd, refuses new jobs, finishes its attempts, waits
/// until their results are collected, then returns).
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    drain: Arc<Drain>,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let advertise = config
        .advertise_addr
        .clone()
        .unwrap_or_else(|| bound.to_string());
    refuse_open_exposure(&config, bound)?;
    let etcd = config.etcd.clone();
    if etcd.is_some() && config.advertise_addr.is_none() && bound.ip().is_unspecified() {
        return Err(std::io::Error::other(format!(
            "ETCD_URL is set but the worker listens on {bound} without ADVERTISE_ADDR: \
             hosters could not reach the address it would register; set ADVERTISE_ADDR=<host>:{}",
            bound.port()
        )));
    }
    let advertised_url = advertise::base_url(&advertise);
    let registration = Registration {
        url: advertised_url.clone(),
        web_url: format!("{advertised_url}/stat"),
        weight: config.max_parallel_compactions as u32,
        capacity: config.max_parallel_compactions,
        max_waiting: config.max_waiting_compactions,
        running: 0,
        waiting: 0,
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
    };
    let limits = config.http;
    // Opening the root, waiting for its lock, cgroups, plugins, the
    // zipserver and the mount table touch the file system and may wait:
    // off the async threads.
    let identity = format!("dcompact-worker@{advertise}");
    let (sup, root_lock, cgroups) = tokio::task::spawn_blocking({
        let drain = drain.clone();
        move || start_supervisor(config, identity, drain)
    })
    .await
    .map_err(std::io::Error::other)??;

    let registrar = match etcd {
        Some(etcd) => {
            let r = Registrar::start(etcd, registration).map_err(std::io::Error::other)?;
            sup.observe(r.observer());
            sup.show_registration(r.status());
            Some(Arc::new(r))
        }
        None => None,
    };

    let stop_sweeper = CancellationToken::new();
    let sweeper = tokio::spawn({
        let sup = sup.clone();
        let stop = stop_sweeper.clone();
        async move {
            let mut tick = tokio::time::interval(sup.sweep_period());
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        sup.sweep();
                        sweep_attempt_dirs(&sup).await;
                        let _ = tokio::task::spawn_blocking(
                            crate::worker::large_buffers::give_back_free_memory,
                        )
                        .await;
                    }
                }
            }
        }
    });

    let app = Endpoint::ALL
        .into_iter()
        .fold(Router::new(), |router, e| {
            router.route(e.path(), handler(e))
        })
        .fallback(|| async { error(StatusCode::NOT_FOUND, NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn(handler_panic::contain))
        .with_state(sup.clone());

    let termination = sup.config().termination_check_url.clone().map(|url| {
        termination_check::start(
            url,
            sup.config().termination_check_interval,
            drain.clone(),
            stop_sweeper.clone(),
        )
    });
    let graceful = drain_then_stop(sup.clone(), registrar.clone());
    let http_metrics =
        HttpMetrics::new(sup.registry(), limits.max_connections).map_err(std::io::Error::other)?;
    let served = accept::serve(listener, app, limits, http_metrics, graceful).await;
    stop_sweeper.cancel();
    let _ = sweeper.await;
    if let Some(t) = termination {
        let _ = t.await;
    }
    if let Some(r) = registrar {
        // Joins the registrar thread, which may be finishing a request.
        let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    }
    if let Some(home) = cgroups {
        let _ = tokio::task::spawn_blocking(move || home.close()).await;
    }
    drop(root_lock);
    served
}

/// The supervisor over the root `WORKER_DB_ROOT`, claimed (the lock is
/// held until the worker ends: what is under the root is this worker's),
/// with the children's cgroups (MULTI_PROCESS) and the plugin catalog.
fn start_supervisor(
    config: WorkerConfig,
    identity: String,
    drain: Arc<Drain>,
) -> std::io::Result<(Arc<Supervisor>, RootLock, Option<Arc<CgroupHome>>)> {
    let root = Arc::new(WorkerRoot::open(&config.worker_db_root).map_err(std::io::Error::other)?);
    let root_lock = RootLock::claim(&root, CLAIM_WAIT).map_err(std::io::Error::other)?;
    let cgroups = if config.multi_process {
        child_cgroups(&config.child_limits, &root, &root_lock).map_err(std::io::Error::other)?
    } else {
        None
    };
    let exe = std::env::current_exe()?;
    // Plugin code runs in the worker itself only without MULTI_PROCESS.
    let catalog = if config.multi_process {
        Catalog::describe_in_child(
            exe.clone(),
            config.plugins.clone(),
            config.child_limits.clone(),
            cgroups.clone(),
        )
    } else {
        Arc::new(Catalog::load_here(&config.plugins).map_err(std::io::Error::other)?)
    };
    let sup = Supervisor::new(
        Arc::new(config),
        root,
        identity,
        &exe,
        catalog,
        cgroups.clone(),
        drain,
    )?;
    Ok((sup, root_lock, cgroups))
}

/// A worker reachable beyond loopback runs jobs for anyone who reaches it:
/// it needs `WORKER_AUTH_TOKEN`, unless the operator opted out.
fn refuse_open_exposure(config: &WorkerConfig, bound: SocketAddr) -> std::io::Result<()> {
    if bound.ip().is_loopback() || config.auth_token.is_some() {
        return Ok(());
    }
    if config.allow_no_token {
        tracing::warn!(%bound, "WORKER_ALLOW_NO_TOKEN=true: listening beyond loopback without WORKER_AUTH_TOKEN; anyone who reaches this port can make the worker read and write below its roots");
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "the worker listens on {bound}, beyond loopback, without WORKER_AUTH_TOKEN: anyone who \
         reaches it could submit jobs; set WORKER_AUTH_TOKEN (hosters send it through \
         dcompact_http_headers), listen on 127.0.0.1, or set WORKER_ALLOW_NO_TOKEN=true to run \
         without one"
    )))
}

/// The handler of `endpoint`, on its method only; another method gets a
/// JSON 405.
fn handler(endpoint: Endpoint) -> MethodRouter<Shared> {
    let method = MethodFilter::try_from(endpoint.method())
        .expect("every endpoint uses GET or POST, which have filters");
    let wrong_method = move || async move {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "malformed",
            format!("{} takes only {}", endpoint.prefix(), endpoint.method()),
        )
    };
    let served = match endpoint {
        Endpoint::Dcompact => on(method, dcompact),
        Endpoint::Probe => on(method, probe),
        Endpoint::Shutdown => on(method, cancel),
        Endpoint::Drain => on(method, begin_drain),
        Endpoint::Health => on(method, health),
        Endpoint::Stat => on(method, web::routes::stat),
        Endpoint::List => on(method, web::routes::list),
        Endpoint::Metrics => on(method, web::routes::metrics),
        Endpoint::AttemptFile => on(method, web::routes::attempt_file),
    };
    served.fallback(wrong_method)
}

/// Applies the retention policy to kept attempt directories.
async fn sweep_attempt_dirs(sup: &Arc<Supervisor>) {
    let c = sup.config();
    if c.del_worker_temp_db {
        return;
    }
    let (root, age, bytes) = (
        sup.root().clone(),
        c.attempt_retention_age,
        c.attempt_retention_bytes,
    );
    let in_use = sup.active_names();
    let swept =
        tokio::task::spawn_blocking(move || retention::sweep(&root, age, bytes, &in_use)).await;
    if let Ok(report) = swept {
        sup.metrics().swept(&report);
        if report.removed > 0 {
            tracing::info!(
                removed = report.removed,
                removed_bytes = report.removed_bytes,
                kept = report.kept,
                kept_bytes = report.kept_bytes,
                "removed retained attempt directories"
            );
        }
    }
}

fn authorized(sup: &Supervisor, headers: &HeaderMap) -> bool {
    let Some(token) = &sup.config().auth_token else {
        return true;
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), token.expose().as_bytes())
}

/// Compares without an early exit, so timing tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The whole request body, or the answer that says why not (and the
/// reason a refused submission counts under).
async fn read_body(sup: &Supervisor, body: Body) -> Result<Bytes, (RejectReason, Response)> {
    let limit = sup.config().max_request_bytes;
    to_bytes(body, limit).await.map_err(|e| {
        if timed_body::is_timeout(&e) {
            let mut answer = refusal(
                RejectReason::Timeout,
                format!(
                    "the request body did not arrive within HTTP_BODY_TIMEOUT={:?}",
                    sup.config().http.body_timeout
                ),
            );
            // The rest of the body may still trickle in: not worth reading.
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return (RejectReason::Timeout, answer);
        }
        let answer = refusal(
            RejectReason::Malformed,
            format!("failed to read request body (limit MAX_REQUEST_BYTES={limit} bytes): {e}"),
        );
        (RejectReason::Malformed, answer)
    })
}

/// A submission the supervisor turned away (and counted): 503 busy, or 412.
fn submit_error(e: SubmitError) -> Response {
    refusal(e.reason(), e.to_string())
}

async fn dcompact(State(sup): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if !authorized(&sup, &headers) {
        sup.count_reject(RejectReason::Unauthorized);
        return refusal(RejectReason::Unauthorized, "missing or wrong bearer token");
    }
    if let Some(cause) = sup.drain().cause() {
        // 503, the answer after which a hoster tries another worker.
        sup.count_reject(RejectReason::Draining);
        return refusal(
            RejectReason::Draining,
            format!("worker is draining ({cause}): it takes no new jobs; try another worker"),
        );
    }
    let received_us = now_us();
    let body = match read_body(&sup, body).await {
        Ok(b) => b,
        Err((reason, r)) => {
            sup.count_reject(reason);
            return r;
        }
    };
    // A place in the queue first, so that a full worker reads nothing;
    // dropped (given back) on every return below but the last.
    let (place, permit) = match sup.enter_admission() {
        Ok(entered) => entered,
        Err(e) => return submit_error(e),
    };
    // Admission parses the input through RocksDB and touches the
    // filesystem, perhaps a slow NFS server: the blocking work holds the
    // permit until it returns, even when this request is gone.
    let admitting = sup.clone();
    let admitted = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        admit(
            admitting.config(),
            admitting.catalog(),
            admitting.mounts(),
            &body,
        )
    })
    .await;
    let (job, name, mut prepared) = match admitted {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            sup.count_reject(e.reason());
            return refusal(e.reason(), e.to_string());
        }
        Err(join) if join.is_panic() => {
            let why = handler_panic::panic_message(join.into_panic().as_ref());
            tracing::error!(panic = %why, "admission panicked; the submission is answered 500");
            sup.count_reject(RejectReason::Panicked);
            return refusal(RejectReason::Panicked, format!("admission panicked: {why}"));
        }
        Err(join) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("admission failed: {join}"),
            )
        }
    };
    prepared.timings.received_us = Some(received_us);
    prepared.timings.admitted_us = Some(now_us());
    match sup.submit(place, job, name, prepared) {
        Ok(()) => {
            let addr = sup
                .identity()
                .trim_start_matches("dcompact-worker@")
                .to_owned();
            Json(SubmitAnswer {
                status: "ok".into(),
                addr,
                protocol: PROTOCOL_VERSION,
            })
            .into_response()
        }
        Err(e) => submit_error(e),
    }
}

async fn attempt_key(sup: &Supervisor, body: Body) -> Result<AttemptKey, Response> {
    let body = read_body(sup, body).await.map_err(|(_, r)| r)?;
    serde_json::from_slice(&body).map_err(|e| {
        refusal(
            RejectReason::Malformed,
            format!("expected instance_name, start_time, dbname, job_id, attempt: {e}"),
        )
    })
}

/// Answers at once, or with `wait_ms` as soon as the attempt ends or the
/// wait is over (see [`ProbeRequest`]).
async fn probe(State(sup): State<Shared>, body: Body) -> Response {
    let body = match read_body(&sup, body).await {
        Ok(b) => b,
        Err((_, answer)) => return answer,
    };
    let request: ProbeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refusal(
                RejectReason::Malformed,
                format!("expected instance_name, start_time, dbname, job_id, attempt: {e}"),
            )
        }
    };
    let wait = Duration::from_millis(request.wait_ms.min(MAX_PROBE_WAIT_MS));
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first look, so an end in between is not missed.
    let mut ended = sup.ended_events();
    loop {
        match sup.probe(&request.key) {
            None => return error(StatusCode::NOT_FOUND, NOT_FOUND, "no such attempt"),
            Some(a)
                if (a.status == answers::QUEUED || a.status == answers::RUNNING)
                    && tokio::time::Instant::now() < deadline =>
            {
                match tokio::time::timeout_at(deadline, ended.changed()).await {
                    Ok(Ok(())) | Err(_) => continue,
                    Ok(Err(_)) => return Json(a).into_response(),
                }
            }
            Some(a) => return Json(a).into_response(),
        }
    }
}

async fn cancel(State(sup): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if !authorized(&sup, &headers) {
        return refusal(RejectReason::Unauthorized, "missing or wrong bearer token");
    }
    let key = match attempt_key(&sup, body).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if sup.cancel(&key) {
        Json(CancelAnswer {
            status: "ok".into(),
        })
        .into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            "no such attempt, or it already ended",
        )
    }
}

/// `POST /drain`: begins a drain, or says which one is under way.
async fn begin_drain(State(sup): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&sup, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    sup.drain().begin(DrainCause::Request);
    let cause = sup.drain().cause().unwrap_or(DrainCause::Request);
    Json(DrainAnswer {
        status: "ok".into(),
        cause: cause.to_string(),
    })
    .into_response()
}

/// The `status` of answers while the worker drains or stops.
const STOPPING: &str = "stopping";

async fn health(State(sup): State<Shared>) -> Response {
    if let Some(cause) = sup.drain().cause().filter(|_| !sup.is_stopping()) {
        error(
            StatusCode::PRECONDITION_FAILED,
            STOPPING,
            format!("worker is draining ({cause})"),
        )
    } else if sup.is_stopping() {
        error(
            StatusCode::PRECONDITION_FAILED,
            "stopping",
            "worker is stopping",
        )
    } else {
        Json(HealthAnswer {
            status: "OK".into(),
            protocol: PROTOCOL_VERSION,
        })
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
