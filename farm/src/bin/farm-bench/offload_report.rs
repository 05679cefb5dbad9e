//! What `farm-bench offload` prints: a line per round and mode, then the
//! means per mode, the ratios against `local` and `direct`, the stall
//! causes, and where a remote job's time went.

use crate::offload::{latencies, p50, Mode, ModeRun, OffloadArgs};
use std::collections::BTreeMap;

pub fn round_line(round: u32, r: &ModeRun) {
    println!(
        "round {round} {:<11} {:>8.0} ops/s {:>6.1} MiB/s  write {:>6.2} s  settled {:>6.2} s  \
         hoster CPU {:>6.2} s ({:>5.2} s/GiB)  worker CPU {:>5.2} s/GiB  stall {:>5.2} s  \
         put p50 {:>5.1} us p99 {:>6.1} us  W-amp {:>4.2}  compactions remote {} local {}",
        r.mode.name(),
        r.writer.ops_per_sec(),
        r.writer.mib_per_sec(),
        r.writer.wall().as_secs_f64(),
        r.settled.as_secs_f64(),
        r.hoster_cpu.as_secs_f64(),
        r.hoster_cpu_per_gib(),
        r.worker_cpu_per_gib(),
        r.figures.stall.as_secs_f64(),
        r.writer.latency.quantile(0.5).as_nanos() as f64 / 1000.0,
        r.writer.latency.quantile(0.99).as_nanos() as f64 / 1000.0,
        r.figures.write_amp(r.writer.bytes),
        r.remote,
        r.local,
    );
}

/// Means of one mode over its rounds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Means {
    pub ops_per_sec: f64,
    pub hoster_cpu_per_gib: f64,
    pub worker_cpu_per_gib: f64,
    pub stall_s: f64,
    pub write_s: f64,
}

pub fn means(runs: &[ModeRun], mode: Mode) -> Option<Means> {
    let of: Vec<&ModeRun> = runs.iter().filter(|r| r.mode == mode).collect();
    if of.is_empty() {
        return None;
    }
    let n = of.len() as f64;
    let mean = |f: &dyn Fn(&ModeRun) -> f64| of.iter().map(|r| f(r)).sum::<f64>() / n;
    Some(Means {
        ops_per_sec: mean(&|r| r.writer.ops_per_sec()),
        hoster_cpu_per_gib: mean(&|r| r.hoster_cpu_per_gib()),
        worker_cpu_per_gib: mean(&|r| r.worker_cpu_per_gib()),
        stall_s: mean(&|r| r.figures.stall.as_secs_f64()),
        write_s: mean(&|r| r.writer.wall().as_secs_f64()),
    })
}

pub fn print(args: &OffloadArgs, runs: &[ModeRun]) {
    let modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| runs.iter().any(|r| r.mode == *m))
        .collect();
    println!("means over {} round(s):", args_rounds(runs));
    for &m in &modes {
        let Some(x) = means(runs, m) else { continue };
        let lat = latencies(runs, m);
        println!(
            "  {:<11} {:>8.0} ops/s  hoster {:>5.2} CPU-s/GiB  worker {:>5.2} CPU-s/GiB  \
             stall {:>5.2} s of {:>5.2} s  put p50 {:.1} us p99 {:.1} us",
            m.name(),
            x.ops_per_sec,
            x.hoster_cpu_per_gib,
            x.worker_cpu_per_gib,
            x.stall_s,
            x.write_s,
            lat.quantile(0.5).as_nanos() as f64 / 1000.0,
            lat.quantile(0.99).as_nanos() as f64 / 1000.0,
        );
    }
    if let Some(local) = means(runs, Mode::Local) {
        for m in [Mode::FarmInproc, Mode::FarmMulti, Mode::Direct] {
            let Some(x) = means(runs, m) else { continue };
            println!(
                "ratio {}/local: throughput {:.3} (goal >= 1.7), hoster CPU per GiB {:.3} (goal <= 0.35)",
                m.name(),
                x.ops_per_sec / local.ops_per_sec,
                x.hoster_cpu_per_gib / local.hoster_cpu_per_gib,
            );
        }
        if let Some(x) = means(runs, Mode::NoCompaction) {
            println!(
                "ratio no-compaction/local: throughput {:.3}, hoster CPU per GiB {:.3} \
                 (the floor: no offload of compactions goes below it)",
                x.ops_per_sec / local.ops_per_sec,
                x.hoster_cpu_per_gib / local.hoster_cpu_per_gib,
            );
        }
    }
    if let Some(direct) = means(runs, Mode::Direct) {
        for m in [Mode::FarmInproc, Mode::FarmMulti] {
            let Some(x) = means(runs, m) else { continue };
            println!(
                "ratio {}/direct: throughput {:.3}, hoster CPU per GiB {:.3}",
                m.name(),
                x.ops_per_sec / direct.ops_per_sec,
                x.hoster_cpu_per_gib / direct.hoster_cpu_per_gib,
            );
        }
    }
    for &m in &modes {
        stall_causes(runs, m);
    }
    for m in [Mode::FarmInproc, Mode::FarmMulti, Mode::Direct] {
        job_parts(runs, m, args.verbose);
    }
}

fn args_rounds(runs: &[ModeRun]) -> usize {
    runs.iter().filter(|r| r.mode == runs[0].mode).count()
}

fn stall_causes(runs: &[ModeRun], mode: Mode) {
    let mut causes: BTreeMap<&str, u64> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.mode == mode) {
        for (k, v) in &r.figures.stall_causes {
            *causes.entry(k.as_str()).or_default() += v;
        }
    }
    let list: Vec<String> = causes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "stall causes {}: {}",
        mode.name(),
        if list.is_empty() {
            "none".into()
        } else {
            list.join(" ")
        }
    );
}

fn ms(us: Option<u64>) -> String {
    us.map_or("-".into(), |u| format!("{:.1}", u as f64 / 1000.0))
}

/// The p50 of each part of a remote job, over every round of `mode`.
fn job_parts(runs: &[ModeRun], mode: Mode, verbose: bool) {
    let of: Vec<&ModeRun> = runs.iter().filter(|r| r.mode == mode).collect();
    let jobs: Vec<_> = of
        .iter()
        .flat_map(|r| r.jobs.iter())
        .filter(|j| j.success)
        .collect();
    if jobs.is_empty() {
        return;
    }
    let total = p50(jobs
        .iter()
        .map(|j| j.installed_us.saturating_sub(j.schedule_start_us)));
    let submit = p50(jobs
        .iter()
        .map(|j| j.schedule_end_us.saturating_sub(j.schedule_start_us)));
    let to_wait = p50(jobs
        .iter()
        .map(|j| j.wait_start_us.saturating_sub(j.schedule_end_us)));
    let wait = p50(jobs
        .iter()
        .map(|j| j.wait_end_us.saturating_sub(j.wait_start_us)));
    let install = p50(jobs
        .iter()
        .map(|j| j.installed_us.saturating_sub(j.wait_end_us)));
    let cpu = p50(jobs
        .iter()
        .map(|j| (j.schedule_cpu + j.wait_cpu).as_micros() as u64));
    let farm = of.iter().filter_map(|r| r.farm.as_ref());
    let (probes, verify_us, installed) = farm.fold((0, 0, 0), |a, s| {
        (
            a.0 + s.probes,
            a.1 + s.verify_micros,
            a.2 + s.remote_installed,
        )
    });
    let per_job = |v: u64| v as f64 / installed.max(1) as f64;
    println!(
        "remote jobs {} ({}): p50 ms: schedule->installed {} | schedule (submit) {} | to wait {} | wait {} | install {} | hoster CPU per job {}{}",
        mode.name(),
        jobs.len(),
        ms(total),
        ms(submit),
        ms(to_wait),
        ms(wait),
        ms(install),
        ms(cpu),
        if installed > 0 {
            format!(
                " | per job: {:.2} probes, verification {:.1} ms",
                per_job(probes),
                per_job(verify_us) / 1000.0
            )
        } else {
            String::new()
        },
    );
    let attempts: Vec<_> = of.iter().flat_map(|r| r.attempts.iter()).collect();
    if attempts.is_empty() {
        return;
    }
    let mut line = format!(
        "worker parts {} ({} attempts), p50 ms:",
        mode.name(),
        attempts.len()
    );
    let names = attempts[0].timings.parts().map(|(n, _)| n);
    for (i, name) in names.iter().enumerate() {
        let v = p50(attempts.iter().filter_map(|a| a.timings.parts()[i].1));
        line.push_str(&format!(" {name} {}", ms(v)));
    }
    // From `/probe` answering the end (a child's delivery, or the attempt's
    // end) to the end of the hoster's wait: noticing it (probing), fetching
    // and decoding the result, verifying the outputs.
    let notice = p50(of.iter().flat_map(|r| {
        r.jobs.iter().filter(|j| j.success).filter_map(|j| {
            let a = r
                .attempts
                .iter()
                .filter(|a| a.db_job == j.db_job && a.sub_job == j.sub_job)
                .max_by_key(|a| a.attempt)?;
            Some(j.wait_end_us.saturating_sub(a.timings.answered_us()?))
        })
    }));
    line.push_str(&format!(
        " | answered->hoster has verified result {}",
        ms(notice)
    ));
    println!("{line}");
    if verbose {
        for a in attempts {
            println!(
                "  job {}-{} att {}: {}",
                a.db_job,
                a.sub_job,
                a.attempt,
                a.timings.describe()
            );
        }
    }
}
