//! What the machine and one process did meanwhile, from `/proc`: context
//! switches and the split of CPU time between user and kernel
//! (`/proc/stat`), the load average, a process's CPU time and peak memory.

use std::time::{Duration, Instant};

/// Machine-wide counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    at: Instant,
    ctxt: u64,
    /// Jiffies: user (with nice), kernel (system, irq, softirq), idle (with
    /// iowait), steal.
    user: u64,
    kernel: u64,
    idle: u64,
    steal: u64,
    /// Inter-processor interrupts so far: rescheduling, function call and
    /// TLB shootdown (`/proc/interrupts`).
    ipis: u64,
}

/// What happened between two [`Machine`] readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub secs: f64,
    pub context_switches: u64,
    pub ipis: u64,
    /// Shares of all CPU time (all cores) in the window.
    pub user: f64,
    pub kernel: f64,
    pub idle: f64,
}

impl Machine {
    pub fn read() -> Option<Machine> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let mut ctxt = None;
        let mut cpu = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("ctxt ") {
                ctxt = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("cpu ") {
                let f: Vec<u64> = v
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                cpu = (f.len() >= 8).then_some(f);
            }
        }
        let f = cpu?;
        Some(Machine {
            ipis: ipis(),
            at: Instant::now(),
            ctxt: ctxt?,
            user: f[0] + f[1],
            kernel: f[2] + f[5] + f[6],
            idle: f[3] + f[4],
            steal: f[7],
        })
    }

    pub fn since(&self, before: &Machine) -> Spent {
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
        let (user, kernel, idle, steal) = (
            d(self.user, before.user),
            d(self.kernel, before.kernel),
            d(self.idle, before.idle),
            d(self.steal, before.steal),
        );
        let total = (user + kernel + idle + steal).max(1.0);
        Spent {
            secs: self.at.duration_since(before.at).as_secs_f64(),
            context_switches: self.ctxt.saturating_sub(before.ctxt),
            ipis: self.ipis.saturating_sub(before.ipis),
            user: user / total,
            kernel: kernel / total,
            idle: idle / total,
        }
    }
}

/// Rescheduling, function call and TLB shootdown interrupts on every CPU.
fn ipis() -> u64 {
    let text = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim_start().split_once(':')?;
            ["RES", "CAL", "TLB"].contains(&name).then(|| {
                rest.split_whitespace()
                    .map_while(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
            })
        })
        .sum()
}

/// The 1-minute load average.
pub fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Seconds of CPU from `/proc/<pid>/stat`: utime + stime, and with
/// `reaped` also cutime + cstime (children that ended and were waited for).
fn stat_seconds(pid: i32, reaped: bool) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // utime, stime, cutime, cstime are fields 14 to 17 of the whole line:
    // 11 to 14 here.
    let mut ticks = field(11)? + field(12)?;
    if reaped {
        ticks += field(13)? + field(14)?;
    }
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// utime + stime of `pid`, in seconds.
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    stat_seconds(pid, false)
}

/// The CPU of `pid` and of its children that ended, in seconds.
pub fn tree_cpu_seconds(pid: i32) -> Option<f64> {
    stat_seconds(pid, true)
}

/// A process's peak resident memory (`VmHWM`), bytes.
pub fn peak_rss(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Samples a process's CPU use every `period` until `stop`: the most cores
/// it used in one period, and the mean over the whole run.
pub fn sample_cpu(pid: i32, period: Duration, stop: &std::sync::atomic::AtomicBool) -> (f64, f64) {
    use std::sync::atomic::Ordering;
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
