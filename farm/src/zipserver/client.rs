//! The child's side: a [`BlockTransport`] that sends each block to the
//! zipserver over its Unix socket.
//!
//! Connections are pooled (one per block in flight; RocksDB may compress
//! from several threads). Every read and write is bounded by
//! `client_timeout`; any failure (no socket, refused, timed out, an error
//! reply, a malformed answer) drops the connection and declines the block,
//! which the built-in compressor then compresses in-process. After a
//! failure the client compresses in-process for a pause before it tries
//! again ([`FIRST_PAUSE`], doubling with each failure in a row up to
//! [`MAX_PAUSE`], back to none on a success), so a dead zipserver costs one
//! failed connect per pause, and a stalled one one `client_timeout` wait
//! per pause, not one per block.

use super::frame::{self, Reply};
use crate::rocks::zip::{BlockTransport, Compressed, ZipParams};
use serde::{Deserialize, Serialize};
use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the client compresses in-process after a first failure before
/// it tries the zipserver again.
pub const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause, after many failures in a row.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);

/// When to try the zipserver again.
#[derive(Default)]
struct Pause {
    until: Option<Instant>,
    /// The pause after the next failure; zero after a success.
    next: Duration,
}

/// What one process sent to the zipserver and what it compressed itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipCounts {
    /// Blocks that reached the `FarmZipServer` compressor at all.
    pub blocks_seen: u64,
    /// Blocks the zipserver compressed.
    pub remote_blocks: u64,
    /// Uncompressed bytes of those blocks.
    pub remote_bytes_in: u64,
    /// Compressed bytes the zipserver sent back for them.
    pub remote_bytes_out: u64,
    /// Blocks compressed in-process because the zipserver failed or was
    /// too slow.
    pub fallback_blocks: u64,
    pub fallback_bytes: u64,
    /// Connections opened to the zipserver.
    pub connects: u64,
}

impl ZipCounts {
    pub fn add(&mut self, o: &ZipCounts) {
        self.blocks_seen += o.blocks_seen;
        self.remote_blocks += o.remote_blocks;
        self.remote_bytes_in += o.remote_bytes_in;
        self.remote_bytes_out += o.remote_bytes_out;
        self.fallback_blocks += o.fallback_blocks;
        self.fallback_bytes += o.fallback_bytes;
        self.connects += o.connects;
    }
}

#[derive(Default)]
struct Atomics {
    remote_blocks: AtomicU64,
    remote_bytes_in: AtomicU64,
    remote_bytes_out: AtomicU64,
    fallback_blocks: AtomicU64,
    fallback_bytes: AtomicU64,
    connects: AtomicU64,
}

pub struct ZipClient {
    socket: PathBuf,
    name: String,
    timeout: Duration,
    idle: Mutex<Vec<BufReader<UnixStream>>>,
    /// No connection attempts before this instant.
    pause: Mutex<Pause>,
    /// Whether the last round trip failed (so a success resets the pause;
    /// checked without the lock on every block).
    failing: AtomicBool,
    counts: Atomics,
}

impl ZipClient {
    /// A client named `name` (its attempt) for the zipserver on `socket`.
    pub fn new(socket: PathBuf, name: String, timeout: Duration) -> Self {
        ZipClient {
            socket,
            name,
            timeout,
            idle: Mutex::new(Vec::new()),
            pause: Mutex::new(Pause::default()),
            failing: AtomicBool::new(false),
            counts: Atomics::default(),
        }
    }

    /// The counts so far (`blocks_seen` is filled in by the caller, from
    /// the compression manager).
    pub fn counts(&self) -> ZipCounts {
        let c = &self.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ZipCounts {
            blocks_seen: 0,
            remote_blocks: get(&c.remote_blocks),
            remote_bytes_in: get(&c.remote_bytes_in),
            remote_bytes_out: get(&c.remote_bytes_out),
            fallback_blocks: get(&c.fallback_blocks),
            fallback_bytes: get(&c.fallback_bytes),
            connects: get(&c.connects),
        }
    }

    /// An idle connection or a new one; `Ok(None)` while pausing after a
    /// failure.
    fn connection(&self) -> io::Result<Option<BufReader<UnixStream>>> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(Some(c));
        }
        let paused = self.pause.lock().unwrap_or_else(|p| p.into_inner()).until;
        if paused.is_some_and(|t| Instant::now() < t) {
            return Ok(None);
        }
        let stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut s = &stream;
        frame::write_hello(&mut s, &self.name)?;
        s.flush()?;
        self.counts.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Some(BufReader::with_capacity(
            frame::MAX_BLOCK_READ,
            stream,
        )))
    }

    fn round_trip(
        &self,
        conn: &mut BufReader<UnixStream>,
        params: &ZipParams,
        input: &[u8],
        out: &mut [u8],
    ) -> io::Result<Compressed> {
        let deadline = Instant::now() + self.timeout;
        {
            let mut s = conn.get_ref();
            frame::write_compress(&mut s, params, out.len(), input)?;
            s.flush()?;
        }
        let body = frame::read_frame(conn)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "zipserver closed"))?;
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "reply came too late",
            ));
        }
        match frame::parse_reply(&body)? {
            Reply::Done { result, bytes } => {
                if result.size > out.len() || bytes.len() > out.len() {
                    return Err(io::Error::other("reply larger than the output buffer"));
                }
                out[..bytes.len()].copy_from_slice(&bytes);
                Ok(result)
            }
            Reply::Error(e) => Err(io::Error::other(e)),
        }
    }
}

impl BlockTransport for ZipClient {
    fn compress(&self, params: &ZipParams, input: &[u8], out: &mut [u8]) -> Option<Compressed> {
        let result = match self.connection() {
            Ok(Some(mut conn)) => self.round_trip(&mut conn, params, input, out).map(|r| {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
                Some(r)
            }),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let c = &self.counts;
        match result {
            Ok(Some(r)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    self.pause.lock().unwrap_or_else(|p| p.into_inner()).next = Duration::ZERO;
                }
                c.remote_blocks.fetch_add(1, Ordering::Relaxed);
                c.remote_bytes_in
                    .fetch_add(input.len() as u64, Ordering::Relaxed);
                let out_bytes = if r.kind == 0 { 0 } else { r.size };
                c.remote_bytes_out
                    .fetch_add(out_bytes as u64, Ordering::Relaxed);
                return Some(r);
            }
            Ok(None) => {}
            Err(_) => {
                // The zipserver failed: forget every pooled connection (they
                // may all lead to a dead process) and pause before retrying.
                self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
                self.failing.store(true, Ordering::Relaxed);
                let mut p = self.pause.lock().unwrap_or_else(|p| p.into_inner());
                let pause = p.next.max(FIRST_PAUSE);
                p.until = Some(Instant::now() + pause);
                p.next = (pause * 2).min(MAX_PAUSE);
            }
        }
        c.fallback_blocks.fetch_add(1, Ordering::Relaxed);
        c.fallback_bytes
            .fetch_add(input.len() as u64, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rocks::zip::BuiltinCompressor;
    use crate::zipserver::server::{self, Service};
    use crate::zipserver::stats::ZipStats;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn snappy() -> ZipParams {
        ZipParams {
            kind: 1,
            level: 32767,
            window_bits: -14,
            max_compressed_bytes_per_kb: 896,
            ..ZipParams::default()
        }
    }

    #[test]
    fn the_zipserver_returns_exactly_the_builtin_compressors_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.sock");
        let stats = Arc::new(ZipStats::new(&prometheus::Registry::new()).unwrap());
        let service = Service::new(1, 1 << 20, stats.clone());
        let listener = server::bind(&path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accept = std::thread::spawn({
            let stop = stop.clone();
            move || server::serve(listener, service, stop)
        });
        let client = ZipClient::new(path, "attempt-a".into(), Duration::from_secs(5));
        let input = b"compaction farm ".repeat(256);
        let mut remote = vec![0u8; input.len()];
        let r = client
            .compress(&snappy(), &input, &mut remote)
            .expect("compressed remotely");
        let mut local = vec![0u8; input.len()];
        let l = BuiltinCompressor::new(&snappy())
            .unwrap()
            .unwrap()
            .compress(&input, &mut local)
            .unwrap();
        assert_eq!(r, l);
        assert_eq!(remote[..r.size], local[..l.size]);
        let c = client.counts();
        assert_eq!(
            (c.remote_blocks, c.remote_bytes_in),
            (1, input.len() as u64)
        );
        assert_eq!(c.remote_bytes_out, r.size as u64);
        assert_eq!((c.fallback_blocks, c.connects), (0, 1));
        let snap = stats.snapshot(1, 1 << 20, String::new());
        assert_eq!(snap.clients["attempt-a"].bytes_in, input.len() as u64);
        stop.store(true, Ordering::Release);
        accept.join().unwrap().unwrap();
    }

    #[test]
    fn no_zipserver_means_in_process_with_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let client = ZipClient::new(
            dir.path().join("nobody.sock"),
            "a".into(),
            Duration::from_millis(100),
        );
        let input = vec![7u8; 4096];
        let mut out = vec![0u8; 4096];
        assert_eq!(client.compress(&snappy(), &input, &mut out), None);
        assert_eq!(client.compress(&snappy(), &input, &mut out), None);
        let c = client.counts();
        assert_eq!((c.fallback_blocks, c.fallback_bytes), (2, 8192));
        assert_eq!((c.remote_blocks, c.connects), (0, 0));
        let p = client.pause.lock().unwrap();
        assert!(p.until.is_some_and(|t| t > Instant::now()), "pausing");
        assert_eq!(
            p.next,
            FIRST_PAUSE * 2,
            "a block during the pause neither retries nor lengthens it"
        );
    }
}
