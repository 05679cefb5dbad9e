//! `chaos-hoster`: a hoster process for the farm's chaos test, meant to be
//! SIGKILLed at any moment and opened again.
//!
//! It opens a RocksDB database with the farm enabled (`--params`, the
//! hoster's JSON), checks every key against the expected-state file
//! ([`farm::workload::expected`]) and prints what it found, then writes
//! batches of puts, deletes and range deletes with `sync` on, recording each
//! write in the expected state before and after it. Small memtables and
//! files make it compact often.
//!
//! It prints one JSON object per line on stdout:
//! `{"event":"verified",...}` after the check (or `{"event":"mismatch"}` and
//! exit code 3), `{"event":"progress",...}` every 200 ms with the writes
//! acknowledged and the farm's counters, and with `--ops` (a bounded run)
//! `{"event":"done",...}` after the writes, a full compaction, the wait for
//! every compaction to settle, and a second check.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use anyhow::Context;
use clap::Parser;
use farm::hoster::FarmService;
use farm::workload::expected::{key_of, value_of, ExpectedState, Verified};
use rocksdb::{Options, WriteBatch, WriteOptions, DB};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "chaos-hoster", version)]
/// Writes a database with the farm enabled while checking it against an
/// expected-state file.
struct Args {
    /// The database directory.
    #[arg(long)]
    db: PathBuf,
    /// The expected-state file (created when missing).
    #[arg(long)]
    expected: PathBuf,
    /// The farm's hoster parameters (JSON).
    #[arg(long)]
    params: String,
    /// Keys `key000000000000` up to this (exclusive).
    #[arg(long, default_value_t = 20_000)]
    key_space: u64,
    /// Seeds the choice of keys and operations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Operations per synced write batch.
    #[arg(long, default_value_t = 16)]
    batch: u64,
    /// Operations in all, then compact, settle, check and exit; 0: write
    /// until killed.
    #[arg(long, default_value_t = 0)]
    ops: u64,
}

/// Small memtables and files with LZ4: a few MiB of writes keep several
/// levels compacting.
fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_write_buffer_size(512 << 10);
    o.set_target_file_size_base(512 << 10);
    o.set_max_bytes_for_level_base(2 << 20);
    o.set_level_zero_file_num_compaction_trigger(2);
    o.set_max_background_jobs(4);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

fn verified_event(event: &str, v: &Verified) -> serde_json::Value {
    json!({
        "event": event,
        "keys": v.keys,
        "present": v.present,
        "pending_applied": v.pending_applied,
        "pending_lost": v.pending_lost,
    })
}

/// Checks the DB against the expected state and resolves writes in flight.
fn check(db: &DB, state: &mut ExpectedState) -> anyhow::Result<Option<Verified>> {
    match state.verify(db) {
        Ok((v, found)) => {
            state.resolve(&found)?;
            Ok(Some(v))
        }
        Err(m) => {
            emit(json!({"event": "mismatch", "error": m.to_string()}));
            Ok(None)
        }
    }
}

/// One synced batch of `n` operations, recorded around the write.
fn write_batch(
    db: &DB,
    state: &mut ExpectedState,
    rng: &mut fastrand::Rng,
    n: u64,
) -> anyhow::Result<()> {
    let key_space = state.key_space();
    let mut batch = WriteBatch::default();
    let mut touched = Vec::new();
    for _ in 0..n {
        let i = rng.u64(0..key_space);
        match rng.u32(0..100) {
            0 => {
                let end = (i + rng.u64(1..20)).min(key_space);
                for k in i..end {
                    state.begin(k, 0)?;
                    touched.push(k);
                }
                batch.delete_range(key_of(i), key_of(end));
            }
            1..=9 => {
                state.begin(i, 0)?;
                touched.push(i);
                batch.delete(key_of(i));
            }
            _ => {
                let v = state.next_version()?;
                state.begin(i, v)?;
                touched.push(i);
                batch.put(key_of(i), value_of(i, v));
            }
        }
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    db.write_opt(batch, &wo).context("a synced write failed")?;
    for k in touched {
        state.commit(k)?;
    }
    Ok(())
}

/// Prints progress every 200 ms until `stop`.
fn report(farm: &FarmService, writes: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        emit(json!({
            "event": "progress",
            "writes": writes.load(Ordering::Relaxed),
            "stats": farm.stats(),
        }));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until no compaction is pending or running and no remote attempt
/// is in flight (idle twice, 100 ms apart).
fn settle(db: &DB, farm: &FarmService) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut idle_since: Option<Instant> = None;
    loop {
        let p = |name: &str| db.property_int_value(name).ok().flatten().unwrap_or(0);
        let busy = farm.in_flight() > 0
            || p("rocksdb.compaction-pending") > 0
            || p("rocksdb.num-running-compactions") > 0;
        if busy {
            idle_since = None;
        } else if idle_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(100)) {
            return Ok(());
        } else {
            idle_since.get_or_insert_with(Instant::now);
        }
        anyhow::ensure!(Instant::now() < deadline, "compactions did not settle");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut state = ExpectedState::open(&args.expected, args.key_space)?;
    let mut opts = options();
    let farm = farm::hoster::enable(&mut opts, &args.db.display().to_string(), &args.params)?;
    let db = DB::open(&opts, &args.db).context("failed to open the database")?;
    let Some(v) = check(&db, &mut state)? else {
        std::process::exit(3);
    };
    emit(verified_event("verified", &v));

    let writes = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> anyhow::Result<()> {
        s.spawn(|| report(&farm, &writes, &stop));
        let mut rng = fastrand::Rng::with_seed(args.seed);
        let mut done = 0;
        while args.ops == 0 || done < args.ops {
            let n = match args.ops {
                0 => args.batch,
                ops => args.batch.min(ops - done),
            };
            let r = write_batch(&db, &mut state, &mut rng, n);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r?;
            done += n;
            writes.store(done, Ordering::Relaxed);
        }
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        let settled = settle(&db, &farm);
        stop.store(true, Ordering::Relaxed);
        settled
    })?;
    let Some(v) = check(&db, &mut state)? else {
        std::process::exit(3);
    };
    let mut done = verified_event("done", &v);
    done["stats"] = json!(farm.stats());
    done["writes"] = json!(writes.load(Ordering::Relaxed));
    emit(done);
    Ok(())
}
