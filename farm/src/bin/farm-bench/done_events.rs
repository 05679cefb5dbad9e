//! `farm-bench done-events`: completion latency of remote attempts with
//! etcd's "done" events against probing alone.
//!
//! One worker registered in a local etcd; the same captured compaction
//! input is scheduled and waited for through the hoster's
//! `CompactionService`, one attempt at a time, by a hoster that finds the
//! worker in etcd and wakes on its events ("watch"), and by one that lists
//! it in `http_workers` and only probes ("probe"), alternating each round.
//! Latency is `schedule` to `wait` returning the verified result; the
//! compaction itself is the same in both modes, so the difference is how
//! soon the hoster noticed the end.

use anyhow::{bail, Context};
use farm::etcd::local::LocalEtcd;
use farm::hoster::FarmService;
use farm::rocks::service::{CompactionService, InstallStatus, ScheduleAnswer, WaitAnswer};
use farm::worker::local::LocalWorker;
use farm::workload::capture::Captured;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Side {
    latencies_us: Vec<u64>,
    probes: u64,
    by_watch: u64,
}

pub fn run(worker_bin: &Path, attempts: u32, rounds: u32, ops: u64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("farm-bench-done-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir, worker_bin, attempts, rounds, ops);
    std::fs::remove_dir_all(&dir).ok();
    result
}

fn measure(
    dir: &Path,
    worker_bin: &Path,
    attempts: u32,
    rounds: u32,
    ops: u64,
) -> anyhow::Result<()> {
    let captured = super::bench_input(dir, ops)?;
    let etcd = LocalEtcd::start(dir).context("starting etcd")?;
    let worker = LocalWorker::start(
        worker_bin,
        &[
            ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
            ("HOSTER_ROOTS", captured.root.display().to_string()),
            ("DEL_WORKER_TEMP_DB", "true".into()),
            ("MAX_PARALLEL_COMPACTIONS", "1".into()),
            ("OUTPUT_SPACE_MARGIN", "1M".into()),
            ("ETCD_URL", etcd.addr()),
            ("ETCD_ROOT", "/bench".into()),
            ("RUST_LOG", "warn".into()),
        ],
    )?;
    println!(
        "input: {ops} operations, {} input files; {attempts} attempts per round and mode, one at a time",
        farm::rocks::serialized::InputInfo::parse(&captured.input)?
            .input_files
            .len()
    );
    let mut sides = [Side::default(), Side::default()];
    let mut job = 1u64;
    for round in 0..rounds {
        for (i, watch) in [false, true].into_iter().enumerate() {
            let mut params = if watch {
                serde_json::json!({"etcd": {"url": etcd.addr()}, "etcd_root": "/bench"})
            } else {
                serde_json::json!({"http_workers": [worker.base_url()]})
            };
            params["hoster_root"] = captured.root.display().to_string().into();
            params["instance_name"] =
                format!("bench{round}{}", if watch { "w" } else { "p" }).into();
            params["http_timeout"] = 10.into();
            let config = farm::hoster::config::HosterConfig::from_json(&params.to_string())?;
            let service =
                FarmService::new(config, &captured.root.join("db").display().to_string())?;
            if watch {
                wait_for(|| service.workers().len() == 1 && service.watching_completions())
                    .context("the hoster did not find the worker in etcd")?;
            }
            let before = service.stats();
            let mut lat = Vec::new();
            for _ in 0..attempts {
                let mut info = captured.info.clone();
                info.job_id = job << 32;
                job += 1;
                lat.push(one_attempt(&service, &info, &captured)?);
            }
            let after = service.stats();
            let probes = after.probes - before.probes;
            let by_watch = after.done_by_watch - before.done_by_watch;
            println!(
                "round {round} {:<5} median {:7.1} ms  mean {:7.1} ms  probes/attempt {:5.2}  woken by etcd {by_watch}/{attempts}",
                if watch { "watch" } else { "probe" },
                percentile(&lat, 0.5) as f64 / 1e3,
                mean(&lat) / 1e3,
                probes as f64 / attempts as f64,
            );
            sides[i].latencies_us.extend(lat);
            sides[i].probes += probes;
            sides[i].by_watch += by_watch;
        }
    }
    let n = (attempts * rounds) as f64;
    for (name, s) in ["probe", "watch"].iter().zip(&sides) {
        println!(
            "{name:<5} over {} attempts: median {:7.1} ms  p90 {:7.1} ms  mean {:7.1} ms  probes/attempt {:5.2}  woken by etcd {}",
            s.latencies_us.len(),
            percentile(&s.latencies_us, 0.5) as f64 / 1e3,
            percentile(&s.latencies_us, 0.9) as f64 / 1e3,
            mean(&s.latencies_us) / 1e3,
            s.probes as f64 / n,
            s.by_watch
        );
    }
    println!(
        "ratio watch/probe: median {:.3}, mean {:.3}, probes {:.3}",
        percentile(&sides[1].latencies_us, 0.5) as f64
            / percentile(&sides[0].latencies_us, 0.5) as f64,
        mean(&sides[1].latencies_us) / mean(&sides[0].latencies_us),
        sides[1].probes as f64 / sides[0].probes as f64
    );
    Ok(())
}

/// Schedules and waits for one attempt; its latency in microseconds.
fn one_attempt(
    service: &FarmService,
    info: &farm::rocks::service::JobInfo,
    captured: &Captured,
) -> anyhow::Result<u64> {
    let started = Instant::now();
    let ScheduleAnswer::Scheduled(id) = service.schedule(info, &captured.input) else {
        bail!("not scheduled remotely: {:?}", service.stats().last_errors);
    };
    let WaitAnswer::Success(_) = service.wait(&id) else {
        bail!("no remote result: {:?}", service.stats().last_errors);
    };
    let us = started.elapsed().as_micros() as u64;
    // Not installed into a DB: this removes the attempt's outputs.
    service.on_installation(&id, InstallStatus::Success);
    Ok(us)
}

fn wait_for(mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn percentile(v: &[u64], p: f64) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len() as f64
}
