//! `farm-bench remote-storage`: bytes moved per job and job latency of the
//! HTTP storage mode against the shared-filesystem mode, for DBs with
//! `--ssts` live SSTs (100, 1,000 and 10,000 by default).
//!
//! Each DB holds `--ssts` small bottom-level SSTs (ingested, disjoint
//! keys) beside which each job compacts two fresh, overlapping level-0
//! files of `--ops` keys each (a manual compaction of their key range, so
//! the job's inputs are those two files only). Per DB size and mode,
//! `--jobs` jobs run one after another through one worker
//! (`REMOTE_STORAGE=true`, the hoster's directory also in its
//! `HOSTER_ROOTS` for the shared mode). Printed per job and as medians:
//!
//! - the job's latency: the manual compaction's wall time on the hoster
//!   (schedule, run, verify, install);
//! - its start: from the worker receiving the job to the compaction
//!   starting (admission, queue, child start, secondary open: the
//!   attempt's `timings` without the compaction's own time), and two of its
//!   parts: admission (the file list and OPTIONS fetched and checked in the
//!   HTTP mode) and the secondary open (`OpenAndCompact`'s time beyond
//!   RocksDB's own compaction time);
//! - bytes fetched from the hoster (metadata, inputs) against the bytes
//!   RocksDB read from the inputs.

use crate::attempt_logs;
use anyhow::{bail, Context};
use farm::worker::local::LocalWorker;
use rocksdb::{Options, SstFileWriter, DB};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct RemoteStorageArgs {
    /// Live SSTs of each DB.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    ssts: Vec<u32>,
    /// Keys in each of a job's two input files (100 bytes each).
    #[arg(long, default_value_t = 40_000)]
    ops: u32,
    /// Jobs per DB size and mode.
    #[arg(long, default_value_t = 3)]
    jobs: u32,
    /// Run attempts in children (`MULTI_PROCESS`).
    #[arg(long)]
    multi_process: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Shared,
    Http,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Http => "http",
        }
    }
}

/// One job's figures.
#[derive(Debug, Clone, Default)]
struct JobFigures {
    latency_ms: u64,
    start_ms: u64,
    admission_ms: u64,
    open_ms: u64,
    metadata_bytes: u64,
    input_bytes_fetched: u64,
    bytes_read: u64,
}

pub fn run(worker_bin: &Path, a: &RemoteStorageArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("farm-bench-remote-{}", std::process::id()));
    let outcome = run_in(worker_bin, a, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn run_in(worker_bin: &Path, a: &RemoteStorageArgs, dir: &Path) -> anyhow::Result<()> {
    let root = dir.join("data");
    std::fs::create_dir_all(&root)?;
    let worker_root = dir.join("worker");
    let env = vec![
        ("WORKER_DB_ROOT", worker_root.display().to_string()),
        ("HOSTER_ROOTS", root.display().to_string()),
        ("REMOTE_STORAGE", "true".to_string()),
        ("MULTI_PROCESS", a.multi_process.to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("DEL_WORKER_TEMP_DB", "false".to_string()),
        ("RUST_LOG", "warn".to_string()),
    ];
    let worker = LocalWorker::start(worker_bin, &env).context("worker starts")?;
    println!(
        "remote-storage: {} keys of 100 bytes per input file, {} jobs per DB size and mode, MULTI_PROCESS={}",
        a.ops, a.jobs, a.multi_process
    );
    println!("ssts\tmode\tjob\tlatency_ms\tstart_ms\tadmission_ms\topen_ms\tmetadata_bytes\tinput_fetched\tinput_read\tfetched/read");
    let mut summary = Vec::new();
    for &n in &a.ssts {
        let db = root.join(format!("db-{n}"));
        build_db(&db, &dir.join("ingest"), n)?;
        for mode in [Mode::Shared, Mode::Http] {
            let jobs = run_jobs(&worker, &worker_root, &root, &db, mode, a)?;
            for (j, f) in jobs.iter().enumerate() {
                println!(
                    "{n}\t{}\t{j}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3}",
                    mode.name(),
                    f.latency_ms,
                    f.start_ms,
                    f.admission_ms,
                    f.open_ms,
                    f.metadata_bytes,
                    f.input_bytes_fetched,
                    f.bytes_read,
                    ratio(f.input_bytes_fetched + f.metadata_bytes, f.bytes_read)
                );
            }
            summary.push((n, mode, jobs));
        }
        let _ = std::fs::remove_dir_all(&db);
    }
    print_summary(&summary);
    Ok(())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn print_summary(summary: &[(u32, Mode, Vec<JobFigures>)]) {
    println!();
    println!("medians\tssts\tmode\tlatency_ms\tstart_ms\tadmission_ms\topen_ms\tmetadata_bytes\tinput_fetched\tinput_read\tfetched/read");
    for (n, mode, jobs) in summary {
        let m = |f: fn(&JobFigures) -> u64| median(jobs.iter().map(f).collect());
        println!(
            "medians\t{n}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3}",
            mode.name(),
            m(|f| f.latency_ms),
            m(|f| f.start_ms),
            m(|f| f.admission_ms),
            m(|f| f.open_ms),
            m(|f| f.metadata_bytes),
            m(|f| f.input_bytes_fetched),
            m(|f| f.bytes_read),
            ratio(
                m(|f| f.input_bytes_fetched) + m(|f| f.metadata_bytes),
                m(|f| f.bytes_read)
            )
        );
    }
    let start = |n: u32, mode: Mode| {
        summary
            .iter()
            .find(|(s, m, _)| *s == n && *m == mode)
            .map(|(_, _, jobs)| median(jobs.iter().map(|f| f.start_ms).collect()))
    };
    if let (Some(&lo), Some(&hi)) = (
        summary.iter().map(|(n, ..)| n).min(),
        summary.iter().map(|(n, ..)| n).max(),
    ) {
        for mode in [Mode::Shared, Mode::Http] {
            if let (Some(a), Some(b)) = (start(lo, mode), start(hi, mode)) {
                println!(
                    "{}: job start at {hi} SSTs / at {lo} SSTs = {:.2} ({b} ms / {a} ms)",
                    mode.name(),
                    ratio(b, a.max(1))
                );
            }
        }
    }
}

/// A DB of `n` small bottom-level SSTs with disjoint keys `b<i>-<k>`.
fn build_db(db: &Path, scratch: &Path, n: u32) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch)?;
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_disable_auto_compactions(true);
    let handle = DB::open(&o, db).context("open the bench DB")?;
    let mut batch: Vec<PathBuf> = Vec::new();
    for i in 0..n {
        let path = scratch.join(format!("{i:08}.sst"));
        let mut w = SstFileWriter::create(&o);
        w.open(&path)?;
        for k in 0..8u32 {
            w.put(format!("b{i:08}-{k:02}"), [i as u8; 64])?;
        }
        w.finish()?;
        batch.push(path);
        if batch.len() == 1000 || i + 1 == n {
            handle.ingest_external_file(std::mem::take(&mut batch))?;
        }
    }
    drop(handle);
    std::fs::remove_dir_all(scratch)?;
    let live = std::fs::read_dir(db)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
        .count();
    if live < n as usize {
        bail!("the bench DB has {live} SSTs, not {n}");
    }
    Ok(())
}

/// A job's start and two of its parts, from the attempt's timings.
#[derive(Debug, Default)]
struct StartParts {
    start_ms: u64,
    admission_ms: u64,
    open_ms: u64,
}

impl StartParts {
    fn of(t: &farm::worker::timings::AttemptTimings) -> Self {
        let ms = |from: Option<u64>, to: Option<u64>| match (from, to) {
            (Some(a), Some(b)) => b.saturating_sub(a) / 1000,
            _ => 0,
        };
        let compaction_ms = t.compaction_us.unwrap_or(0) / 1000;
        StartParts {
            start_ms: ms(t.received_us, t.compacted_us).saturating_sub(compaction_ms),
            admission_ms: ms(t.received_us, t.admitted_us),
            open_ms: ms(t.prepared_us, t.compacted_us).saturating_sub(compaction_ms),
        }
    }
}

fn stat(worker: &LocalWorker) -> anyhow::Result<Value> {
    Ok(ureq::get(&format!("{}/stat?html=0", worker.base_url()))
        .call()?
        .into_json()?)
}

/// `/stat` once no attempt is running: a `MULTI_PROCESS` attempt answers
/// `done` at its delivery, and its child's fetch counts are added when it
/// is reaped, a little later.
fn settled_stat(worker: &LocalWorker) -> anyhow::Result<Value> {
    let until = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = stat(worker)?;
        if field(&s, &["running"]) == 0 || Instant::now() > until {
            return Ok(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn field(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[k]).as_u64().unwrap_or(0)
}

/// `a.jobs` jobs on `db` in `mode`, one after another.
fn run_jobs(
    worker: &LocalWorker,
    worker_root: &Path,
    root: &Path,
    db: &Path,
    mode: Mode,
    a: &RemoteStorageArgs,
) -> anyhow::Result<Vec<JobFigures>> {
    let mut params = serde_json::json!({
        "http_workers": [worker.base_url()],
        "hoster_root": root.display().to_string(),
        "instance_name": format!("bench-{}", mode.name()),
        "http_timeout": 30,
    });
    if mode == Mode::Http {
        params["storage"] = "http".into();
    }
    let mut o = Options::default();
    o.set_disable_auto_compactions(true);
    let farm = farm::hoster::enable(&mut o, &db.display().to_string(), &params.to_string())?;
    let handle = DB::open(&o, db).context("open the bench DB with the farm")?;
    let mut out = Vec::new();
    for j in 0..a.jobs {
        let prefix = format!("a{}-{j:02}-", mode.name());
        for round in 0..2u32 {
            for k in 0..a.ops {
                let value: Vec<u8> = (0..100).map(|_| fastrand::u8(..)).collect();
                handle.put(format!("{prefix}{:08}", k * 2 + round), value)?;
            }
            handle.flush()?;
        }
        let before = stat(worker)?;
        let installed = farm.stats().remote_installed;
        let started = Instant::now();
        handle.compact_range(
            Some(prefix.as_bytes()),
            Some(format!("{prefix}~").as_bytes()),
        );
        let latency = started.elapsed();
        let after = settled_stat(worker)?;
        if farm.stats().remote_installed <= installed {
            bail!(
                "{} job {j} compacted locally: {:?}",
                mode.name(),
                farm.stats()
            );
        }
        let delta = |path: &[&str]| field(&after, path).saturating_sub(field(&before, path));
        let newest = attempt_logs::read_all(worker_root)
            .into_iter()
            .map(|r| r.timings)
            .filter(|t| t.received_us.is_some() && t.compacted_us.is_some())
            .max_by_key(|t| t.received_us);
        let parts = newest.map(|t| StartParts::of(&t)).unwrap_or_default();
        out.push(JobFigures {
            latency_ms: latency.as_millis() as u64,
            start_ms: parts.start_ms,
            admission_ms: parts.admission_ms,
            open_ms: parts.open_ms,
            metadata_bytes: delta(&["remote", "metadata_bytes"]),
            input_bytes_fetched: delta(&["remote", "input_bytes"]),
            bytes_read: delta(&["counters", "bytes_read"]),
        });
    }
    drop(handle);
    drop(farm);
    Ok(out)
}
