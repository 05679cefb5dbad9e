//! `farm-bench`: benchmark programs that print figures, run side by side
//! with their baseline.
//!
//! `farm-bench children`: the per-attempt cost of MULTI_PROCESS against
//! in-process attempts on the same captured input: child spawn latency
//! (fork+exec, median and p99) and the throughput ratio.
//!
//! `farm-bench done-events`: how soon the hoster learns that a remote
//! attempt finished, with etcd's "done" events against probing alone
//! (see `done_events.rs`).
//!
//! `farm-bench offload`: a db_bench-style writer with its compactions
//! local, on the farm (in-process and MULTI_PROCESS workers) and run
//! directly by `OpenAndCompact`, side by side: throughput, hoster and
//! worker CPU per GiB, stalls, put latency, plots (see `offload.rs`).
//!
//! `farm-bench job-cost`: the fixed cost of one remote job in its parts,
//! and the farm's compaction throughput against `OpenAndCompact` (see
//! `job_cost.rs`).
//!
//! `farm-bench remote-storage`: the HTTP storage mode against shared
//! storage: bytes fetched per job against its inputs, job latency and job
//! start at 100, 1,000 and 10,000 live SSTs (see `remote_storage.rs`).

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod attempt_logs;
mod bench_db;
mod direct;
mod done_events;
mod job_cost;
mod latency;
mod offload;
mod offload_report;
mod pin;
mod plots;
mod remote_storage;
mod timed;
mod writer;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use farm::worker::local::LocalWorker;
use farm::workload::capture::{capture_input, Captured};
use farm::workload::WorkloadSpec;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "farm-bench", version)]
/// Benchmarks of compaction-farm; each prints its figures and the baseline.
struct Args {
    #[command(subcommand)]
    bench: Bench,
    /// The worker binary (default: dcompact-worker beside this program).
    #[arg(long, global = true)]
    worker_bin: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// MULTI_PROCESS children against in-process attempts.
    Children {
        /// Attempts per round and mode.
        #[arg(long, default_value_t = 20)]
        attempts: u32,
        /// Rounds, alternating the modes.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// MAX_PARALLEL_COMPACTIONS of both workers.
        #[arg(long, default_value_t = 2)]
        parallel: u32,
        /// Operations written to build the captured input (its size).
        #[arg(long, default_value_t = 40_000)]
        ops: u64,
    },
    /// Completion latency: etcd "done" events against probing alone.
    DoneEvents {
        /// Attempts per round and mode, one after another.
        #[arg(long, default_value_t = 20)]
        attempts: u32,
        /// Rounds, alternating the modes.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Operations written to build the captured input (its size).
        #[arg(long, default_value_t = 40_000)]
        ops: u64,
    },
    /// Ingest with compactions local, on the farm, and run directly.
    Offload(offload::OffloadArgs),
    /// The fixed cost of one remote job, in its parts.
    JobCost(job_cost::JobCostArgs),
    /// The HTTP storage mode against shared storage: bytes moved and job
    /// latency at 100, 1,000 and 10,000 live SSTs.
    RemoteStorage(remote_storage::RemoteStorageArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let worker_bin = match args.worker_bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("dcompact-worker"),
    };
    match args.bench {
        Bench::Children {
            attempts,
            rounds,
            parallel,
            ops,
        } => children(&worker_bin, attempts, rounds, parallel, ops),
        Bench::DoneEvents {
            attempts,
            rounds,
            ops,
        } => done_events::run(&worker_bin, attempts, rounds, ops),
        Bench::Offload(a) => offload::run(&worker_bin, &a),
        Bench::JobCost(a) => job_cost::run(&worker_bin, &a),
        Bench::RemoteStorage(a) => remote_storage::run(&worker_bin, &a),
    }
}

struct Round {
    wall: Duration,
    spawn_us: Vec<u64>,
}

fn children(
    worker_bin: &Path,
    attempts: u32,
    rounds: u32,
    parallel: u32,
    ops: u64,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("farm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let captured = bench_input(&dir, ops)?;
    println!(
        "input: {} operations, {} input files; {attempts} attempts per round, MAX_PARALLEL_COMPACTIONS={parallel}",
        ops,
        farm::rocks::serialized::InputInfo::parse(&captured.input)?.input_files.len()
    );
    let mut walls = [Vec::new(), Vec::new()];
    let mut spawns = Vec::new();
    for round in 0..rounds {
        for (i, multi) in [false, true].into_iter().enumerate() {
            let r = run_round(
                worker_bin, &dir, &captured, multi, attempts, parallel, round,
            )?;
            println!(
                "round {round} {:<13} wall {:7.3} s  {:6.1} attempts/s",
                if multi { "multi-process" } else { "in-process" },
                r.wall.as_secs_f64(),
                attempts as f64 / r.wall.as_secs_f64()
            );
            walls[i].push(r.wall.as_secs_f64());
            spawns.extend(r.spawn_us);
        }
    }
    spawns.sort_unstable();
    let pct = |p: f64| spawns[((spawns.len() - 1) as f64 * p).round() as usize];
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let (inproc, multi) = (mean(&walls[0]), mean(&walls[1]));
    println!(
        "child spawn (fork+exec) latency over {} children: median {} us, p99 {} us, max {} us",
        spawns.len(),
        pct(0.5),
        pct(0.99),
        spawns[spawns.len() - 1]
    );
    println!(
        "throughput: in-process {:.1} attempts/s, multi-process {:.1} attempts/s, ratio multi/in-process {:.3}",
        attempts as f64 / inproc,
        attempts as f64 / multi,
        inproc / multi
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// One compaction input of `ops` operations (as many keys, 200-byte
/// values), captured below `dir`: what every attempt of a benchmark runs.
pub fn bench_input(dir: &Path, ops: u64) -> anyhow::Result<Captured> {
    let spec = WorkloadSpec {
        ops,
        key_space: ops,
        value_size: 200,
        ..WorkloadSpec::default()
    };
    let mut opts = rocksdb::Options::default();
    opts.set_write_buffer_size(64 << 20);
    capture_input(dir, opts, &spec).context("capturing a compaction input")
}

fn run_round(
    worker_bin: &Path,
    dir: &Path,
    captured: &Captured,
    multi: bool,
    attempts: u32,
    parallel: u32,
    round: u32,
) -> anyhow::Result<Round> {
    let root = dir.join(format!("worker-{round}-{multi}"));
    let mut worker = LocalWorker::start(
        worker_bin,
        &[
            ("WORKER_DB_ROOT", root.display().to_string()),
            ("HOSTER_ROOTS", captured.root.display().to_string()),
            ("MULTI_PROCESS", multi.to_string()),
            ("MAX_PARALLEL_COMPACTIONS", parallel.to_string()),
            ("MAX_WAITING_COMPACTIONS", attempts.to_string()),
            ("RUST_LOG", "warn".into()),
        ],
    )?;
    let instance = format!("bench{round}{}", if multi { "m" } else { "i" });
    let started = Instant::now();
    for a in 0..attempts {
        let job = captured.job(&instance, a);
        ureq::post(&format!("{}/dcompact", worker.base_url()))
            .send_json(serde_json::to_value(&job)?)
            .context("submitting")?;
    }
    loop {
        let stat: serde_json::Value = ureq::get(&format!("{}/stat?html=0", worker.base_url()))
            .call()?
            .into_json()?;
        let c = &stat["counters"];
        let failed: u64 = c["failed"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
        if failed > 0 {
            bail!("attempts failed: {c}");
        }
        if c["succeeded"].as_u64() == Some(attempts as u64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed();
    worker.stop(Duration::from_secs(10));
    let spawn_us = spawn_latencies(&root)?;
    // Each attempt's outputs, so the next round starts on a clean disk.
    std::fs::remove_dir_all(captured.root.join("db/out")).ok();
    std::fs::remove_dir_all(&root).ok();
    Ok(Round { wall, spawn_us })
}

/// "spawned in N us" from every attempt LOG below `root`.
fn spawn_latencies(root: &Path) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "LOG") {
                let text = std::fs::read_to_string(&p)?;
                out.extend(
                    text.split("spawned in ")
                        .skip(1)
                        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok()),
                );
            }
        }
    }
    Ok(out)
}
