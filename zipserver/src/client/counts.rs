//! What one child sent to the zipserver and what it compressed itself.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// A child's counts (`zip_counts.json`, summed in the worker's `/stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Connections opened to the zipserver (a ring's included).
    pub connects: u64,
    /// Of `remote_blocks`, those that went through a shared-memory ring
    /// (the others went over the socket).
    pub ring_blocks: u64,
    /// Rings handed to the zipserver.
    pub rings: u64,
    /// Times a thread slept waiting for its block (a ring block answered
    /// before the thread had to sleep costs no wake-up).
    pub sleeps: u64,
    /// Times the child woke a sleeping compression thread.
    pub doorbells: u64,
    /// Failures because the zipserver went away (its connection ended):
    /// the blocks in flight then were compressed in-process at once.
    pub gone: u64,
    /// Failures because an answer did not come within `client_timeout`.
    pub timed_out: u64,
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
        self.ring_blocks += o.ring_blocks;
        self.rings += o.rings;
        self.sleeps += o.sleeps;
        self.doorbells += o.doorbells;
        self.gone += o.gone;
        self.timed_out += o.timed_out;
    }
}

/// The live counters behind [`ZipCounts`].
#[derive(Default)]
pub struct Atomics {
    pub remote_blocks: AtomicU64,
    pub remote_bytes_in: AtomicU64,
    pub remote_bytes_out: AtomicU64,
    pub fallback_blocks: AtomicU64,
    pub fallback_bytes: AtomicU64,
    pub connects: AtomicU64,
    pub ring_blocks: AtomicU64,
    pub rings: AtomicU64,
    pub sleeps: AtomicU64,
    pub doorbells: AtomicU64,
    pub gone: AtomicU64,
    pub timed_out: AtomicU64,
}

/// One more.
pub fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl Atomics {
    /// The counts so far (`blocks_seen` is filled in by the caller, from
    /// the compression manager).
    pub fn snapshot(&self) -> ZipCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ZipCounts {
            blocks_seen: 0,
            remote_blocks: get(&self.remote_blocks),
            remote_bytes_in: get(&self.remote_bytes_in),
            remote_bytes_out: get(&self.remote_bytes_out),
            fallback_blocks: get(&self.fallback_blocks),
            fallback_bytes: get(&self.fallback_bytes),
            connects: get(&self.connects),
            ring_blocks: get(&self.ring_blocks),
            rings: get(&self.rings),
            sleeps: get(&self.sleeps),
            doorbells: get(&self.doorbells),
            gone: get(&self.gone),
            timed_out: get(&self.timed_out),
        }
    }
}
