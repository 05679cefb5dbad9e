//! `zip-bench`: compaction throughput with output blocks compressed by the
//! zipserver against compression inside each MULTI_PROCESS child, and the
//! zipserver's CPU use against its `num_threads`.
//!
//! Each round submits `--attempts` attempts of one captured compaction
//! input at once to a MULTI_PROCESS worker with `MAX_PARALLEL_COMPACTIONS`
//! = `--parallel` (4 compactions at a time by default), once per side,
//! alternating: `in-child` (no zipserver, the baseline), `socket` (the
//! zipserver with one socket round trip per block, as before rings) and
//! `ring` (the zipserver through shared-memory rings). Beside each figure:
//! the machine's context switches (per block) and the kernel's share of
//! all CPU time (`/proc/stat`), and the load average. While a zipserver
//! side runs, the zipserver's CPU time (`/proc/<pid>/stat`) is sampled
//! every `--sample-ms`; the figure printed is the most cores it used in any
//! window, which must not exceed `num_threads`.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod machine;
mod round;

use anyhow::{bail, Context};
use clap::Parser;
use farm::workload::capture::capture_input;
use farm::workload::WorkloadSpec;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "zip-bench", version)]
/// Zipserver against in-child compression, 4 concurrent compactions.
pub struct Args {
    /// The worker binary (default: dcompact-worker beside this program).
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Sides to run each round, in order: in-child, socket, ring.
    #[arg(long, value_delimiter = ',', default_value = "in-child,socket,ring")]
    sides: Vec<String>,
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
    /// blocks_in_flight of the zipserver sides (ZIP_SERVER_OPTIONS).
    #[arg(long, default_value_t = 4)]
    in_flight: u32,
    /// server_spin of the zipserver sides, microseconds.
    #[arg(long, default_value_t = 50)]
    server_spin_us: u64,
    /// client_spin of the zipserver sides, microseconds.
    #[arg(long, default_value_t = 0)]
    client_spin_us: u64,
    /// pin_threads=false on the zipserver sides: compression threads not
    /// pinned, children not routed to the thread on their CPU.
    #[arg(long)]
    no_pin: bool,
    /// memory_budget of the zipserver sides.
    #[arg(long, default_value = "256M")]
    memory_budget: String,
    /// Operations written to build the captured input (its size).
    #[arg(long, default_value_t = 100_000)]
    ops: u64,
    /// The hoster's compression: snappy, lz4 or zstd.
    #[arg(long, default_value = "snappy")]
    compression: String,
    /// The hoster's table block size, bytes.
    #[arg(long, default_value_t = 4096)]
    block_size: usize,
    /// The in-child side uses FarmZipServer with no zipserver listening, so
    /// every block falls back in-process: the cost of the manager and of
    /// RocksDB's parallel compression without the zipserver.
    #[arg(long)]
    baseline_fallback: bool,
    /// Share of each value that is compressible text (0: random bytes,
    /// which the codecs give up on quickly).
    #[arg(long, default_value_t = 0.5)]
    compressible: f64,
    /// CHILD_NICE of every side's worker.
    #[arg(long, default_value_t = 0)]
    child_nice: u32,
    /// CPU sampling period of the zipserver, milliseconds.
    #[arg(long, default_value_t = 250)]
    sample_ms: u64,
}

impl Args {
    fn worker_bin(&self) -> PathBuf {
        self.worker_bin.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .map(|p| p.with_file_name("dcompact-worker"))
                .unwrap_or_else(|_| PathBuf::from("dcompact-worker"))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    InChild,
    Socket,
    Ring,
}

impl Side {
    fn parse(s: &str) -> anyhow::Result<Side> {
        Ok(match s {
            "in-child" => Side::InChild,
            "socket" => Side::Socket,
            "ring" => Side::Ring,
            other => bail!("--sides: {other:?} is not in-child, socket or ring"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::InChild => "in-child",
            Side::Socket => "socket",
            Side::Ring => "ring",
        }
    }
}

fn compression(name: &str) -> anyhow::Result<rocksdb::DBCompressionType> {
    Ok(match name {
        "snappy" => rocksdb::DBCompressionType::Snappy,
        "lz4" => rocksdb::DBCompressionType::Lz4,
        "zstd" => rocksdb::DBCompressionType::Zstd,
        other => bail!("--compression {other:?}: expected snappy, lz4 or zstd"),
    })
}

/// Every round of one side.
#[derive(Default)]
struct Totals {
    rounds: Vec<round::Round>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sides: Vec<Side> = args
        .sides
        .iter()
        .map(|s| Side::parse(s))
        .collect::<Result<_, _>>()?;
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
    opts.set_compression_type(compression(&args.compression)?);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_size(args.block_size);
    opts.set_block_based_table_factory(&table);
    let captured = capture_input(&dir, opts, &spec).context("capturing a compaction input")?;
    println!(
        "input: {} operations ({:.0}% of each value compressible), {} compression, {} B blocks; {} attempts per round and side, MAX_PARALLEL_COMPACTIONS={}, CHILD_NICE={}, zipserver num_threads={} blocks_in_flight={} server_spin={}us client_spin={}us pin_threads={} memory_budget={}; load {:.2}",
        args.ops, args.compressible * 100.0, args.compression, args.block_size, args.attempts, args.parallel,
        args.child_nice, args.threads, args.in_flight, args.server_spin_us, args.client_spin_us,
        !args.no_pin, args.memory_budget, machine::load()
    );
    let mut totals: Vec<Totals> = sides.iter().map(|_| Totals::default()).collect();
    for r in 0..args.rounds {
        for (i, side) in sides.iter().enumerate() {
            let load = machine::load();
            let round = round::run(&dir, &captured, *side, r, &args)?;
            print_round(r, *side, &round, load, &args);
            totals[i].rounds.push(round);
        }
    }
    summary(&sides, &totals, &args);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn print_round(r: u32, side: Side, round: &round::Round, load: f64, args: &Args) {
    let secs = round.wall.as_secs_f64();
    let s = &round.spent;
    print!(
        "round {r} {:<8} wall {:7.3} s {:6.2} attempts/s {:7.1} MiB/s read, cpu {:.3} s/attempt (zipserver {:.3}) | {:6.0} cs/s, kernel {:4.1}% user {:4.1}% idle {:4.1}%, load {load:.2}",
        side.name(),
        secs,
        args.attempts as f64 / secs,
        round.bytes_read as f64 / (1 << 20) as f64 / secs,
        round.cpu / args.attempts as f64,
        round.zip_cpu / args.attempts as f64,
        s.context_switches as f64 / s.secs.max(1e-9),
        s.kernel * 100.0,
        s.user * 100.0,
        s.idle * 100.0,
    );
    if let Some(z) = &round.zip {
        let blocks = (z.remote_blocks + z.fallback_blocks).max(1);
        print!(
            " | {:.2} cs/block, {:.2} IPIs/block; zipserver cpu max {:.2} cores, mean {:.2}; blocks remote {} (ring {}) fallback {}; sleeps {:.2}/block, wake-ups {:.3}/block; budget max {} B, rss max {} MiB; bytes in {} out {}",
            s.context_switches as f64 / blocks as f64,
            s.ipis as f64 / blocks as f64,
            z.max_cores, z.mean_cores, z.remote_blocks, z.ring_blocks, z.fallback_blocks,
            z.sleeps as f64 / blocks as f64, z.wakeups as f64 / blocks as f64,
            z.budget_max, z.peak_rss >> 20, z.bytes_in, z.bytes_out
        );
    }
    println!();
}

fn summary(sides: &[Side], totals: &[Totals], args: &Args) {
    // Every side compacts the same input into the same blocks: the block
    // count of a zipserver round stands for the in-child rounds too.
    let blocks = totals
        .iter()
        .flat_map(|t| &t.rounds)
        .find_map(|r| r.zip.as_ref().map(|z| z.remote_blocks + z.fallback_blocks))
        .unwrap_or(0);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let walls: Vec<f64> = totals
        .iter()
        .map(|t| {
            mean(
                &t.rounds
                    .iter()
                    .map(|r| r.wall.as_secs_f64())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let cpus: Vec<f64> = totals
        .iter()
        .map(|t| mean(&t.rounds.iter().map(|r| r.cpu).collect::<Vec<_>>()))
        .collect();
    let base = sides.iter().position(|s| *s == Side::InChild);
    for (i, side) in sides.iter().enumerate() {
        let rounds = &totals[i].rounds;
        let cs = mean(
            &rounds
                .iter()
                .map(|r| r.spent.context_switches as f64)
                .collect::<Vec<_>>(),
        );
        let kernel = mean(&rounds.iter().map(|r| r.spent.kernel).collect::<Vec<_>>());
        let ipis = mean(
            &rounds
                .iter()
                .map(|r| r.spent.ipis as f64)
                .collect::<Vec<_>>(),
        );
        print!(
            "{:<8} {:.2} attempts/s",
            side.name(),
            args.attempts as f64 / walls[i]
        );
        if let Some(b) = base {
            print!(
                ", ratio to in-child {:.3}; cpu {:.3} s/attempt, in-child/this {:.3}",
                walls[b] / walls[i],
                cpus[i] / args.attempts as f64,
                cpus[b] / cpus[i]
            );
        }
        print!(
            "; {:.2} cs/block, {:.2} IPIs/block, kernel {:.1}% of CPU",
            cs / blocks.max(1) as f64,
            ipis / blocks.max(1) as f64,
            kernel * 100.0
        );
        let zips: Vec<&round::ZipFigures> = rounds.iter().filter_map(|r| r.zip.as_ref()).collect();
        if !zips.is_empty() {
            let max = zips.iter().map(|z| z.max_cores).fold(0.0, f64::max);
            let fallback: u64 = zips.iter().map(|z| z.fallback_blocks).sum();
            let budget = zips.iter().map(|z| z.budget_max).max().unwrap_or(0);
            print!(
                "; zipserver cpu never above {max:.2} cores (num_threads={}), fallback blocks {fallback}, budget max {budget} B of {}",
                args.threads, args.memory_budget
            );
        }
        println!();
    }
}
