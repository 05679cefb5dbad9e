//! One round of one side: a MULTI_PROCESS worker, `--attempts` attempts of
//! the captured input submitted at once, waited for; the zipserver's CPU
//! sampled meanwhile, the machine's context switches and CPU split read
//! before and after.

use crate::machine::{self, Machine, Spent};
use crate::{Args, Side};
use anyhow::{bail, Context};
use farm::worker::local::LocalWorker;
use farm::workload::capture::Captured;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the zipserver did in a round.
#[derive(Debug, Clone, Default)]
pub struct ZipFigures {
    pub max_cores: f64,
    pub mean_cores: f64,
    pub remote_blocks: u64,
    pub ring_blocks: u64,
    pub fallback_blocks: u64,
    pub sleeps: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The zipserver's own counts: wake-ups of its compression threads,
    /// the most memory budget in use, its peak RSS.
    pub wakeups: u64,
    pub budget_max: u64,
    pub peak_rss: u64,
}

pub struct Round {
    pub wall: Duration,
    /// CPU seconds of the worker, its attempt children and its zipserver
    /// over the round: what the work cost, whatever else ran meanwhile.
    pub cpu: f64,
    /// Of `cpu`, the zipserver's.
    pub zip_cpu: f64,
    pub bytes_read: u64,
    pub spent: Spent,
    pub zip: Option<ZipFigures>,
}

fn stat(worker: &LocalWorker) -> anyhow::Result<Value> {
    Ok(ureq::get(&format!("{}/stat?html=0", worker.base_url()))
        .call()?
        .into_json()?)
}

fn worker_env(
    root: &Path,
    hoster_root: &Path,
    side: Side,
    args: &Args,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("WORKER_DB_ROOT", root.display().to_string()),
        ("HOSTER_ROOTS", hoster_root.display().to_string()),
        ("MULTI_PROCESS", "true".to_string()),
        ("MAX_PARALLEL_COMPACTIONS", args.parallel.to_string()),
        ("MAX_WAITING_COMPACTIONS", args.attempts.to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("RUST_LOG", "warn".into()),
        ("CHILD_NICE", args.child_nice.to_string()),
    ];
    let transport = match side {
        Side::InChild if args.baseline_fallback => {
            env.push((
                "ZIP_SERVER_SOCKET",
                root.join("nobody-listens.sock").display().to_string(),
            ));
            return env;
        }
        Side::InChild => {
            env.push(("ZIP_SERVER_OPTIONS", "off".into()));
            return env;
        }
        Side::Socket => "socket",
        Side::Ring => "ring",
    };
    env.push((
        "ZIP_SERVER_OPTIONS",
        format!(
            "listening_ports=127.0.0.1:0:num_threads={}:blocks_in_flight={}:transport={transport}:server_spin={}us:client_spin={}us:pin_threads={}:memory_budget={}",
            args.threads, args.in_flight, args.server_spin_us, args.client_spin_us, !args.no_pin, args.memory_budget
        ),
    ));
    env
}

/// The worker's zipserver: its pid and HTTP address, once it is up.
fn zipserver_of(worker: &LocalWorker) -> anyhow::Result<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stat(worker)?;
        let sidecar = &s["zipserver"]["sidecar"];
        if let (Some(pid), Some(addr)) = (sidecar["pid"].as_u64(), sidecar["http_addr"].as_str()) {
            return Ok((pid as i32, addr.to_owned()));
        }
        if Instant::now() > deadline {
            bail!("the worker's zipserver did not start: {s}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Submits every attempt and waits until all succeeded; the last `/stat`.
fn run_attempts(
    worker: &LocalWorker,
    captured: &Captured,
    instance: &str,
    args: &Args,
) -> anyhow::Result<Value> {
    for a in 0..args.attempts {
        let job = captured.job(instance, a);
        ureq::post(&format!("{}/dcompact", worker.base_url()))
            .send_json(serde_json::to_value(&job)?)
            .context("submitting")?;
    }
    loop {
        let s = stat(worker)?;
        let c = &s["counters"];
        let failed: u64 = c["failed"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
        if failed > 0 {
            bail!("attempts failed: {c}");
        }
        if c["succeeded"].as_u64() == Some(args.attempts as u64) {
            return Ok(s);
        }
        // Each /stat costs the worker CPU that counts into the round.
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn run(
    dir: &Path,
    captured: &Captured,
    side: Side,
    round: u32,
    args: &Args,
) -> anyhow::Result<Round> {
    let root = dir.join(format!("worker-{round}-{}", side.name()));
    let mut worker = LocalWorker::start(
        &args.worker_bin(),
        &worker_env(&root, &captured.root, side, args),
    )?;
    let zipserver = match side {
        Side::InChild => None,
        Side::Socket | Side::Ring => Some(zipserver_of(&worker)?),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = zipserver.as_ref().map(|(pid, _)| {
        let (pid, stop) = (*pid, stop.clone());
        let period = Duration::from_millis(args.sample_ms);
        std::thread::spawn(move || machine::sample_cpu(pid, period, &stop))
    });

    let instance = format!("zb{round}{}", side.name());
    let worker_pid = worker.pid() as i32;
    let zip_pid = zipserver.as_ref().map(|(pid, _)| *pid);
    let cpu_now = || {
        let zip = zip_pid.and_then(machine::cpu_seconds).unwrap_or(0.0);
        (machine::tree_cpu_seconds(worker_pid).unwrap_or(0.0), zip)
    };
    let before = Machine::read().context("reading /proc/stat")?;
    let cpu_before = cpu_now();
    let started = Instant::now();
    let last = run_attempts(&worker, captured, &instance, args)?;
    let wall = started.elapsed();
    let cpu_after = cpu_now();
    let spent = Machine::read()
        .context("reading /proc/stat")?
        .since(&before);
    let zip_cpu = cpu_after.1 - cpu_before.1;
    let cpu = cpu_after.0 - cpu_before.0 + zip_cpu;
    stop.store(true, Ordering::Release);
    let zip = match (sampler, zipserver) {
        (Some(t), Some((pid, addr))) => {
            let (max_cores, mean_cores) =
                t.join().map_err(|_| anyhow::anyhow!("sampler panicked"))?;
            Some(zip_figures(&last, &addr, pid, max_cores, mean_cores)?)
        }
        _ => None,
    };
    let bytes_read = last["counters"]["bytes_read"].as_u64().unwrap_or(0);
    worker.stop(Duration::from_secs(10));
    std::fs::remove_dir_all(captured.root.join("db/out")).ok();
    std::fs::remove_dir_all(&root).ok();
    Ok(Round {
        wall,
        cpu,
        zip_cpu,
        bytes_read,
        spent,
        zip,
    })
}

fn zip_figures(
    last: &Value,
    addr: &str,
    pid: i32,
    max_cores: f64,
    mean_cores: f64,
) -> anyhow::Result<ZipFigures> {
    let counts = &last["zipserver"]["counts"];
    let n = |k: &str| counts[k].as_u64().unwrap_or(0);
    let zs: Value = ureq::get(&format!("http://{addr}/stat?html=0"))
        .call()?
        .into_json()?;
    Ok(ZipFigures {
        max_cores,
        mean_cores,
        remote_blocks: n("remote_blocks"),
        ring_blocks: n("ring_blocks"),
        fallback_blocks: n("fallback_blocks"),
        sleeps: n("sleeps"),
        bytes_in: n("remote_bytes_in"),
        bytes_out: n("remote_bytes_out"),
        wakeups: zs["wakeups"].as_u64().unwrap_or(0),
        budget_max: zs["budget_max_bytes"].as_u64().unwrap_or(0),
        peak_rss: machine::peak_rss(pid).unwrap_or(0),
    })
}
