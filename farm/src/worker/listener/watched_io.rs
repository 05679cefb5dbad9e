//! A connection's socket that tells its [`ConnClock`] when bytes move:
//! bytes read may start a request's head, a write that cannot go on starts
//! the stalled-write deadline, one that goes through ends it.

use super::clock::ConnClock;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug)]
pub struct WatchedIo<T> {
    inner: T,
    clock: Arc<ConnClock>,
}

impl<T> WatchedIo<T> {
    pub fn new(inner: T, clock: Arc<ConnClock>) -> Self {
        WatchedIo { inner, clock }
    }

    fn wrote<R>(&self, polled: &Poll<io::Result<R>>) {
        match polled {
            Poll::Pending => self.clock.write_blocked(),
            Poll::Ready(_) => self.clock.write_progressed(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(&polled);
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::listener::clock::Expiry;
    use crate::worker::listener::limits::HttpLimits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[tokio::test]
    async fn reads_and_stalled_writes_reach_the_clock() {
        let limits = HttpLimits::default();
        let clock = Arc::new(ConnClock::new(Instant::now()));
        clock.request_started();
        clock.request_ended();
        let (client, server) = tokio::io::duplex(64);
        let mut io = WatchedIo::new(server, clock.clone());
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 3];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(
            clock.deadline(&limits).map(|(_, why)| why),
            Some(Expiry::HeaderTimeout),
            "the first byte after idle starts a head"
        );
        clock.request_started();
        // The client reads nothing: the pipe fills and the write stalls.
        let stalled = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            io.write_all(&[0; 256]),
        )
        .await;
        assert!(stalled.is_err(), "the write blocked");
        assert_eq!(
            clock.deadline(&limits).map(|(_, why)| why),
            Some(Expiry::WriteTimeout)
        );
        let mut sink = [0u8; 256];
        client_read.read_exact(&mut sink[..64]).await.unwrap();
        io.write_all(&[0; 8]).await.unwrap();
        assert_eq!(clock.deadline(&limits), None, "writes flow again");
    }
}
