//! A db_bench-style writer: `fillrandom` (random keys drawn with
//! replacement, as many writes as keys unless told otherwise), then
//! `overwrite` (as many again), 16-byte
//! keys, values taken from a pool that compresses to about half (db_bench's
//! `compression_ratio=0.5`). Writes go round robin over the column families;
//! with a merge family, every n-th operation is a merge of a counter there
//! instead. Every put is timed, and the ingest rate is sampled over time.

use crate::latency::Histogram;
use rocksdb::{ColumnFamily, DB};
use std::io::Write as _;
use std::time::{Duration, Instant};

/// What to write.
#[derive(Debug, Clone)]
pub struct WriterSpec {
    /// Keys are drawn from `0..keys`.
    pub keys: u64,
    /// Writes per phase (db_bench's `num`: the key count).
    pub ops: u64,
    pub value_size: usize,
    /// Every n-th operation is a merge into the merge family (0: none).
    pub merge_every: u64,
    pub seed: u64,
    /// How often the ingest rate is sampled for the plot.
    pub sample: Duration,
}

/// What one run of the writer did and saw.
#[derive(Debug, Clone, Default)]
pub struct WriterRun {
    pub ops: u64,
    /// Key and value bytes written (merges included).
    pub bytes: u64,
    pub fill: Duration,
    pub overwrite: Duration,
    pub latency: Histogram,
    /// `(seconds since the start, operations per second)` per sample.
    pub timeline: Vec<(f64, f64)>,
}

impl WriterRun {
    pub fn wall(&self) -> Duration {
        self.fill + self.overwrite
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.wall().as_secs_f64()
    }

    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.wall().as_secs_f64()
    }
}

const POOL: usize = 1 << 20;

/// A pool of bytes that compresses to about half: runs of random bytes,
/// each followed by a copy of itself.
fn value_pool(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut pool = vec![0u8; POOL];
    for chunk in pool.chunks_mut(100) {
        let half = chunk.len() / 2;
        rng.fill(&mut chunk[..half]);
        let (a, b) = chunk.split_at_mut(half);
        b[..half].copy_from_slice(a);
    }
    pool
}

/// Runs both phases against `db`: puts round robin over `families`, merges
/// into `merge` when it is given and `spec.merge_every > 0`.
pub fn run(
    db: &DB,
    families: &[&ColumnFamily],
    merge: Option<&ColumnFamily>,
    spec: &WriterSpec,
) -> Result<WriterRun, rocksdb::Error> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let pool = value_pool(&mut rng);
    let mut run = WriterRun::default();
    let started = Instant::now();
    let mut sampled = (started, 0u64);
    let mut key = [0u8; 16];
    let one = 1u64.to_le_bytes();
    for phase in 0..2 {
        let phase_start = Instant::now();
        for i in 0..spec.ops {
            let op = phase * spec.ops + i;
            let k = rng.u64(0..spec.keys);
            let _ = write!(&mut key[..], "{k:016}");
            let t = Instant::now();
            match merge {
                Some(cf) if spec.merge_every > 0 && op.is_multiple_of(spec.merge_every) => {
                    db.merge_cf(cf, &key[..], one)?;
                    run.bytes += (key.len() + one.len()) as u64;
                }
                _ => {
                    let at = rng.usize(0..POOL - spec.value_size);
                    let cf = families[(op % families.len() as u64) as usize];
                    db.put_cf(cf, &key[..], &pool[at..at + spec.value_size])?;
                    run.bytes += (key.len() + spec.value_size) as u64;
                }
            }
            let now = Instant::now();
            run.latency.record(now - t);
            run.ops += 1;
            if run.ops % 256 == 0 && now - sampled.0 >= spec.sample {
                let dt = (now - sampled.0).as_secs_f64();
                run.timeline.push((
                    (now - started).as_secs_f64(),
                    (run.ops - sampled.1) as f64 / dt,
                ));
                sampled = (now, run.ops);
            }
        }
        if phase == 0 {
            run.fill = phase_start.elapsed();
        } else {
            run.overwrite = phase_start.elapsed();
        }
    }
    Ok(run)
}
