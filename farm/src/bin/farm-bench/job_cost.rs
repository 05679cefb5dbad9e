//! `farm-bench job-cost`: the fixed cost of one remote job, and the farm's
//! compaction throughput against `OpenAndCompact` called directly.
//!
//! One compaction input (two overlapping L0 files, `--ops` operations each,
//! captured by `farm::workload::capture`) is compacted `--attempts` times
//! per round and mode, one job at a time, modes alternating:
//!
//! - `direct`: `OpenAndCompact` in this process, on a thread pinned to the
//!   worker's cores: the floor;
//! - `farm-inproc`, `farm-multi`: through the hoster's `FarmService`
//!   (`schedule`, `wait`, `on_installation`, as RocksDB calls them) to a
//!   worker pinned to the worker's cores, attempts in-process or in a child.
//!
//! Each farm job is split into its parts from the attempt's own `timings`
//! line (`farm::worker::timings`) and the hoster's clock: submission (HTTP
//! and admission), queue, spawn, the child's start, the secondary open,
//! the compaction, persisting the result, the child's exit, the hoster
//! noticing the end and fetching the result, verification. The fixed cost
//! is the sum of the parts in the hoster's wait but the secondary open and
//! the compaction (a child's exit and what follows it come after its
//! delivery, so they are not in the wait). It is summed from the parts, not
//! taken as the job's wall time less the compaction: on a shared VM the
//! compaction alone varies by more than the whole fixed cost.

use crate::attempt_logs::{self, AttemptRecord};
use crate::latency::percentile;
use crate::pin::CpuSet;
use anyhow::{bail, Context};
use farm::hoster::config::HosterConfig;
use farm::hoster::FarmService;
use farm::rocks::open_and_compact::{open_and_compact, CancelFlag, Override};
use farm::rocks::serialized::{InputInfo, ResultInfo};
use farm::rocks::service::{CompactionService, InstallStatus, ScheduleAnswer, WaitAnswer};
use farm::worker::local::LocalWorker;
use farm::worker::timings::now_us;
use farm::workload::capture::{capture_input, Captured};
use farm::workload::WorkloadSpec;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct JobCostArgs {
    /// Operations in each of the two input files (150000: a job of about
    /// 64 MiB).
    #[arg(long, default_value_t = 150_000)]
    ops: u64,
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The hoster's cores (this process).
    #[arg(long, default_value = "0")]
    hoster_cpus: CpuSet,
    /// The worker's cores, and the direct mode's compaction thread.
    #[arg(long, default_value = "1")]
    worker_cpus: CpuSet,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    verify_output: bool,
    /// The hoster's probe_wait in the farm modes (seconds a worker may
    /// hold a probe); `farm-multi-paced` always probes with pauses (0).
    #[arg(long, default_value_t = 1.0)]
    probe_wait: f64,
    /// Modes, in the order each round runs them: direct, farm-inproc,
    /// farm-multi, farm-multi-paced (MULTI_PROCESS, probe_wait 0),
    /// farm-multi-blocks (MULTI_PROCESS, the hoster checking block
    /// checksums instead of whole-file checksums), farm-multi-cold
    /// (MULTI_PROCESS with `CHILD_SPARES=0`: each child forked when its
    /// attempt comes).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,farm-inproc,farm-multi"
    )]
    modes: Vec<String>,
    /// Prints each job's parts.
    #[arg(long)]
    verbose: bool,
}

/// How a farm mode runs its worker and hoster.
#[derive(Debug, Clone, Copy)]
struct FarmMode {
    /// `MULTI_PROCESS`: each attempt in a child.
    multi: bool,
    /// The hoster's `probe_wait`.
    probe_wait: f64,
    /// The hoster's `verify_output_blocks`: block checksums instead of the
    /// whole-file checksum.
    blocks: bool,
    /// The worker's `CHILD_SPARES` is 0.
    cold: bool,
}

/// One farm job as the hoster saw it.
struct FarmJob {
    db_job: u32,
    start_us: u64,
    scheduled_us: u64,
    wait_end_us: u64,
    verify_us: u64,
    hoster_cpu: Duration,
}

#[derive(Default)]
struct Side {
    /// Wall time of each job: direct, the `OpenAndCompact` call; farm,
    /// `schedule` to `wait` returning the verified result.
    walls: Vec<u64>,
    /// Farm only: each job's parts, by name.
    parts: Vec<Vec<(&'static str, Option<u64>)>>,
    hoster_cpu: Vec<u64>,
}

pub fn run(worker_bin: &Path, args: &JobCostArgs) -> anyhow::Result<()> {
    args.hoster_cpus.pin_current_thread()?;
    let dir = std::env::temp_dir().join(format!("farm-bench-job-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(worker_bin, args, &dir);
    std::fs::remove_dir_all(&dir).ok();
    result
}

fn capture(dir: &Path, ops: u64) -> anyhow::Result<Captured> {
    let spec = WorkloadSpec {
        ops,
        key_space: ops * 2,
        value_size: 200,
        delete_every: 0,
        range_delete_every: 0,
        compressible: 0.5,
        ..WorkloadSpec::default()
    };
    let mut opts = rocksdb::Options::default();
    opts.set_write_buffer_size(1 << 30);
    opts.set_compression_type(rocksdb::DBCompressionType::Zstd);
    capture_input(dir, opts, &spec).context("capturing a compaction input")
}

fn measure(worker_bin: &Path, args: &JobCostArgs, dir: &Path) -> anyhow::Result<()> {
    let captured = capture(dir, args.ops)?;
    let info = InputInfo::parse(&captured.input)?;
    let db = captured.root.join("db");
    let input_bytes: u64 = info
        .input_files
        .iter()
        .filter_map(|f| std::fs::metadata(db.join(f.trim_start_matches('/'))).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "job-cost: input {:.1} MiB in {} files (zstd), {} jobs per round and mode, one at a time, \
         hoster on CPUs {}, worker on CPUs {}, verify_output={}",
        input_bytes as f64 / (1 << 20) as f64,
        info.input_files.len(),
        args.attempts,
        args.hoster_cpus,
        args.worker_cpus,
        args.verify_output
    );
    let modes: Vec<&str> = args.modes.iter().map(String::as_str).collect();
    if modes.first() != Some(&"direct") {
        bail!("--modes must start with direct, the baseline");
    }
    let mut sides: Vec<Side> = modes.iter().map(|_| Side::default()).collect();
    for round in 0..args.rounds {
        for (i, mode) in modes.iter().enumerate() {
            let before = sides[i].walls.len();
            let side = &mut sides[i];
            match *mode {
                "direct" => direct_round(args, &captured, round, side)?,
                "farm-inproc" | "farm-multi" | "farm-multi-paced" | "farm-multi-blocks"
                | "farm-multi-cold" => {
                    let mode = FarmMode {
                        multi: *mode != "farm-inproc",
                        probe_wait: if *mode == "farm-multi-paced" {
                            0.0
                        } else {
                            args.probe_wait
                        },
                        blocks: *mode == "farm-multi-blocks",
                        cold: *mode == "farm-multi-cold",
                    };
                    farm_round(worker_bin, args, &captured, round, mode, dir, side)?
                }
                other => bail!("unknown mode {other:?}"),
            }
            let mut walls = sides[i].walls[before..].to_vec();
            println!(
                "round {round} {mode:<11} job p50 {:>8.1} ms  {:>6.1} MiB/s",
                percentile(&mut walls, 0.5).unwrap_or(0) as f64 / 1000.0,
                mib_s(input_bytes, percentile(&mut walls, 0.5).unwrap_or(1)),
            );
        }
    }
    report(&modes, &mut sides, input_bytes, args.verbose);
    Ok(())
}

fn mib_s(bytes: u64, us: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / (us.max(1) as f64 / 1e6)
}

fn direct_round(
    args: &JobCostArgs,
    captured: &Captured,
    round: u32,
    side: &mut Side,
) -> anyhow::Result<()> {
    let db = captured.root.join("db");
    let info = InputInfo::parse(&captured.input)?;
    let options = db.join(format!("OPTIONS-{:06}", info.options_file_number));
    let cpus = args.worker_cpus.clone();
    let (input, attempts) = (captured.input.clone(), args.attempts);
    let out_root = db.join("out");
    let jobs = std::thread::spawn(move || -> anyhow::Result<Vec<(u64, u64)>> {
        cpus.pin_current_thread()?;
        let mut jobs = Vec::new();
        for a in 0..attempts {
            let out = out_root.join(format!("direct-{round}-{a}"));
            std::fs::create_dir_all(&out)?;
            let mut ov = Override::from_options_file(&options, &info.cf_name)?;
            ov.set_info_log(&out.with_extension("LOG"))?;
            let t = now_us();
            let r = open_and_compact(&db, &out, &input, &ov, &CancelFlag::new(), false)?;
            let wall = now_us() - t;
            let compaction = ResultInfo::parse(&r)?.stats.micros;
            jobs.push((wall, compaction));
            std::fs::remove_dir_all(&out)?;
        }
        Ok(jobs)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the direct thread panicked"))??;
    for (wall, compaction) in jobs {
        side.walls.push(wall);
        side.parts.push(vec![
            ("secondary_open", Some(wall.saturating_sub(compaction))),
            ("compaction", Some(compaction)),
        ]);
    }
    Ok(())
}

fn farm_round(
    worker_bin: &Path,
    args: &JobCostArgs,
    captured: &Captured,
    round: u32,
    mode: FarmMode,
    dir: &Path,
    side: &mut Side,
) -> anyhow::Result<()> {
    let FarmMode {
        multi,
        probe_wait,
        blocks,
        cold,
    } = mode;
    let root = dir.join(format!(
        "worker-{round}-{multi}-{probe_wait}-{blocks}-{cold}"
    ));
    args.worker_cpus.pin_current_thread()?;
    let worker = LocalWorker::start(
        worker_bin,
        &[
            ("WORKER_DB_ROOT", root.display().to_string()),
            ("MULTI_PROCESS", multi.to_string()),
            ("CHILD_SPARES", if cold { "0" } else { "1" }.into()),
            ("MAX_PARALLEL_COMPACTIONS", "1".into()),
            ("DEL_WORKER_TEMP_DB", "false".into()),
            ("OUTPUT_SPACE_MARGIN", "1M".into()),
            ("HOSTER_ROOTS", captured.root.display().to_string()),
            ("RUST_LOG", "warn".into()),
        ],
    );
    args.hoster_cpus.pin_current_thread()?;
    let mut worker = worker?;
    let params = serde_json::json!({
        "http_workers": [worker.base_url()],
        "hoster_root": captured.root.display().to_string(),
        "instance_name": format!("cost{round}{}{}{}{}", if multi { "m" } else { "i" }, (probe_wait * 1000.0) as u64, if blocks { "b" } else { "" }, if cold { "c" } else { "" }),
        "verify_output": args.verify_output,
        "verify_output_blocks": blocks,
        "probe_wait": probe_wait,
        "http_timeout": 30,
    });
    let service = FarmService::new(
        HosterConfig::from_json(&params.to_string())?,
        &captured.root.join("db").display().to_string(),
    )?;
    let mut jobs = Vec::new();
    for a in 0..args.attempts {
        let mut info = captured.info.clone();
        info.job_id = ((a as u64 + 1) << 32) | info.sub_job_id() as u64;
        let (cpu0, verify0, start_us) = (
            farm::workload::cpu::thread(),
            service.stats().verify_micros,
            now_us(),
        );
        let ScheduleAnswer::Scheduled(id) = service.schedule(&info, &captured.input) else {
            bail!(
                "the farm did not take the job: {:?}",
                service.stats().last_errors
            );
        };
        let scheduled_us = now_us();
        let WaitAnswer::Success(_) = service.wait(&id) else {
            bail!(
                "the farm answered use-local: {:?}",
                service.stats().last_errors
            );
        };
        let wait_end_us = now_us();
        let hoster_cpu = farm::workload::cpu::thread() - cpu0;
        service.on_installation(&id, InstallStatus::Success);
        jobs.push(FarmJob {
            db_job: info.db_job_id(),
            start_us,
            scheduled_us,
            wait_end_us,
            verify_us: service.stats().verify_micros - verify0,
            hoster_cpu,
        });
    }
    drop(service);
    anyhow::ensure!(
        worker.stop(Duration::from_secs(30)),
        "the worker did not stop"
    );
    let attempts = attempt_logs::read_all(&root);
    std::fs::remove_dir_all(&root).ok();
    for j in jobs {
        let a = attempts
            .iter()
            .find(|a| a.db_job == j.db_job)
            .with_context(|| format!("no timings for job {}", j.db_job))?;
        side.walls.push(j.wait_end_us - j.start_us);
        side.hoster_cpu.push(j.hoster_cpu.as_micros() as u64);
        side.parts.push(parts(&j, a));
    }
    Ok(())
}

/// A farm job's parts: the hoster's around the worker's.
fn parts(j: &FarmJob, a: &AttemptRecord) -> Vec<(&'static str, Option<u64>)> {
    let t = &a.timings;
    let admission = t.admitted_us.zip(t.received_us).map(|(e, s)| e - s);
    let mut p = vec![(
        "submit_http",
        admission.map(|adm| (j.scheduled_us - j.start_us).saturating_sub(adm)),
    )];
    p.extend(t.parts());
    // From when `/probe` began to answer the end (a child's delivery, or
    // the attempt's end) to the hoster holding the decoded result.
    let notice = t
        .answered_us()
        .map(|e| (j.wait_end_us.saturating_sub(j.verify_us)).saturating_sub(e));
    p.push(("notice_and_fetch", notice));
    p.push(("verify", Some(j.verify_us)));
    p
}

/// A job's parts in the hoster's wait, but the secondary open and the
/// compaction. A child (it has an `exit` part) delivers its result before
/// it exits: its `exit` and `cleanup` are not in the wait.
fn fixed_cost(parts: &[(&'static str, Option<u64>)]) -> u64 {
    let child = parts.iter().any(|(n, v)| *n == "exit" && v.is_some());
    parts
        .iter()
        .filter(|(n, _)| !matches!(*n, "secondary_open" | "compaction"))
        .filter(|(n, _)| !(child && matches!(*n, "exit" | "cleanup")))
        .filter_map(|(_, v)| *v)
        .sum()
}

fn report(modes: &[&str], sides: &mut [Side], input_bytes: u64, verbose: bool) {
    let direct_p50 = percentile(&mut sides[0].walls, 0.5).unwrap_or(1);
    println!(
        "direct OpenAndCompact: job p50 {:.1} ms, {:.1} MiB/s",
        direct_p50 as f64 / 1000.0,
        mib_s(input_bytes, direct_p50)
    );
    for (mode, side) in modes.iter().zip(sides.iter_mut()).skip(1) {
        let p50 = percentile(&mut side.walls, 0.5).unwrap_or(1);
        let names: Vec<&str> = side
            .parts
            .first()
            .map_or(vec![], |p| p.iter().map(|x| x.0).collect());
        println!(
            "{mode}: job p50 {:.1} ms, {:.1} MiB/s, throughput {mode}/direct {:.3} (goal >= 0.95 for multi), hoster CPU per job p50 {:.2} ms",
            p50 as f64 / 1000.0,
            mib_s(input_bytes, p50),
            direct_p50 as f64 / p50 as f64,
            percentile(&mut side.hoster_cpu, 0.5).unwrap_or(0) as f64 / 1000.0,
        );
        println!("  | part | p50 ms | p90 ms |");
        println!("  | --- | ---: | ---: |");
        for (i, name) in names.iter().enumerate() {
            let mut v: Vec<u64> = side.parts.iter().filter_map(|p| p[i].1).collect();
            let (a, b) = (percentile(&mut v, 0.5), percentile(&mut v, 0.9));
            println!("  | {name} | {} | {} |", fmt_ms(a), fmt_ms(b));
        }
        let mut fixed: Vec<u64> = side.parts.iter().map(|p| fixed_cost(p)).collect();
        // Verification reads every output byte: it grows with the job.
        let mut per_job: Vec<u64> = side
            .parts
            .iter()
            .map(|p| {
                let verify = p.iter().find(|x| x.0 == "verify").and_then(|x| x.1);
                fixed_cost(p).saturating_sub(verify.unwrap_or(0))
            })
            .collect();
        println!(
            "  fixed cost per job (all but the secondary open and the compaction): p50 {} ms, p90 {} ms (goal p50 <= 5 ms); without verification: p50 {} ms",
            fmt_ms(percentile(&mut fixed, 0.5)),
            fmt_ms(percentile(&mut fixed, 0.9)),
            fmt_ms(percentile(&mut per_job, 0.5)),
        );
        if verbose {
            for p in &side.parts {
                let line: Vec<String> = p
                    .iter()
                    .map(|(n, v)| format!("{n}={}", fmt_ms(*v)))
                    .collect();
                println!("    {}", line.join(" "));
            }
        }
    }
}

fn fmt_ms(us: Option<u64>) -> String {
    us.map_or("-".into(), |u| format!("{:.2}", u as f64 / 1000.0))
}
