//! `farm-demo`: a local farm offloading a real workload's compactions.
//!
//! Starts a `dcompact-worker` on 127.0.0.1, opens a RocksDB database whose
//! compactions go to it, writes a million random keys with overwrites, point
//! deletes and range deletes, compacts, checks every key against an
//! in-memory model, and prints how many compactions ran remotely and
//! locally and how many bytes they processed, beside the hoster's ingest
//! throughput and CPU time and the worker's CPU time.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use anyhow::{bail, Context};
use clap::Parser;
use farm::hoster::plugins::{install_compaction_filter, install_merge_operator};
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use farm_plugin_counter::Counter;
use farm_plugin_ttl::Ttl;
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "farm-demo", version)]
/// Runs a local compaction farm against a generated workload and reports
/// where the compactions ran.
struct Args {
    /// Write operations (puts, overwrites, deletes).
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// Distinct keys the operations draw from.
    #[arg(long, default_value_t = 400_000)]
    key_space: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 200)]
    value_size: usize,
    /// Working directory (default: a new temporary directory, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The worker binary (default: dcompact-worker beside this program).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Check block checksums of every remote output before installing it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    verify_output: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let data = dir.join("data");
    let db_path = data.join("db");
    std::fs::create_dir_all(&data).context("failed to create data dir")?;

    let worker_bin = match args.worker_bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("dcompact-worker"),
    };
    let plugins: Vec<String> = ["counter", "ttl"]
        .iter()
        .map(|p| {
            worker_bin
                .with_file_name(format!("lib{p}.so"))
                .display()
                .to_string()
        })
        .collect();
    let mut worker = LocalWorker::start(
        &worker_bin,
        &[
            ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
            ("HOSTER_ROOTS", data.display().to_string()),
            ("DEL_WORKER_TEMP_DB", "true".into()),
            ("OUTPUT_SPACE_MARGIN", "64M".into()),
            ("PLUGINS", plugins.join(":")),
            ("FARM_TTL_SECONDS", TTL.to_string()),
            ("FARM_TTL_NOW", NOW.to_string()),
            ("RUST_LOG", "warn".into()),
        ],
    )?;
    println!("worker listening on {}", worker.addr);

    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_write_buffer_size(8 << 20);
    opts.set_target_file_size_base(8 << 20);
    opts.set_max_bytes_for_level_base(32 << 20);
    opts.set_level_zero_file_num_compaction_trigger(4);
    opts.set_max_background_jobs(4);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let params = serde_json::json!({
        "http_workers": [worker.base_url()],
        "hoster_root": data.display().to_string(),
        "instance_name": "farm-demo",
        "verify_output": args.verify_output,
    });
    let farm = farm::hoster::enable(
        &mut opts,
        &db_path.display().to_string(),
        &params.to_string(),
    )?;
    // The family's options must be given explicitly: a bare name opens it
    // with RocksDB's defaults (64 MiB memtables).
    let mut counters = opts.clone();
    install_merge_operator(&mut counters, Counter)
        .context("failed to install the counter merge operator")?;
    let mut sessions = opts.clone();
    install_compaction_filter(&mut sessions, Ttl::new(TTL, Some(NOW)));
    let families = [
        ColumnFamilyDescriptor::new("default", opts.clone()),
        ColumnFamilyDescriptor::new("counters", counters),
        ColumnFamilyDescriptor::new("sessions", sessions),
    ];
    opts.create_missing_column_families(true);
    let db = DB::open_cf_descriptors(&opts, &db_path, families)
        .context("failed to open the database")?;
    let cf = db.cf_handle("default").context("default column family")?;

    let spec = WorkloadSpec {
        ops: args.ops,
        key_space: args.key_space,
        value_size: args.value_size,
        delete_every: 10,
        range_delete_every: 10_000,
        seed: 42,
        compressible: 0.0,
    };
    println!(
        "writing {} operations over {} keys ...",
        spec.ops, spec.key_space
    );
    let started = Instant::now();
    let cpu0 = farm::workload::cpu::process();
    let mut model = Model::default();
    let written = model.write(&db, cf, &spec)?;
    let write_time = started.elapsed();
    let plugin_data = PluginData::write(&db, spec.ops / 5)?;
    for name in ["default", "counters", "sessions"] {
        let cf = db.cf_handle(name).context("column family")?;
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }
    wait_for_compactions(&db)?;
    let elapsed = started.elapsed();
    let hoster_cpu = farm::workload::cpu::process() - cpu0;
    let keys = model.check(&db, cf).map_err(anyhow::Error::msg)?;
    let (counted, live_sessions) = plugin_data.check(&db)?;

    let stats = farm.stats();
    let worker_stat: serde_json::Value = ureq::get(&format!("{}/stat?html=0", worker.base_url()))
        .call()
        .context("worker /stat")?
        .into_json()?;
    println!(
        "wrote {} puts, {} deletes, {} range deletes ({:.1} MiB) in {:.1}s",
        written.puts,
        written.deletes,
        written.range_deletes,
        written.bytes as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64()
    );
    println!("verified {keys} live keys against the model: all equal");
    println!(
        "plugins: {counted} counters (merge operator `counter`) and {live_sessions} unexpired sessions (filter `ttl`) verified"
    );
    println!(
        "compactions run remotely: {} ({:.1} MiB read, {:.1} MiB written)",
        stats.remote_installed,
        stats.remote_bytes_read as f64 / (1 << 20) as f64,
        stats.remote_bytes_written as f64 / (1 << 20) as f64
    );
    println!("compactions run locally:  {}", stats.local_total());
    let mib = written.bytes as f64 / (1 << 20) as f64;
    println!(
        "hoster: ingest {:.1} MiB/s ({:.0} writes/s) over the write loop; {:.2} CPU-s from the first write until compactions settled ({:.2} CPU-s per GiB ingested, wall {:.1} s)",
        mib / write_time.as_secs_f64(),
        spec.ops as f64 / write_time.as_secs_f64(),
        hoster_cpu.as_secs_f64(),
        hoster_cpu.as_secs_f64() / (mib / 1024.0),
        elapsed.as_secs_f64()
    );
    println!(
        "hoster-side output verification: {:.1} ms in all ({:.1} MiB/s of output)",
        stats.verify_micros as f64 / 1000.0,
        stats.remote_bytes_written as f64
            / (1 << 20) as f64
            / (stats.verify_micros.max(1) as f64 / 1e6)
    );
    for (reason, n) in stats.fallbacks.iter().filter(|(_, n)| **n > 0) {
        println!("  fallback {reason}: {n}");
    }
    println!("worker counters: {}", worker_stat["counters"]);
    println!("worker plugin counts: {}", worker_stat["plugins"]["counts"]);
    drop(db);
    let children0 = farm::workload::cpu::children();
    worker.stop(Duration::from_secs(10));
    println!(
        "worker: {:.2} CPU-s with its attempt children (the compactions' CPU, off the hoster)",
        (farm::workload::cpu::children() - children0).as_secs_f64()
    );
    if args.dir.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    if stats.remote_installed == 0 {
        bail!("no compaction ran remotely");
    }
    Ok(())
}

/// The sessions' fixed "now" and time to live, on both sides.
const NOW: u64 = 1_800_000_000;
const TTL: u64 = 3_600;

/// Writes for the example plugins, and what they must leave behind.
struct PluginData {
    sums: BTreeMap<String, u64>,
    /// Each session's latest write time.
    stamps: BTreeMap<String, u64>,
}

impl PluginData {
    fn write(db: &DB, ops: u64) -> anyhow::Result<Self> {
        let counters = db.cf_handle("counters").context("counters")?;
        let sessions = db.cf_handle("sessions").context("sessions")?;
        let mut data = PluginData {
            sums: BTreeMap::new(),
            stamps: BTreeMap::new(),
        };
        for i in 0..ops {
            let key = format!("counter{:05}", i % 10_000);
            let add = i % 5 + 1;
            db.merge_cf(counters, &key, add.to_le_bytes())?;
            *data.sums.entry(key).or_default() += add;
            let key = format!("session{:06}", i % 50_000);
            let stamp = NOW - (i * 7_919) % (2 * TTL);
            db.put_cf(
                sessions,
                &key,
                [stamp.to_le_bytes().as_slice(), &[b's'; 64]].concat(),
            )?;
            data.stamps.insert(key, stamp);
        }
        Ok(data)
    }

    /// Every counter holds its sum; exactly the unexpired sessions remain.
    fn check(&self, db: &DB) -> anyhow::Result<(usize, usize)> {
        let counters = db.cf_handle("counters").context("counters")?;
        for (key, sum) in &self.sums {
            let v = db.get_cf(counters, key)?.context("counter missing")?;
            let got = u64::from_le_bytes(v.as_slice().try_into().context("counter is 8 bytes")?);
            if got != *sum {
                bail!("{key} is {got}, expected {sum}");
            }
        }
        let sessions = db.cf_handle("sessions").context("sessions")?;
        let live = self.stamps.values().filter(|s| NOW - **s <= TTL).count();
        let mut found = 0;
        for item in db.iterator_cf(sessions, rocksdb::IteratorMode::Start) {
            let (k, _) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match self.stamps.get(&key) {
                Some(s) if NOW - s <= TTL => found += 1,
                _ => bail!("{key} should have expired"),
            }
        }
        if found != live {
            bail!("{found} sessions left, expected {live}");
        }
        Ok((self.sums.len(), live))
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("farm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn wait_for_compactions(db: &DB) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let pending = db
            .property_int_value("rocksdb.compaction-pending")?
            .unwrap_or(0);
        let running = db
            .property_int_value("rocksdb.num-running-compactions")?
            .unwrap_or(0);
        if pending == 0 && running == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("compactions still running after 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
