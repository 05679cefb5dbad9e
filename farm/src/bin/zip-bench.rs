//! `zip-bench`: compaction throughput with output blocks compressed by the
//! zipserver against compression inside each MULTI_PROCESS child, and the
//! zipserver's CPU use against its `num_threads`.
//!
//! Each round submits `--attempts` attempts of one captured compaction
//! input at once to a MULTI_PROCESS worker with `MAX_PARALLEL_COMPACTIONS`
//! = `--parallel` (4 compactions at a time by default), once without a
//! zipserver (the baseline) and once with `ZIP_SERVER_OPTIONS`
//! `num_threads=--threads`, alternating. While the zipserver side runs, the
//! zipserver's CPU time (`/proc/<pid>/stat` utime+stime) is sampled every
//! `--sample-ms`; the figure printed is the most cores it used in any
//! sample window, which must not exceed `num_threads`.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use anyhow::{bail, Context};
use clap::Parser;
use farm::worker::local::LocalWorker;
use farm::workload::capture::{capture_input, Captured};
use farm::workload::WorkloadSpec;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "zip-bench", version)]
/// Zipserver against in-child compression, 4 concurrent compactions.
struct Args {
    /// The worker binary (default: dcompact-worker beside this program).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Attempts per round and side, submitted at once.
    #[arg(long, default_value_t = 12)]
    attempts: u32,
    /// Rounds, alternating the sides.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// MAX_PARALLEL_COMPACTIONS: compactions at a time.
    #[arg(long, default_value_t = 4)]
    parallel: u32,
    /// The zipserver's num_threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// blocks_in_flight of the zipserver side (ZIP_SERVER_OPTIONS).
    #[arg(long, default_value_t = 4)]
    in_flight: u32,
    /// Operations written to build the captured input (its size).
    #[arg(long, default_value_t = 100_000)]
    ops: u64,
    /// The hoster's compression: snappy, lz4 or zstd.
    #[arg(long, default_value = "snappy")]
    compression: String,
    /// The hoster's table block size, bytes: one block is one round trip.
    #[arg(long, default_value_t = 4096)]
    block_size: usize,
    /// Baseline children use FarmZipServer with no zipserver listening, so
    /// every block falls back in-process: the cost of the manager and of
    /// RocksDB's parallel compression without the round trips.
    #[arg(long)]
    baseline_fallback: bool,
    /// Share of each value that is compressible text (0: random bytes,
    /// which the codecs give up on quickly).
    #[arg(long, default_value_t = 0.5)]
    compressible: f64,
    /// CHILD_NICE of both sides' workers: children below the zipserver's
    /// priority, so a woken zipserver thread runs at once.
    #[arg(long, default_value_t = 0)]
    child_nice: u32,
    /// CPU sampling period of the zipserver, milliseconds.
    #[arg(long, default_value_t = 250)]
    sample_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let worker_bin = match &args.worker_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("dcompact-worker"),
    };
    let compression = match args.compression.as_str() {
        "snappy" => rocksdb::DBCompressionType::Snappy,
        "lz4" => rocksdb::DBCompressionType::Lz4,
        "zstd" => rocksdb::DBCompressionType::Zstd,
        other => bail!("--compression {other:?}: expected snappy, lz4 or zstd"),
    };
    if !(0.0..=1.0).contains(&args.compressible) {
        bail!(
            "--compressible {}: expected a share from 0 to 1",
            args.compressible
        );
    }
    let dir = std::env::temp_dir().join(format!("zip-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let spec = WorkloadSpec {
        ops: args.ops,
        key_space: args.ops,
        value_size: 200,
        compressible: args.compressible,
        ..WorkloadSpec::default()
    };
    let mut opts = rocksdb::Options::default();
    opts.set_write_buffer_size(256 << 20);
    opts.set_compression_type(compression);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_size(args.block_size);
    opts.set_block_based_table_factory(&table);
    let captured = capture_input(&dir, opts, &spec).context("capturing a compaction input")?;
    println!(
        "input: {} operations ({:.0}% of each value compressible), {} compression, {} B blocks; {} attempts per round and side, MAX_PARALLEL_COMPACTIONS={}, CHILD_NICE={}, zipserver num_threads={} blocks_in_flight={}",
        args.ops, args.compressible * 100.0, args.compression, args.block_size, args.attempts, args.parallel, args.child_nice, args.threads, args.in_flight
    );
    let mut walls = [Vec::new(), Vec::new()];
    let mut max_cores: f64 = 0.0;
    for round in 0..args.rounds {
        for (i, zip) in [false, true].into_iter().enumerate() {
            let r = run_round(&worker_bin, &dir, &captured, zip, round, &args)?;
            let mb = r.bytes_read as f64 / (1 << 20) as f64;
            print!(
                "round {round} {:<13} wall {:7.3} s  {:6.2} attempts/s  {:7.1} MiB/s read",
                if zip { "zipserver" } else { "in-child" },
                r.wall.as_secs_f64(),
                args.attempts as f64 / r.wall.as_secs_f64(),
                mb / r.wall.as_secs_f64()
            );
            if let Some(z) = &r.zip {
                print!(
                    "  | zipserver cpu max {:.2} cores, mean {:.2}; blocks remote {} fallback {}; bytes in {} out {}",
                    z.max_cores, z.mean_cores, z.remote_blocks, z.fallback_blocks, z.bytes_in, z.bytes_out
                );
                max_cores = max_cores.max(z.max_cores);
            }
            println!();
            walls[i].push(r.wall.as_secs_f64());
        }
    }
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let (child, zip) = (mean(&walls[0]), mean(&walls[1]));
    println!(
        "throughput: in-child {:.2} attempts/s, zipserver {:.2} attempts/s, ratio zipserver/in-child {:.3}; zipserver cpu never above {:.2} cores (num_threads={})",
        args.attempts as f64 / child,
        args.attempts as f64 / zip,
        child / zip,
        max_cores,
        args.threads
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

struct ZipFigures {
    max_cores: f64,
    mean_cores: f64,
    remote_blocks: u64,
    fallback_blocks: u64,
    bytes_in: u64,
    bytes_out: u64,
}

struct Round {
    wall: Duration,
    bytes_read: u64,
    zip: Option<ZipFigures>,
}

fn stat(worker: &LocalWorker) -> anyhow::Result<Value> {
    Ok(ureq::get(&format!("{}/stat?html=0", worker.base_url()))
        .call()?
        .into_json()?)
}

fn run_round(
    worker_bin: &Path,
    dir: &Path,
    captured: &Captured,
    zip: bool,
    round: u32,
    args: &Args,
) -> anyhow::Result<Round> {
    let root = dir.join(format!("worker-{round}-{zip}"));
    let mut env = vec![
        ("WORKER_DB_ROOT", root.display().to_string()),
        ("HOSTER_ROOTS", captured.root.display().to_string()),
        ("MULTI_PROCESS", "true".to_string()),
        ("MAX_PARALLEL_COMPACTIONS", args.parallel.to_string()),
        ("MAX_WAITING_COMPACTIONS", args.attempts.to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("RUST_LOG", "warn".into()),
        ("CHILD_NICE", args.child_nice.to_string()),
    ];
    if !zip && args.baseline_fallback {
        env.push((
            "ZIP_SERVER_SOCKET",
            root.join("nobody-listens.sock").display().to_string(),
        ));
    }
    if zip {
        env.push((
            "ZIP_SERVER_OPTIONS",
            format!(
                "listening_ports=127.0.0.1:0:num_threads={}:blocks_in_flight={}",
                args.threads, args.in_flight
            ),
        ));
    }
    let mut worker = LocalWorker::start(worker_bin, &env)?;
    let pid = if zip {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = stat(&worker)?;
            if let Some(pid) = s["zipserver"]["sidecar"]["pid"].as_u64() {
                if s["zipserver"]["sidecar"]["http_addr"].is_string() {
                    break Some(pid as i32);
                }
            }
            if Instant::now() > deadline {
                bail!("the worker's zipserver did not start: {s}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| {
        let stop = stop.clone();
        let period = Duration::from_millis(args.sample_ms);
        std::thread::spawn(move || sample_cpu(pid, period, &stop))
    });

    let instance = format!("zb{round}{}", if zip { "z" } else { "c" });
    let started = Instant::now();
    for a in 0..args.attempts {
        let job = captured.job(&instance, a);
        ureq::post(&format!("{}/dcompact", worker.base_url()))
            .send_json(serde_json::to_value(&job)?)
            .context("submitting")?;
    }
    let last = loop {
        let s = stat(&worker)?;
        let c = &s["counters"];
        let failed: u64 = c["failed"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
        if failed > 0 {
            bail!("attempts failed: {c}");
        }
        if c["succeeded"].as_u64() == Some(args.attempts as u64) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    stop.store(true, Ordering::Release);
    let zip_figures = match sampler {
        Some(t) => {
            let (max_cores, mean_cores) =
                t.join().map_err(|_| anyhow::anyhow!("sampler panicked"))?;
            let counts = &last["zipserver"]["counts"];
            let n = |k: &str| counts[k].as_u64().unwrap_or(0);
            Some(ZipFigures {
                max_cores,
                mean_cores,
                remote_blocks: n("remote_blocks"),
                fallback_blocks: n("fallback_blocks"),
                bytes_in: n("remote_bytes_in"),
                bytes_out: n("remote_bytes_out"),
            })
        }
        None => None,
    };
    let bytes_read = last["counters"]["bytes_read"].as_u64().unwrap_or(0);
    worker.stop(Duration::from_secs(10));
    std::fs::remove_dir_all(captured.root.join("db/out")).ok();
    std::fs::remove_dir_all(&root).ok();
    Ok(Round {
        wall,
        bytes_read,
        zip: zip_figures,
    })
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// Samples until `stop`; returns the most cores used in one period and
/// the mean over the whole run.
fn sample_cpu(pid: i32, period: Duration, stop: &AtomicBool) -> (f64, f64) {
    let start = (Instant::now(), cpu_seconds(pid).unwrap_or(0.0));
    let mut last = start;
    let mut max: f64 = 0.0;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(period);
        let Some(cpu) = cpu_seconds(pid) else { break };
        let now = Instant::now();
        max = max.max((cpu - last.1) / now.duration_since(last.0).as_secs_f64());
        last = (now, cpu);
    }
    let mean = (last.1 - start.1) / last.0.duration_since(start.0).as_secs_f64().max(1e-9);
    (max, mean)
}
