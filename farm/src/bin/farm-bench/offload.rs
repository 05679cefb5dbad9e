//! `farm-bench offload`: does the offload pay? A db_bench-style writer
//! (`writer.rs`: fillrandom, then overwrite) against one database, in
//! rounds that alternate the modes side by side in one invocation:
//!
//! - `local`: the hoster alone, compactions local, pinned to the writer's
//!   cores;
//! - `farm-inproc` and `farm-multi`: the same hoster pinned the same way,
//!   its compactions sent to a `dcompact-worker` pinned to the other cores,
//!   attempts in-process or in a child each (`MULTI_PROCESS`);
//! - `direct`: the same compactions run by `OpenAndCompact` on threads
//!   pinned to the other cores, with no farm in between (the floor for the
//!   farm's own overhead);
//! - `no-compaction`: the hoster alone with `disable_auto_compactions`
//!   (no compaction anywhere, no stall on level 0's file count): what is
//!   left is the writer, the WAL, the memtables and the flushes, the floor
//!   of the hoster's CPU that no offload can go below.
//!
//! Reported per round and mode: ingest throughput, hoster CPU-seconds per
//! GiB ingested (this process's `getrusage`, less the direct threads),
//! worker CPU-seconds per GiB (the worker and its children, from
//! `RUSAGE_CHILDREN` once it is stopped), write-stall time
//! (`rocksdb.stall.micros`) and its causes, put latency p50/p99, write
//! amplification, and compactions run remotely and locally. The remote
//! jobs' timings (the hoster's calls, the attempts' `timings` lines) show
//! where a job's time goes. Plots go to `--plots` (SVG).
//!
//! Every directory is a fresh one below the system's temporary directory
//! and is removed at the end; every worker is stopped at the end of its
//! round.

use crate::attempt_logs::{self, AttemptRecord};
use crate::bench_db::{wait_settled, DbFigures, DbSpec, MERGE_FAMILY};
use crate::direct::DirectService;
use crate::latency::{percentile, Histogram};
use crate::pin::CpuSet;
use crate::timed::{HosterJob, Timed};
use crate::writer::{self, WriterRun, WriterSpec};
use anyhow::Context;
use farm::hoster::config::HosterConfig;
use farm::hoster::stats::StatsSnapshot;
use farm::hoster::FarmService;
use farm::rocks::service::{self, CompactionService, JobInfo, ScheduleAnswer, WaitAnswer};
use farm::worker::local::LocalWorker;
use rocksdb::DBCompressionType;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct OffloadArgs {
    /// Keys per phase (fillrandom writes this many, overwrite as many again).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Writes per phase (default: --keys).
    #[arg(long)]
    ops: Option<u64>,
    #[arg(long, default_value_t = 200)]
    value_size: usize,
    /// none, snappy, lz4, zstd.
    #[arg(long, default_value = "zstd")]
    compression: String,
    /// Level 0's compression, what flushes write (default: --compression).
    #[arg(long)]
    l0_compression: Option<String>,
    /// Column families written round robin.
    #[arg(long, default_value_t = 1)]
    families: usize,
    /// Adds a merge-operator family (`counters`, the `counter` plugin) and
    /// makes every n-th operation a merge into it (0: no merge family).
    #[arg(long, default_value_t = 0)]
    merge_every: u64,
    #[arg(long, default_value_t = 8)]
    write_buffer_mib: usize,
    #[arg(long, default_value_t = 8)]
    target_file_mib: u64,
    #[arg(long, default_value_t = 32)]
    level_base_mib: u64,
    /// RocksDB's max_background_jobs in every mode.
    #[arg(long, default_value_t = 2)]
    background_jobs: i32,
    /// The hoster's `max_background_jobs` param in the farm modes (what
    /// `farm::hoster::enable` raises the DB's setting to), and the setting
    /// of the direct mode; 0 leaves them at --background-jobs.
    #[arg(long, default_value_t = 8)]
    offload_background_jobs: i32,
    #[arg(long, default_value_t = 1)]
    subcompactions: u32,
    /// The writer's (and the hoster's) cores.
    #[arg(long, default_value = "0")]
    writer_cpus: CpuSet,
    /// The worker's cores (and the direct mode's compaction threads).
    #[arg(long, default_value = "1")]
    worker_cpus: CpuSet,
    /// MAX_PARALLEL_COMPACTIONS of the worker.
    #[arg(long, default_value_t = 2)]
    worker_parallel: u32,
    /// The hoster's verify_output.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    verify_output: bool,
    /// The hoster's probe_wait: seconds a worker may hold a probe (0: probe
    /// with pauses of 5 ms doubling to 100 ms).
    #[arg(long, default_value_t = 1.0)]
    probe_wait: f64,
    /// The hoster's `flush_compression` param in the farm modes (what
    /// flushes write; the other levels keep --compression), and the same in
    /// the direct and no-compaction modes; the local mode keeps the DB's
    /// options (default: the param unset).
    #[arg(long)]
    farm_flush_compression: Option<String>,
    /// Modes, in the order each round runs them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "local,farm-inproc,farm-multi,direct"
    )]
    modes: Vec<Mode>,
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Where to write the SVG plots (none without it).
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Prints each remote job's timings.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Local,
    FarmInproc,
    FarmMulti,
    Direct,
    NoCompaction,
}

impl Mode {
    /// Every mode, in the order reports and plots show them.
    pub const ALL: [Mode; 5] = [
        Mode::Local,
        Mode::FarmInproc,
        Mode::FarmMulti,
        Mode::Direct,
        Mode::NoCompaction,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::FarmInproc => "farm-inproc",
            Mode::FarmMulti => "farm-multi",
            Mode::Direct => "direct",
            Mode::NoCompaction => "no-compaction",
        }
    }

    fn worker(self) -> Option<bool> {
        match self {
            Mode::FarmInproc => Some(false),
            Mode::FarmMulti => Some(true),
            _ => None,
        }
    }
}

/// One mode's run in one round.
pub struct ModeRun {
    pub mode: Mode,
    pub writer: WriterRun,
    /// From the first write until no flush or compaction is left.
    pub settled: Duration,
    /// CPU of the hoster: this process, less the direct threads.
    pub hoster_cpu: Duration,
    /// CPU of the worker and its children (direct: the compaction threads).
    pub worker_cpu: Duration,
    pub figures: DbFigures,
    pub remote: u64,
    pub local: u64,
    pub jobs: Vec<HosterJob>,
    pub attempts: Vec<AttemptRecord>,
    pub farm: Option<StatsSnapshot>,
}

impl ModeRun {
    pub fn gib(&self) -> f64 {
        self.writer.bytes as f64 / (1u64 << 30) as f64
    }

    pub fn hoster_cpu_per_gib(&self) -> f64 {
        self.hoster_cpu.as_secs_f64() / self.gib()
    }

    pub fn worker_cpu_per_gib(&self) -> f64 {
        self.worker_cpu.as_secs_f64() / self.gib()
    }
}

fn compression(name: &str) -> anyhow::Result<DBCompressionType> {
    farm::rocks::options::compression_named(name).with_context(|| {
        format!("unknown compression {name:?}: expected none, snappy, lz4 or zstd")
    })
}

/// A service that counts the compactions RocksDB offers and runs each
/// locally: the local mode's compaction count, at the cost of one callback.
struct CountLocal;

impl CompactionService for CountLocal {
    fn schedule(&self, _: &JobInfo, _: &[u8]) -> ScheduleAnswer {
        ScheduleAnswer::UseLocal
    }
    fn wait(&self, _: &str) -> WaitAnswer {
        WaitAnswer::UseLocal
    }
    fn cancel_awaiting(&self) {}
    fn on_installation(&self, _: &str, _: farm::rocks::service::InstallStatus) {}
    fn release(&self, _: &str) {}
}

pub fn run(worker_bin: &Path, args: &OffloadArgs) -> anyhow::Result<()> {
    args.writer_cpus
        .pin_current_thread()
        .context("pinning to --writer-cpus")?;
    let dir = std::env::temp_dir().join(format!("farm-bench-offload-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = rounds(worker_bin, args, &dir);
    std::fs::remove_dir_all(&dir).ok();
    let runs = result?;
    crate::offload_report::print(args, &runs);
    if let Some(out) = &args.plots {
        crate::plots::draw(out, &runs).context("drawing the plots")?;
        println!("plots written to {}", out.display());
    }
    Ok(())
}

fn rounds(worker_bin: &Path, args: &OffloadArgs, dir: &Path) -> anyhow::Result<Vec<ModeRun>> {
    let base = DbSpec {
        write_buffer_size: args.write_buffer_mib << 20,
        target_file_size: args.target_file_mib << 20,
        level_base: args.level_base_mib << 20,
        compression: compression(&args.compression)?,
        l0_compression: args
            .l0_compression
            .as_deref()
            .map(compression)
            .transpose()?,
        background_jobs: args.background_jobs,
        subcompactions: args.subcompactions,
        families: args.families,
        merge: args.merge_every > 0,
    };
    println!(
        "offload: {} writes over {} keys x 2 phases, {} B values, {} (L0 {}), {} famil{}{}, memtable {} MiB, \
         background jobs {} (offloaded: {}), writer on CPUs {}, worker on CPUs {}, \
         MAX_PARALLEL_COMPACTIONS={}, verify_output={}, probe_wait={} s, farm flush_compression {}",
        args.ops.unwrap_or(args.keys),
        args.keys,
        args.value_size,
        args.compression,
        args.l0_compression.as_deref().unwrap_or(&args.compression),
        base.families,
        if base.families == 1 { "y" } else { "ies" },
        if base.merge {
            format!(" + {MERGE_FAMILY} (merge every {})", args.merge_every)
        } else {
            String::new()
        },
        args.write_buffer_mib,
        args.background_jobs,
        args.offload_background_jobs.max(args.background_jobs),
        args.writer_cpus,
        args.worker_cpus,
        args.worker_parallel,
        args.verify_output,
        args.probe_wait,
        args.farm_flush_compression.as_deref().unwrap_or("unset"),
    );
    if let Some(c) = &args.farm_flush_compression {
        compression(c)?;
    }
    let mut runs = Vec::new();
    for round in 0..args.rounds {
        for &mode in &args.modes {
            let mut spec = base.clone();
            if mode == Mode::Direct {
                spec.background_jobs = spec.background_jobs.max(args.offload_background_jobs);
            }
            let here = dir.join(format!("r{round}-{}", mode.name()));
            let r = run_mode(worker_bin, args, &spec, mode, round, &here)
                .with_context(|| format!("round {round}, {}", mode.name()))?;
            crate::offload_report::round_line(round, &r);
            std::fs::remove_dir_all(&here).ok();
            runs.push(r);
        }
    }
    Ok(runs)
}

/// Starts a worker pinned to the worker's cores: the spawning thread
/// carries that mask for the moment of the spawn, so the worker inherits it.
fn start_worker(
    worker_bin: &Path,
    args: &OffloadArgs,
    multi: bool,
    dir: &Path,
    hoster_root: &Path,
) -> anyhow::Result<LocalWorker> {
    let mut env = vec![
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("MULTI_PROCESS", multi.to_string()),
        ("MAX_PARALLEL_COMPACTIONS", args.worker_parallel.to_string()),
        ("MAX_WAITING_COMPACTIONS", "64".into()),
        ("DEL_WORKER_TEMP_DB", "false".into()),
        ("OUTPUT_SPACE_MARGIN", "64M".into()),
        ("HOSTER_ROOTS", hoster_root.display().to_string()),
        ("RUST_LOG", "warn".into()),
    ];
    if args.merge_every > 0 {
        let so = worker_bin.with_file_name("libcounter.so");
        env.push(("PLUGINS", so.display().to_string()));
    }
    args.worker_cpus.pin_current_thread()?;
    let worker = LocalWorker::start(worker_bin, &env);
    args.writer_cpus.pin_current_thread()?;
    Ok(worker?)
}

fn run_mode(
    worker_bin: &Path,
    args: &OffloadArgs,
    spec: &DbSpec,
    mode: Mode,
    round: u32,
    dir: &Path,
) -> anyhow::Result<ModeRun> {
    let hoster_root = dir.join("data");
    let db_path = hoster_root.join("db");
    std::fs::create_dir_all(&hoster_root)?;
    let mut worker = match mode.worker() {
        Some(multi) => Some(start_worker(worker_bin, args, multi, dir, &hoster_root)?),
        None => None,
    };
    let mut opts = spec.options();
    // The farm modes get it through the hoster's tuning.
    if let (Mode::Direct | Mode::NoCompaction, Some(c)) = (mode, &args.farm_flush_compression) {
        farm::rocks::options::set_flush_compression(&mut opts, compression(c)?);
    }
    let mut farm = None;
    let mut direct = None;
    let inner: Arc<dyn CompactionService> = match (&worker, mode) {
        (Some(w), _) => {
            let params = serde_json::json!({
                "http_workers": [w.base_url()],
                "hoster_root": hoster_root.display().to_string(),
                "instance_name": format!("offload{round}"),
                "verify_output": args.verify_output,
                "probe_wait": args.probe_wait,
                "max_background_jobs": args.offload_background_jobs,
                "flush_compression": args.farm_flush_compression,
            });
            let config = HosterConfig::from_json(&params.to_string())?;
            // What `farm::hoster::enable` does besides installing the service.
            farm::hoster::tuning::apply(&mut opts, &config);
            let f = Arc::new(FarmService::new(config, &db_path.display().to_string())?);
            farm = Some(f.clone());
            f
        }
        (None, Mode::Direct) => {
            if args.merge_every > 0 {
                farm::rocks::plugins::load(&worker_bin.with_file_name("libcounter.so"))?;
            }
            let d = Arc::new(DirectService::new(
                db_path.clone(),
                args.worker_cpus.clone(),
            ));
            direct = Some(d.clone());
            d
        }
        (None, Mode::NoCompaction) => {
            opts.set_disable_auto_compactions(true);
            Arc::new(CountLocal)
        }
        (None, _) => Arc::new(CountLocal),
    };
    let timed = Arc::new(Timed::new(inner));
    service::install(&mut opts, timed.clone());
    let children0 = farm::workload::cpu::children();
    let cpu0 = farm::workload::cpu::process();
    let started = Instant::now();
    let db = spec.open(&db_path, &opts)?;
    let names = spec.family_names();
    let families: Vec<_> = names
        .iter()
        .map(|n| db.cf_handle(n).context("column family"))
        .collect::<anyhow::Result<_>>()?;
    let merge = db.cf_handle(MERGE_FAMILY);
    let wspec = WriterSpec {
        keys: args.keys,
        ops: args.ops.unwrap_or(args.keys),
        value_size: args.value_size,
        merge_every: args.merge_every,
        seed: 42 + round as u64,
        sample: Duration::from_millis(250),
    };
    let writer = writer::run(&db, &families, merge, &wspec)?;
    wait_settled(&db, Duration::from_secs(1800), mode != Mode::NoCompaction)?;
    let settled = started.elapsed();
    let direct_cpu = direct
        .as_ref()
        .map_or(0, |d| d.shared.cpu_micros.load(Ordering::Relaxed));
    let hoster_cpu =
        (farm::workload::cpu::process() - cpu0).saturating_sub(Duration::from_micros(direct_cpu));
    let figures = DbFigures::read(&db, &opts, spec);
    drop(families);
    drop(db);
    let stats = farm.as_ref().map(|f| f.stats());
    let mut attempts = Vec::new();
    if let Some(w) = worker.as_mut() {
        anyhow::ensure!(
            w.stop(Duration::from_secs(60)),
            "the worker did not stop within 60 s"
        );
        attempts = attempt_logs::read_all(&dir.join("worker"));
    }
    let worker_cpu = match &direct {
        Some(_) => Duration::from_micros(direct_cpu),
        None => farm::workload::cpu::children().saturating_sub(children0),
    };
    let jobs = timed.jobs();
    let (remote, local) = match (&stats, &direct) {
        (Some(s), _) => (s.remote_installed, s.local_total()),
        (None, Some(d)) => (
            jobs.iter().filter(|j| j.success).count() as u64,
            d.shared.failures.load(Ordering::Relaxed),
        ),
        (None, None) => (0, timed.local_at_schedule()),
    };
    Ok(ModeRun {
        mode,
        writer,
        settled,
        hoster_cpu,
        worker_cpu,
        figures,
        remote,
        local,
        jobs,
        attempts,
        farm: stats,
    })
}

/// Merged put latencies of a mode over every round.
pub fn latencies(runs: &[ModeRun], mode: Mode) -> Histogram {
    let mut h = Histogram::default();
    runs.iter()
        .filter(|r| r.mode == mode)
        .for_each(|r| h.merge(&r.writer.latency));
    h
}

/// The p50 of `f` over the values it gives.
pub fn p50(values: impl Iterator<Item = u64>) -> Option<u64> {
    let mut v: Vec<u64> = values.collect();
    percentile(&mut v, 0.5)
}
