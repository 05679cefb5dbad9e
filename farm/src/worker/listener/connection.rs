//! One HTTP/1 connection, served by hyper under a watchdog that closes it
//! when its [`ConnClock`] says its time is up, and that turns the
//! listener's shutdown into hyper's graceful close (answers in flight are
//! finished, an idle connection closes at once).

use super::clock::{ConnClock, Expiry};
use super::limits::HttpLimits;
use super::timed_body::TimedBody;
use super::watched_io::WatchedIo;
use crate::worker::metrics::http::{HttpMetrics, SHUTDOWN};
use axum::body::{Body, Bytes};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How the listener ends its connections.
#[derive(Debug, Clone, Default)]
pub struct Stops {
    /// Finish what is in flight, then close.
    pub graceful: CancellationToken,
    /// Close now.
    pub force: CancellationToken,
}

/// Serves `stream` until the client closes it, its time is up, or the
/// listener stops it.
pub async fn serve(
    stream: TcpStream,
    app: Router,
    limits: HttpLimits,
    metrics: HttpMetrics,
    stops: Stops,
) {
    let _open = metrics.opened();
    let clock = Arc::new(ConnClock::new(Instant::now()));
    let io = TokioIo::new(WatchedIo::new(stream, clock.clone()));
    let service = {
        let (clock, metrics) = (clock.clone(), metrics.clone());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let request = InFlight::start(clock.clone());
            let counted = metrics.clone();
            let req = req.map(|b| {
                Body::new(TimedBody::new(b, limits.body_timeout, move || {
                    counted.body_timed_out()
                }))
            });
            let app = app.clone();
            async move {
                let answer = app.oneshot(req).await;
                answer.map(|r| {
                    r.map(|inner| Answer {
                        inner,
                        _request: request,
                    })
                })
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut draining = false;
    loop {
        let deadline = clock.deadline(&limits);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = until(deadline) => {
                if let Some(why) = clock.expired(&limits) {
                    close(&metrics, why);
                    return;
                }
            }
            () = clock.moved() => {}
            () = stops.graceful.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = stops.force.cancelled() => {
                metrics.closed(SHUTDOWN);
                return;
            }
        }
    }
}

fn close(metrics: &HttpMetrics, why: Expiry) {
    tracing::debug!(reason = why.name(), "closing a connection whose time is up");
    metrics.closed(why.name());
}

async fn until(deadline: Option<(Instant, Expiry)>) {
    match deadline {
        Some((at, _)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A request from its head until its answer was written or abandoned.
struct InFlight(Arc<ConnClock>);

impl InFlight {
    fn start(clock: Arc<ConnClock>) -> Self {
        clock.request_started();
        InFlight(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// An answer's body, holding its request in flight until hyper has
/// written it (or dropped it).
struct Answer {
    inner: Body,
    _request: InFlight,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
