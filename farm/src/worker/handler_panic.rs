//! A handler that panics ends its own request, not the worker's service.
//!
//! Every request's handler runs under [`contain`]: a panic is caught,
//! logged with the request's path and answered 500 `{"status":"panicked",
//! "error":...}` (a panic in a submission's admission, which runs on a
//! blocking thread, is answered the same way and counted in
//! `farm_worker_rejected_total{reason="panicked"}`). The supervisor's state lock is taken only in short
//! sections free of request arithmetic (and a poisoned lock is recovered),
//! so the next request is served as before.

use crate::worker::server::error;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

/// The status of the answer to a request whose handler panicked.
pub const PANICKED: &str = "panicked";

/// Runs the rest of the request, answering 500 if it panics.
pub async fn contain(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(%path, panic = %message, "a request handler panicked; the request is answered 500 and the worker keeps serving");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                PANICKED,
                format!("the handler of {path} panicked: {message}"),
            )
        }
    }
}

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    fn app() -> Router {
        Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(contain))
    }

    async fn call(app: &Router, path: &str) -> (StatusCode, String) {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_panicking_handler_ends_its_own_request_only() {
        let app = app();
        let (status, body) = call(&app, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["status"], PANICKED);
        assert!(answer["error"].as_str().unwrap().contains("boom"));
        assert_eq!(call(&app, "/fine").await, (StatusCode::OK, "fine".into()));
    }
}
