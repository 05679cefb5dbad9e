//! A request body that must have arrived `HTTP_BODY_TIMEOUT` after its
//! head: a body that trickles, or stops, fails with
//! [`BodyError::TimedOut`] when its time is up, and the handler reading it
//! answers 408 and closes the connection.

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("failed to read the request body: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the request body did not arrive within HTTP_BODY_TIMEOUT ({limit:?})")]
    TimedOut { limit: Duration },
}

/// `inner`, failing once `limit` has passed since it was made (when the
/// request's head was complete).
pub struct TimedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
    on_timeout: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<B> TimedBody<B> {
    /// `on_timeout` runs once, when the time is up (it counts).
    pub fn new(
        inner: B,
        limit: Duration,
        on_timeout: impl FnOnce() + Send + Sync + 'static,
    ) -> Self {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            on_timeout: Some(Box::new(on_timeout)),
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(|e| BodyError::Read(e.into()))));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            if let Some(count) = this.on_timeout.take() {
                count();
            }
            return Poll::Ready(Some(Err(BodyError::TimedOut { limit: this.limit })));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `err`, or an error it was caused by, is a body's time running
/// out.
pub fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if matches!(
            e.downcast_ref::<BodyError>(),
            Some(BodyError::TimedOut { .. })
        ) {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    /// A body whose chunks come through a channel.
    struct ChannelBody(mpsc::Receiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_trickling_body_fails_when_its_time_is_up() {
        let (tx, rx) = mpsc::channel(4);
        let fired = Arc::new(AtomicUsize::new(0));
        let counted = fired.clone();
        let limit = Duration::from_millis(300);
        let body = TimedBody::new(ChannelBody(rx), limit, move || {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        let trickle = tokio::spawn(async move {
            // A byte every 20 ms: progress, but never the whole body.
            while tx.send(Bytes::from_static(b"x")).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let started = tokio::time::Instant::now();
        let err = axum::body::to_bytes(axum::body::Body::new(body), 1 << 20)
            .await
            .unwrap_err();
        assert!(is_timeout(&err), "{err}");
        assert!(started.elapsed() >= limit);
        assert_eq!(fired.load(Ordering::Relaxed), 1);
        trickle.abort();
    }

    #[tokio::test]
    async fn a_whole_body_in_time_is_read_and_the_length_limit_is_no_timeout() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Bytes::from_static(b"job")).await.unwrap();
        drop(tx);
        let body = TimedBody::new(ChannelBody(rx), Duration::from_secs(5), || {});
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"job");
        let whole = http_body_util::Full::new(Bytes::from_static(b"too long"));
        let limited = axum::body::to_bytes(
            axum::body::Body::new(TimedBody::new(whole, Duration::from_secs(5), || {})),
            3,
        )
        .await
        .unwrap_err();
        assert!(!is_timeout(&limited), "{limited}");
    }
}
