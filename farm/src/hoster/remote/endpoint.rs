//! The file endpoint: a small HTTP/1 server this process runs for its
//! workers in the HTTP storage mode, on a thread of its own with a
//! current-thread tokio runtime.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/jobs/<job>/files` | the job's [`FileList`] |
//! | `GET /v1/jobs/<job>/files/<name>`, `Range: bytes=a-b` | `206` with exactly those bytes, never past the file's pinned length; `416` for a range outside it or larger than [`MAX_RANGE_BYTES`] |
//! | `PUT /v1/jobs/<job>/out/<name>` | `201`: the output created (never replaced) in the attempt's output directory; `409` when it exists |
//!
//! Every request must present the job's token ([`Grants::check`]): `401`
//! for a missing or wrong token or an expired capability, `404` for an
//! unknown job, a name that is not a readable file of the job (any other
//! file, a WAL, `..`, a path) or not an output name. Nothing is read or
//! written before the check.

use super::capability::{Denied, Grants};
use crate::protocol::remote::{is_output_name, FileList, JOBS, MAX_RANGE_BYTES};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The largest output one PUT may carry.
pub const MAX_OUTPUT_BYTES: u64 = 8 << 30;

/// What the endpoint served and refused, for tests and logs.
#[derive(Debug, Default)]
pub struct EndpointCounts {
    pub served_bytes: AtomicU64,
    pub received_bytes: AtomicU64,
    pub refused: AtomicU64,
}

struct Shared {
    grants: Arc<Grants>,
    counts: Arc<EndpointCounts>,
}

/// A running endpoint; dropping it stops the server and joins its thread.
pub struct FileEndpoint {
    url: String,
    addr: SocketAddr,
    counts: Arc<EndpointCounts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileEndpoint {
    /// Binds `listen` and serves `grants`; `url` is how workers reach it
    /// (`None`: `http://<bound address>`).
    pub fn start(
        listen: SocketAddr,
        url: Option<String>,
        grants: Arc<Grants>,
    ) -> std::io::Result<FileEndpoint> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let counts = Arc::new(EndpointCounts::default());
        let shared = Arc::new(Shared {
            grants,
            counts: counts.clone(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("farm-files".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "file endpoint: cannot listen");
                            return;
                        }
                    };
                    let served =
                        axum::serve(listener, router(shared)).with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        });
                    if let Err(e) = served.await {
                        tracing::error!(error = %e, "file endpoint stopped");
                    }
                })
            })?;
        Ok(FileEndpoint {
            url: url.unwrap_or_else(|| format!("http://{addr}")),
            addr,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// How workers reach it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counts(&self) -> &EndpointCounts {
        &self.counts
    }
}

impl Drop for FileEndpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(&format!("{JOBS}/{{job}}/files"), get(list))
        .route(&format!("{JOBS}/{{job}}/files/{{name}}"), get(read))
        .route(&format!("{JOBS}/{{job}}/out/{{name}}"), put(write))
        .with_state(shared)
}

fn answer(status: StatusCode, error: &str) -> Response {
    let body = serde_json::json!({"status": status.as_u16(), "error": error});
    (status, Json(body)).into_response()
}

fn denied(shared: &Shared, d: Denied) -> Response {
    shared.counts.refused.fetch_add(1, Ordering::Relaxed);
    let status = match d {
        Denied::UnknownJob => StatusCode::NOT_FOUND,
        Denied::BadToken | Denied::Expired => StatusCode::UNAUTHORIZED,
    };
    answer(status, &d.to_string())
}

fn not_in_job(shared: &Shared) -> Response {
    shared.counts.refused.fetch_add(1, Ordering::Relaxed);
    answer(StatusCode::NOT_FOUND, "not a file of this job")
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Response {
    match shared.grants.check(&job, authorization(&headers)) {
        Ok(grant) => Json(FileList {
            files: grant.snapshot.files().to_vec(),
        })
        .into_response(),
        Err(d) => denied(&shared, d),
    }
}

/// `bytes=a-b` (inclusive) within `len`, at most [`MAX_RANGE_BYTES`].
fn parse_range(value: Option<&str>, len: u64) -> Option<(u64, u64)> {
    let spec = value?.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let last: u64 = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= last && last - start < MAX_RANGE_BYTES).then_some((start, last + 1))
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((job, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let grant = match shared.grants.check(&job, authorization(&headers)) {
        Ok(g) => g,
        Err(d) => return denied(&shared, d),
    };
    let Some(len) = grant.snapshot.readable_len(&name) else {
        return not_in_job(&shared);
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let Some((start, stop)) = parse_range(range, len) else {
        shared.counts.refused.fetch_add(1, Ordering::Relaxed);
        return answer(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "a Range of bytes=a-b within the file and 16 MiB is required",
        );
    };
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let (file, _) = grant.snapshot.open(&name)?;
        let mut buf = vec![0u8; (stop - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        Ok(buf)
    })
    .await;
    match read {
        Ok(Ok(bytes)) => {
            shared
                .counts
                .served_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let range = format!("bytes {start}-{}/{len}", stop - 1);
            (
                StatusCode::PARTIAL_CONTENT,
                [(header::CONTENT_RANGE, range)],
                bytes,
            )
                .into_response()
        }
        Ok(Err(e)) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("read failed: {e}"),
        ),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("read task failed: {e}"),
        ),
    }
}

async fn write(
    State(shared): State<Arc<Shared>>,
    Path((job, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let grant = match shared.grants.check(&job, authorization(&headers)) {
        Ok(g) => g,
        Err(d) => return denied(&shared, d),
    };
    if !is_output_name(&name) {
        return not_in_job(&shared);
    }
    let path = grant.output_dir.join(&name);
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .await;
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            shared.counts.refused.fetch_add(1, Ordering::Relaxed);
            return answer(StatusCode::CONFLICT, "the output exists already");
        }
        Err(e) => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("create failed: {e}"),
            )
        }
    };
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    let failed = loop {
        let chunk = match stream.next().await {
            None => break None,
            Some(Ok(c)) => c,
            Some(Err(e)) => break Some(answer(StatusCode::BAD_REQUEST, &format!("body: {e}"))),
        };
        written += chunk.len() as u64;
        if written > MAX_OUTPUT_BYTES {
            break Some(answer(StatusCode::PAYLOAD_TOO_LARGE, "output too large"));
        }
        if let Err(e) = file.write_all(&chunk).await {
            break Some(answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("write: {e}"),
            ));
        }
    };
    let synced = match failed {
        None => file.sync_all().await.err(),
        Some(_) => None,
    };
    drop(file);
    if let Some(e) = synced {
        let _ = tokio::fs::remove_file(&path).await;
        return answer(StatusCode::INTERNAL_SERVER_ERROR, &format!("sync: {e}"));
    }
    if let Some(r) = failed {
        let _ = tokio::fs::remove_file(&path).await;
        return r;
    }
    shared
        .counts
        .received_bytes
        .fetch_add(written, Ordering::Relaxed);
    StatusCode::CREATED.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_stay_within_the_file_and_the_bound() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Some((0, 10)));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), Some((90, 100)));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Some((5, 10)));
        assert_eq!(parse_range(Some("bytes=100-101"), 100), None);
        assert_eq!(parse_range(Some("bytes=9-3"), 100), None);
        assert_eq!(parse_range(None, 100), None);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), None);
        assert_eq!(
            parse_range(Some(&format!("bytes=0-{}", 32 << 20)), 64 << 20),
            None
        );
    }
}
