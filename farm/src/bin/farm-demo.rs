//! `farm-demo`: a local farm offloading a real workload's compactions.
//!
//! Starts a `dcompact-worker` on 127.0.0.1, opens a RocksDB database whose
//! compactions go to it, writes a million random keys with overwrites, point
//! deletes and range deletes, compacts, checks every key against an
//! in-memory model, and prints how many compactions ran remotely and
//! locally and how many bytes they processed.

use anyhow::{bail, Context};
use clap::Parser;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
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
    let mut worker = LocalWorker::start(
        &worker_bin,
        &[
            ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
            ("DEL_WORKER_TEMP_DB", "true".into()),
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
    let families = [ColumnFamilyDescriptor::new("default", opts.clone())];
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
    };
    println!(
        "writing {} operations over {} keys ...",
        spec.ops, spec.key_space
    );
    let started = Instant::now();
    let mut model = Model::default();
    let written = model.write(&db, cf, &spec)?;
    db.flush_cf(cf)?;
    db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    wait_for_compactions(&db)?;
    let elapsed = started.elapsed();
    let keys = model.check(&db, cf).map_err(anyhow::Error::msg)?;

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
        "compactions run remotely: {} ({:.1} MiB read, {:.1} MiB written)",
        stats.remote_installed,
        stats.remote_bytes_read as f64 / (1 << 20) as f64,
        stats.remote_bytes_written as f64 / (1 << 20) as f64
    );
    println!("compactions run locally:  {}", stats.local_total());
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
    drop(db);
    worker.stop(Duration::from_secs(10));
    if args.dir.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    if stats.remote_installed == 0 {
        bail!("no compaction ran remotely");
    }
    Ok(())
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
