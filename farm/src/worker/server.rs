//! The worker's HTTP server: thin handlers over the [`Supervisor`].
//!
//! The router serves exactly [`Endpoint::ALL`] (`docs/PROTOCOL.md` is the
//! contract, with every status code):
//!
//! | endpoint | answers |
//! | --- | --- |
//! | `POST /dcompact` | 200 `{"status":"ok","addr","protocol"}`, 400, 401, 412, 503 |
//! | `POST /probe` | 200 queued / running / done / failed, 400, 404 `NotFound` |
//! | `POST /shutdown` | 200 `{"status":"ok"}`, 400, 401, 404 `NotFound` |
//! | `GET /health` | 200 `{"status":"OK","protocol"}`, 412 while stopping |
//! | `GET /stat`, `GET /list` | HTML; `?html=0`: JSON counters and attempts (see [`web::routes`]) |
//! | `GET /metrics` | Prometheus text format (see [`crate::worker::metrics`]) |
//! | `GET /attempts/<attempt name>/<file>` | an attempt's `LOG`, `LOG.child`, `summary.html`, ...: 400, 403 outside `WORKER_DB_ROOT`, 404 |
//!
//! Every error answer is JSON with `status` and `error`.

use crate::etcd::keys::Registration;
use crate::protocol::answers::{CancelAnswer, ErrorAnswer, HealthAnswer, SubmitAnswer, NOT_FOUND};
use crate::protocol::attempt::AttemptKey;
use crate::protocol::endpoints::Endpoint;
use crate::protocol::version::PROTOCOL_VERSION;
use crate::worker::admission::{admit, AdmissionError};
use crate::worker::config::WorkerConfig;
use crate::worker::plugin_catalog::Catalog;
use crate::worker::registration::Registrar;
use crate::worker::retention;
use crate::worker::stats::RejectReason;
use crate::worker::supervisor::{SubmitError, Supervisor};
use crate::worker::web;
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
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

/// Serves until `shutdown` resolves, then stops admitting, cancels and awaits
/// every attempt, and returns.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let advertise = config
        .advertise_addr
        .clone()
        .unwrap_or_else(|| bound.to_string());
    std::fs::create_dir_all(&config.worker_db_root)?;
    let exe = std::env::current_exe()?;
    // Plugin code runs in the worker itself only without MULTI_PROCESS.
    let catalog = if config.multi_process {
        Catalog::describe_in_child(exe.clone(), config.plugins.clone())
    } else {
        Arc::new(Catalog::load_here(&config.plugins).map_err(std::io::Error::other)?)
    };
    let etcd = config.etcd.clone();
    if etcd.is_some() && config.advertise_addr.is_none() && bound.ip().is_unspecified() {
        return Err(std::io::Error::other(format!(
            "ETCD_URL is set but the worker listens on {bound} without ADVERTISE_ADDR: \
             hosters could not reach the address it would register; set ADVERTISE_ADDR=<host>:{}",
            bound.port()
        )));
    }
    let registration = Registration {
        url: format!("http://{advertise}"),
        web_url: format!("http://{advertise}/stat"),
        weight: config.max_parallel_compactions as u32,
        capacity: config.max_parallel_compactions,
        max_waiting: config.max_waiting_compactions,
        running: 0,
        waiting: 0,
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
    };
    let sup = Supervisor::new(
        Arc::new(config),
        format!("dcompact-worker@{advertise}"),
        &exe,
        catalog,
    )?;

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
        .with_state(sup.clone());

    let graceful = {
        let sup = sup.clone();
        let registrar = registrar.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: refusing new attempts, cancelling running ones");
            if let Some(r) = &registrar {
                r.deregister();
            }
            sup.shutdown().await;
        }
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await;
    stop_sweeper.cancel();
    let _ = sweeper.await;
    if let Some(r) = registrar {
        // Joins the registrar thread, which may be finishing a request.
        let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    }
    served
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
        c.worker_db_root.clone(),
        c.attempt_retention_age,
        c.attempt_retention_bytes,
    );
    let in_use = sup.active_dirs();
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

async fn read_body(sup: &Supervisor, body: Body) -> Result<axum::body::Bytes, Response> {
    let limit = sup.config().max_request_bytes;
    to_bytes(body, limit).await.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("failed to read request body (limit MAX_REQUEST_BYTES={limit} bytes): {e}"),
        )
    })
}

async fn dcompact(State(sup): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if !authorized(&sup, &headers) {
        sup.count_reject(RejectReason::Unauthorized);
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    let body = match read_body(&sup, body).await {
        Ok(b) => b,
        Err(r) => {
            sup.count_reject(RejectReason::Malformed);
            return r;
        }
    };
    if sup.is_stopping() {
        sup.count_reject(RejectReason::Refused);
        return error(
            StatusCode::PRECONDITION_FAILED,
            "refused",
            "worker is stopping",
        );
    }
    // Admission parses the input through RocksDB and touches the filesystem.
    let admitting = sup.clone();
    let admitted = tokio::task::spawn_blocking(move || {
        admit(
            admitting.config(),
            admitting.catalog(),
            admitting.mounts(),
            &body,
        )
    })
    .await;
    let (job, name, prepared) = match admitted {
        Ok(Ok(a)) => a,
        Ok(Err(AdmissionError::Malformed(e))) => {
            sup.count_reject(RejectReason::Malformed);
            return error(StatusCode::BAD_REQUEST, "malformed", e);
        }
        Ok(Err(AdmissionError::Refused(e))) => {
            sup.count_reject(RejectReason::Refused);
            return error(StatusCode::PRECONDITION_FAILED, "refused", e);
        }
        Err(join) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("admission failed: {join}"),
            )
        }
    };
    match sup.submit(job, name, prepared) {
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
        Err(e @ SubmitError::Busy { .. }) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
        }
        Err(e @ SubmitError::Refused(_)) => {
            error(StatusCode::PRECONDITION_FAILED, "refused", e.to_string())
        }
    }
}

async fn attempt_key(sup: &Supervisor, body: Body) -> Result<AttemptKey, Response> {
    let body = read_body(sup, body).await?;
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("expected instance_name, start_time, dbname, job_id, attempt: {e}"),
        )
    })
}

async fn probe(State(sup): State<Shared>, body: Body) -> Response {
    let key = match attempt_key(&sup, body).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    match sup.probe(&key) {
        Some(answer) => Json(answer).into_response(),
        None => error(StatusCode::NOT_FOUND, NOT_FOUND, "no such attempt"),
    }
}

async fn cancel(State(sup): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if !authorized(&sup, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
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

async fn health(State(sup): State<Shared>) -> Response {
    if sup.is_stopping() {
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
