//! The accept loop: at most `MAX_CONNECTIONS` connections at once, each in
//! a tracked task; at shutdown, no more accepting, then a bounded drain.
//!
//! A permit is taken before `accept`: beyond the limit, connections wait in
//! the kernel's listen backlog (their time starts when they are accepted)
//! and are served as others close. While the `shutdown` future runs the
//! worker keeps serving (hosters probe their attempts while the supervisor
//! stops); once it resolves, the listener closes, every connection is asked
//! to finish what is in flight and close, and those still open after
//! [`DRAIN_LIMIT`] are closed.

use super::connection::{self, Stops};
use super::limits::HttpLimits;
use crate::worker::metrics::http::HttpMetrics;
use axum::Router;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

/// Connections the kernel queues for `accept`. The standard library's
/// 128 overflows when a burst of connections meets a busy worker: the
/// kernel then drops SYNs, and every client caught in it, a hoster's probe
/// too, waits a second for its retransmission. The kernel caps it at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` (with `SO_REUSEADDR`, as the standard library does) and
/// listens with [`LISTEN_BACKLOG`].
pub fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long connections may finish what is in flight once the supervisor
/// has stopped.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// After an accept error that is not one connection's (out of file
/// descriptors), how long the listener waits before it accepts again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: HttpMetrics,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let tracker = TaskTracker::new();
    let stops = Stops::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permit(&permits, &metrics) => p,
            () = shutdown.as_mut() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.as_mut() => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let (app, metrics, stops) = (app.clone(), metrics.clone(), stops.clone());
                tracker.spawn(async move {
                    connection::serve(stream, app, limits, metrics, stops).await;
                    drop(permit);
                });
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, "failed to accept a connection; accepting again shortly");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    () = shutdown.as_mut() => break,
                }
            }
        }
    }
    drop(listener);
    drain(tracker, stops).await;
    Ok(())
}

/// A connection permit; counts a wait when none is free.
async fn permit(permits: &Arc<Semaphore>, metrics: &HttpMetrics) -> OwnedSemaphorePermit {
    if let Ok(p) = permits.clone().try_acquire_owned() {
        return p;
    }
    metrics.limit_reached();
    tracing::debug!("MAX_CONNECTIONS connections open: waiting for one to close");
    permits
        .clone()
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed")
}

/// Errors of one connection, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn drain(tracker: TaskTracker, stops: Stops) {
    stops.graceful.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_LIMIT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after the drain: closing them"
        );
        stops.force.cancel();
        tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::io::{Read, Write};

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            max_connections: 8,
        }
    }

    /// A listener serving `/slow` (answers after 300 ms) until `stop`.
    async fn start() -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
        prometheus::Registry,
    ) {
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        );
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = prometheus::Registry::new();
        let metrics = HttpMetrics::new(&registry, 8).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(listener, app, limits(), metrics, async {
            let _ = stopped.await;
        }));
        (addr, stop, served, registry)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_finishes_answers_in_flight_then_stops_accepting() {
        let (addr, stop, served, _) = start().await;
        let client = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let answer = client.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with("done"),
            "the answer in flight was finished"
        );
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("the listener stopped")
            .unwrap()
            .unwrap();
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "no more accepting"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_half_sent_head_is_closed_at_the_header_timeout() {
        let (addr, stop, served, registry) = start().await;
        let closed_after = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHo").unwrap();
            let t = std::time::Instant::now();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            (t.elapsed(), rest)
        });
        let (after, rest) = closed_after.await.unwrap();
        assert!(rest.is_empty(), "no answer, just a close");
        assert!(
            after >= Duration::from_millis(250),
            "closed after {after:?}"
        );
        let mut text = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut text,
        )
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("farm_worker_http_closed_total{reason=\"header_timeout\"} 1"),
            "{text}"
        );
        stop.send(()).unwrap();
        served.await.unwrap().unwrap();
    }
}
