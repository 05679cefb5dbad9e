//! [`ZipClient`]: the child's [`BlockTransport`]. A block goes through the
//! child's ring when it fits a slot and a slot is free, else over the
//! socket; any failure (no zipserver, refused, too slow, gone) declines the
//! block, which RocksDB's built-in compressor then compresses in-process,
//! and pauses the zipserver for this child ([`super::pause`]). A zipserver
//! that does not take rings (an older one) is used over the socket.

use super::counts::{bump, Atomics, ZipCounts};
use super::error::ClientError;
use super::pause::Pause;
use super::ring::{ClientRing, Declined, Waiting};
use super::socket::SocketPath;
use crate::codec::{BlockTransport, Compressed, ZipParams};
use crate::options::Transport;
use crate::shm::layout::RingLayout;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Bytes of a slot's input and output areas: blocks up to this size go
/// through the ring (pages of the `memfd` are only used as blocks touch
/// them).
pub const SLOT_BYTES: u32 = 64 << 10;

/// How a child reaches the zipserver (in the worker's `child.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    pub socket: PathBuf,
    /// The name the zipserver counts this child's blocks under: the
    /// attempt's name.
    pub client: String,
    /// A block not answered within this is compressed in-process.
    pub timeout_ms: u64,
    /// Blocks of one output at the zipserver at once.
    #[serde(default = "one")]
    pub blocks_in_flight: u32,
    #[serde(default)]
    pub transport: Transport,
    /// How long a waiting thread polls before it sleeps.
    #[serde(default)]
    pub spin_us: u64,
}

fn one() -> u32 {
    1
}

impl ClientConfig {
    /// The ring of a child: room for every thread RocksDB may compress
    /// with at once (its parallel threads and the emitting thread), twice.
    pub fn ring_layout(&self) -> RingLayout {
        RingLayout {
            slots: (2 * self.blocks_in_flight + 2).clamp(8, 64),
            slot_in: SLOT_BYTES,
            slot_out: SLOT_BYTES,
        }
    }
}

#[derive(Default)]
enum RingState {
    /// None yet (or the last one was dropped).
    #[default]
    Closed,
    Open(Arc<ClientRing>),
    /// The zipserver refused rings: the socket only, for good.
    Unsupported,
}

pub struct ZipClient {
    config: ClientConfig,
    /// Read by every block (RocksDB's parallel compression threads at
    /// once, none waiting for another), written only to open or drop a
    /// ring.
    ring: RwLock<RingState>,
    socket: SocketPath,
    pause: Pause,
    counts: Atomics,
}

impl ZipClient {
    pub fn new(config: ClientConfig) -> Self {
        let socket = SocketPath::new(
            config.socket.clone(),
            config.client.clone(),
            Duration::from_millis(config.timeout_ms),
        );
        ZipClient {
            ring: RwLock::new(if config.transport == Transport::Socket {
                RingState::Unsupported
            } else {
                RingState::Closed
            }),
            config,
            socket,
            pause: Pause::default(),
            counts: Atomics::default(),
        }
    }

    /// The counts so far (`blocks_seen` is filled in by the caller, from
    /// the compression manager).
    pub fn counts(&self) -> ZipCounts {
        self.counts.snapshot()
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    /// The open ring, opening one if there is none; `Ok(None)`: use the
    /// socket.
    fn ring(&self) -> Result<Option<Arc<ClientRing>>, ClientError> {
        {
            let state = self.ring.read().unwrap_or_else(|p| p.into_inner());
            match &*state {
                RingState::Open(r) if !r.is_dead() => return Ok(Some(r.clone())),
                RingState::Unsupported => return Ok(None),
                _ => {}
            }
        }
        let mut state = self.ring.write().unwrap_or_else(|p| p.into_inner());
        // Another thread may have opened one meanwhile.
        match &*state {
            RingState::Open(r) if !r.is_dead() => return Ok(Some(r.clone())),
            RingState::Unsupported => return Ok(None),
            _ => {}
        }
        let layout = self.config.ring_layout();
        match ClientRing::open(
            &self.config.socket,
            &self.config.client,
            layout,
            self.timeout(),
            &self.counts,
        ) {
            Ok(r) => {
                *state = RingState::Open(r.clone());
                Ok(Some(r))
            }
            Err(ClientError::RingRefused(why)) => {
                eprintln!("zipserver refused a ring ({why}): blocks go over the socket");
                *state = RingState::Unsupported;
                Ok(None)
            }
            Err(e) => {
                *state = RingState::Closed;
                Err(e)
            }
        }
    }

    fn drop_ring(&self) {
        let mut state = self.ring.write().unwrap_or_else(|p| p.into_inner());
        if let RingState::Open(r) = &*state {
            r.close();
            *state = RingState::Closed;
        }
    }

    fn try_remote(
        &self,
        params: &ZipParams,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(Compressed, bool), ClientError> {
        if let Some(ring) = self.ring()? {
            let wait = Waiting {
                spin: Duration::from_micros(self.config.spin_us),
                timeout: self.timeout(),
            };
            match ring.compress(params, input, out, wait, &self.counts) {
                Ok(c) => return Ok((c, true)),
                Err(Declined::NoSlot) => {}
                Err(Declined::Failed(e)) => return Err(e),
            }
        }
        let c = self.socket.compress(params, input, out, &self.counts)?;
        Ok((c, false))
    }
}

impl BlockTransport for ZipClient {
    fn compress(&self, params: &ZipParams, input: &[u8], out: &mut [u8]) -> Option<Compressed> {
        let c = &self.counts;
        if !self.pause.active() {
            match self.try_remote(params, input, out) {
                Ok((r, ring)) => {
                    self.pause.succeeded();
                    bump(&c.remote_blocks, 1);
                    bump(&c.ring_blocks, u64::from(ring));
                    bump(&c.remote_bytes_in, input.len() as u64);
                    bump(&c.remote_bytes_out, r.bytes() as u64);
                    return Some(r);
                }
                Err(e) => {
                    match e {
                        ClientError::Gone => bump(&c.gone, 1),
                        ClientError::TimedOut => bump(&c.timed_out, 1),
                        _ => {}
                    }
                    // The zipserver failed: drop the ring and every pooled
                    // connection, and pause before trying again.
                    self.drop_ring();
                    self.socket.forget();
                    self.pause.failed();
                }
            }
        }
        bump(&c.fallback_blocks, 1);
        bump(&c.fallback_bytes, input.len() as u64);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::BuiltinCompressor;
    use crate::server::service::{Service, Shape};
    use crate::server::stats::ZipStats;
    use crate::server::{ring_threads, socket};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A zipserver in this process.
    struct TestServer {
        _dir: tempfile::TempDir,
        path: PathBuf,
        service: Arc<Service>,
        stats: Arc<ZipStats>,
        stop: Arc<AtomicBool>,
        threads: Vec<std::thread::JoinHandle<()>>,
        accept: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    }

    fn server(num_threads: usize, memory_budget: u64) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.sock");
        let stats = Arc::new(ZipStats::new(&prometheus::Registry::new()).unwrap());
        let shape = Shape {
            num_threads,
            memory_budget,
            server_spin: Duration::from_micros(20),
            pin_threads: true,
        };
        let service = Service::new(shape, stats.clone()).unwrap();
        let listener = socket::bind(&path).unwrap();
        let threads = ring_threads::start(&service).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accept = std::thread::spawn({
            let (service, stop) = (service.clone(), stop.clone());
            move || socket::serve(listener, service, stop)
        });
        TestServer {
            _dir: dir,
            path,
            service,
            stats,
            stop,
            threads,
            accept: Some(accept),
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            self.service.stop();
            for t in self.threads.drain(..) {
                t.join().unwrap();
            }
            if let Some(a) = self.accept.take() {
                a.join().unwrap().unwrap();
            }
        }
    }

    fn config(path: &std::path::Path, name: &str, transport: Transport) -> ClientConfig {
        ClientConfig {
            socket: path.to_owned(),
            client: name.into(),
            timeout_ms: 5000,
            blocks_in_flight: 4,
            transport,
            spin_us: 0,
        }
    }

    fn snappy() -> ZipParams {
        ZipParams {
            kind: 1,
            level: 32767,
            window_bits: -14,
            max_compressed_bytes_per_kb: 896,
            ..ZipParams::default()
        }
    }

    fn zstd() -> ZipParams {
        ZipParams {
            kind: 7,
            level: 32767,
            window_bits: -14,
            max_compressed_bytes_per_kb: 896,
            ..ZipParams::default()
        }
    }

    fn block(seed: u64, len: usize) -> Vec<u8> {
        let words = ["compaction ", "farm ", "zipserver ", "ring ", "block "];
        let mut x = seed | 1;
        let mut b = Vec::with_capacity(len + 16);
        while b.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) {
                b.push(x as u8);
            } else {
                b.extend_from_slice(words[(x % 5) as usize].as_bytes());
            }
        }
        b.truncate(len);
        b
    }

    fn local(params: &ZipParams, input: &[u8], capacity: usize) -> (Compressed, Vec<u8>) {
        let mut out = vec![0u8; capacity];
        let c = BuiltinCompressor::new(params)
            .unwrap()
            .unwrap()
            .compress(input, &mut out)
            .unwrap();
        out.truncate(c.bytes());
        (c, out)
    }

    #[test]
    fn both_transports_return_exactly_the_builtin_compressors_bytes() {
        let s = server(1, 1 << 20);
        for (name, transport) in [("ring-a", Transport::Ring), ("socket-a", Transport::Socket)] {
            let client = ZipClient::new(config(&s.path, name, transport));
            for (i, params) in [snappy(), zstd()].iter().enumerate() {
                let input = block(i as u64 + 1, 4096);
                let mut remote = vec![0u8; 3584];
                let r = client
                    .compress(params, &input, &mut remote)
                    .expect("compressed remotely");
                let (l, bytes) = local(params, &input, 3584);
                assert_eq!(r, l);
                assert!(r.kind != 0, "the block compressed");
                assert_eq!(remote[..r.size], bytes[..]);
            }
            let c = client.counts();
            assert_eq!((c.remote_blocks, c.fallback_blocks), (2, 0));
            let ring = u64::from(transport == Transport::Ring);
            assert_eq!((c.ring_blocks, c.rings), (2 * ring, ring));
            let snap = s.stats.snapshot(1, 1 << 20, String::new());
            assert_eq!(snap.clients[name].bytes_in, 8192);
            assert_eq!(snap.clients[name].bytes_out, c.remote_bytes_out);
        }
        let snap = s.stats.snapshot(1, 1 << 20, String::new());
        assert_eq!((snap.requests, snap.ring_requests), (4, 2));
    }

    #[test]
    fn many_threads_share_one_ring_and_every_answer_is_their_own() {
        let s = server(2, 1 << 20);
        let client = Arc::new(ZipClient::new(config(&s.path, "many", Transport::Ring)));
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for i in 0..300u64 {
                        let params = if i % 2 == 0 { snappy() } else { zstd() };
                        let input = block(t * 1000 + i, 1024 + (i as usize * 37) % 15000);
                        let cap = input.len() * 7 / 8;
                        let mut out = vec![0u8; cap];
                        let r = client.compress(&params, &input, &mut out).expect("remote");
                        let (l, bytes) = local(&params, &input, cap);
                        assert_eq!(r, l);
                        assert_eq!(out[..r.bytes()], bytes[..]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let c = client.counts();
        assert_eq!(
            (c.remote_blocks, c.ring_blocks, c.fallback_blocks),
            (1800, 1800, 0)
        );
        let snap = s.stats.snapshot(2, 1 << 20, String::new());
        assert_eq!(snap.ring_requests, 1800);
        assert_eq!(snap.clients["many"].requests, 1800);
        assert_eq!(snap.clients["many"].bytes_out, c.remote_bytes_out);
        assert_eq!((snap.budget_bytes, snap.errors, snap.abandoned), (0, 0, 0));
        assert!(snap.budget_max_bytes > 0 && snap.budget_max_bytes <= 1 << 20);
    }

    #[test]
    fn a_block_larger_than_a_slot_goes_over_the_socket() {
        let s = server(1, 1 << 20);
        let client = ZipClient::new(config(&s.path, "large", Transport::Ring));
        let small = block(5, 4096);
        let large = block(6, SLOT_BYTES as usize + 4096);
        for input in [&small, &large] {
            let mut out = vec![0u8; input.len()];
            let r = client.compress(&snappy(), input, &mut out).unwrap();
            assert_eq!(r, local(&snappy(), input, input.len()).0);
        }
        let c = client.counts();
        assert_eq!((c.remote_blocks, c.ring_blocks, c.connects), (2, 1, 2));
    }

    #[test]
    fn over_budget_blocks_are_refused_and_compressed_in_process() {
        let s = server(1, 1024);
        let client = ZipClient::new(config(&s.path, "budget", Transport::Ring));
        let input = block(9, 4096);
        let mut out = vec![0u8; 4096];
        assert_eq!(client.compress(&snappy(), &input, &mut out), None);
        let c = client.counts();
        assert_eq!((c.remote_blocks, c.fallback_blocks), (0, 1));
        let snap = s.stats.snapshot(1, 1024, String::new());
        assert_eq!((snap.errors, snap.bytes_in, snap.budget_bytes), (1, 0, 0));
        // Paused: the next block does not even try.
        assert_eq!(client.compress(&snappy(), &input, &mut out), None);
        assert_eq!(s.stats.snapshot(1, 1024, String::new()).errors, 1);
    }

    #[test]
    fn no_zipserver_means_in_process_with_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let client = ZipClient::new(ClientConfig {
            timeout_ms: 100,
            ..config(&dir.path().join("nobody.sock"), "a", Transport::Ring)
        });
        let input = vec![7u8; 4096];
        let mut out = vec![0u8; 4096];
        assert_eq!(client.compress(&snappy(), &input, &mut out), None);
        assert_eq!(client.compress(&snappy(), &input, &mut out), None);
        let c = client.counts();
        assert_eq!((c.fallback_blocks, c.fallback_bytes), (2, 8192));
        assert_eq!((c.remote_blocks, c.connects), (0, 0));
        assert!(client.pause.active(), "pausing");
        assert_eq!(
            client.pause.next(),
            super::super::pause::FIRST_PAUSE * 2,
            "a block during the pause neither retries nor lengthens it"
        );
    }

    #[test]
    fn a_ring_that_ends_releases_its_waiters_and_a_new_one_is_opened() {
        let s = server(1, 1 << 20);
        let client = ZipClient::new(config(&s.path, "again", Transport::Ring));
        let input = block(11, 4096);
        let mut out = vec![0u8; 4096];
        assert!(client.compress(&snappy(), &input, &mut out).is_some());
        // The client drops its ring (as after a timeout): the zipserver
        // sees the connection end and lets the ring go; the next block
        // opens a new one.
        client.drop_ring();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !s.service.rings.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server dropped the ring"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(client.compress(&snappy(), &input, &mut out).is_some());
        assert_eq!(client.counts().rings, 2);
        assert_eq!(s.service.rings.len(), 1);
    }
}
