//! The web view's handlers, which the worker's router serves (see
//! [`Endpoint`](crate::protocol::endpoints::Endpoint)): `/stat`, `/list`,
//! `/metrics` and `/attempts/<attempt name>/<file>`.

use super::files::{self, FileError};
use super::page::{self, Page, PageContext};
use crate::protocol::answers::NOT_FOUND;
use crate::worker::server::error;
use crate::worker::supervisor::Supervisor;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::io::ReaderStream;

type Shared = Arc<Supervisor>;

/// `ADVERTISE_ADDR`, or the bound address.
fn advertised(sup: &Supervisor) -> &str {
    sup.identity().trim_start_matches("dcompact-worker@")
}

/// `GET /stat`.
pub(crate) async fn stat(
    State(sup): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    web_view(&sup, &q, Page::Stat)
}

/// `GET /list`.
pub(crate) async fn list(
    State(sup): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    web_view(&sup, &q, Page::List)
}

fn web_view(sup: &Supervisor, q: &HashMap<String, String>, which: Page) -> Response {
    let snap = sup.stat();
    if q.get("html").map(String::as_str) == Some("0") {
        return Json(snap).into_response();
    }
    let refresh = match q.get("refresh").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(s @ 1..=3600)) => Some(s),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed",
                "refresh: expected seconds, 1 to 3600",
            )
        }
    };
    let c = sup.config();
    let base_url = crate::worker::advertise::base_url(advertised(sup));
    let ctx = PageContext {
        base_url: &base_url,
        web_domain: c.web_domain.as_deref(),
        auth_required: c.auth_token.is_some(),
        multi_process: c.multi_process,
        files_kept: !c.del_worker_temp_db,
        refresh,
    };
    let html = Html(page::render(which, &snap, &ctx));
    if c.web_domain.is_some() {
        // Browsers honour `document.domain` only in pages that opt out of
        // origin-keyed agent clusters.
        ([("Origin-Agent-Cluster", "?0")], html).into_response()
    } else {
        html.into_response()
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(sup): State<Shared>) -> Response {
    use prometheus::Encoder;
    let encoder = prometheus::TextEncoder::new();
    let mut text = Vec::new();
    match encoder.encode(&sup.registry().gather(), &mut text) {
        Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type())], text).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("failed to encode metrics: {e}"),
        ),
    }
}

/// `GET /attempts/<attempt name>/<file>`.
pub(crate) async fn attempt_file(
    State(sup): State<Shared>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    let root = sup.config().worker_db_root.clone();
    // Opened, not read: the body is streamed from the file in chunks, so
    // a large `job.json` or LOG never sits whole in the worker's memory.
    let resolved = tokio::task::spawn_blocking(move || {
        let file = files::resolve(&root, &path)?;
        let opened = std::fs::File::open(&file).map_err(|_| FileError::Missing(path))?;
        Ok::<_, FileError>((files::content_type(&file), opened))
    })
    .await;
    match resolved {
        Ok(Ok((content_type, opened))) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            Body::from_stream(ReaderStream::new(tokio::fs::File::from_std(opened))),
        )
            .into_response(),
        Ok(Err(e)) => {
            let (code, status) = match e {
                FileError::NotServed(_) | FileError::BadPart(_) => {
                    (StatusCode::BAD_REQUEST, "refused")
                }
                FileError::Outside(_) => {
                    tracing::warn!(error = %e, "refused a file outside WORKER_DB_ROOT");
                    (StatusCode::FORBIDDEN, "refused")
                }
                FileError::Missing(_) => (StatusCode::NOT_FOUND, NOT_FOUND),
            };
            error(code, status, e.to_string())
        }
        Err(join) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("reading the file failed: {join}"),
        ),
    }
}
