//! The faults the chaos test injects into the farm around the hoster, and
//! their counts by kind. Each injection blocks for as long as the fault
//! lasts (a stopped worker, a full disk) while the hoster keeps writing.

use super::stand::Stand;
use crate::harness::worker_stat;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// SIGKILL of the hoster process, which is then opened again.
    HosterKill,
    /// SIGKILL of the victim worker, started again on the same address.
    WorkerKill,
    /// SIGSTOP of the victim worker for 3 s, then SIGCONT.
    WorkerStop,
    /// SIGKILL of an attempt's child process (its group).
    ChildKill,
    /// SIGKILL of a worker's zipserver.
    ZipserverKill,
    /// SIGKILL of etcd, started again empty.
    EtcdRestart,
    /// The steady worker's disk filled to the last byte for 3 s.
    DiskFull,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::HosterKill => "hoster SIGKILL",
            Fault::WorkerKill => "worker SIGKILL + restart",
            Fault::WorkerStop => "worker SIGSTOP/SIGCONT",
            Fault::ChildKill => "child SIGKILL",
            Fault::ZipserverKill => "zipserver SIGKILL",
            Fault::EtcdRestart => "etcd SIGKILL + restart",
            Fault::DiskFull => "worker disk full",
        }
    }

    /// The kinds the injector picks from (the hoster is killed every
    /// round anyway); children and zipservers exist only with
    /// `MULTI_PROCESS`.
    pub fn injectable(multi_process: bool) -> Vec<Fault> {
        let mut kinds = vec![
            Fault::WorkerKill,
            Fault::WorkerStop,
            Fault::EtcdRestart,
            Fault::DiskFull,
        ];
        if multi_process {
            kinds.extend([Fault::ChildKill, Fault::ZipserverKill]);
        }
        kinds
    }
}

/// Child processes of `pid` (of all its threads) with their command lines.
fn children(pid: u32) -> Vec<(u32, String)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .filter_map(|c| {
            let cmd = std::fs::read(format!("/proc/{c}/cmdline")).ok()?;
            Some((c, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect()
}

/// Injects faults into a [`Stand`] and counts them.
pub struct Injector {
    rng: fastrand::Rng,
    /// Faults injected, by kind.
    pub counts: BTreeMap<Fault, u64>,
    /// Faults that found nothing to hit (no child running in time).
    pub missed: BTreeMap<Fault, u64>,
    /// Attempts the victim's earlier lives finished (`succeeded`), read
    /// from `/stat` just before each kill.
    pub victim_succeeded: u64,
    /// Attempts the steady worker failed or refused while its disk was
    /// full.
    pub disk_full_failures: u64,
    /// The steady worker's `succeeded` when its disk was last freed.
    pub succeeded_after_disk_full: Option<u64>,
}

impl Injector {
    pub fn new(seed: u64) -> Injector {
        Injector {
            rng: fastrand::Rng::with_seed(seed),
            counts: BTreeMap::new(),
            missed: BTreeMap::new(),
            victim_succeeded: 0,
            disk_full_failures: 0,
            succeeded_after_disk_full: None,
        }
    }

    pub fn count(&mut self, f: Fault) {
        *self.counts.entry(f).or_default() += 1;
    }

    /// Injects `f`; counted when it hit something.
    pub fn inject(&mut self, stand: &mut Stand, f: Fault) {
        let hit = match f {
            Fault::HosterKill => panic!("the test kills the hoster itself"),
            Fault::WorkerKill => self.kill_victim(stand),
            Fault::WorkerStop => stop_victim(stand),
            Fault::ChildKill => self.kill_child(stand),
            Fault::ZipserverKill => self.kill_zipserver(stand),
            Fault::EtcdRestart => self.restart_etcd(stand),
            Fault::DiskFull => self.fill_disk(stand),
        };
        if hit {
            self.count(f);
        } else {
            *self.missed.entry(f).or_default() += 1;
        }
    }

    /// The victim's finished attempts so far, across its lives.
    pub fn victim_total(&self, stand: &Stand) -> u64 {
        self.victim_succeeded + stand.victim().map_or(0, succeeded)
    }

    fn kill_victim(&mut self, stand: &mut Stand) -> bool {
        // Preferably while it runs an attempt.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline
            && stand
                .victim()
                .is_some_and(|w| worker_stat(w)["running"].as_u64() == Some(0))
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.victim_succeeded += stand.victim().map_or(0, succeeded);
        stand.kill_victim();
        std::thread::sleep(Duration::from_millis(self.rng.u64(0..1500)));
        stand.start_victim();
        true
    }

    /// SIGKILLs the group of one running attempt's child of either worker,
    /// waiting up to 8 s for one to run.
    fn kill_child(&mut self, stand: &Stand) -> bool {
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            let mut found: Vec<u32> = worker_pids(stand)
                .into_iter()
                .flat_map(children)
                .filter(|(_, cmd)| cmd.contains("--child"))
                .map(|(pid, _)| pid)
                .collect();
            if !found.is_empty() {
                let pid = found.swap_remove(self.rng.usize(..found.len()));
                return killpg(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn kill_zipserver(&mut self, stand: &Stand) -> bool {
        let mut found: Vec<u32> = worker_pids(stand)
            .into_iter()
            .flat_map(children)
            .filter(|(_, cmd)| {
                cmd.split(' ')
                    .next()
                    .is_some_and(|arg0| arg0.ends_with("/zipserver"))
            })
            .map(|(pid, _)| pid)
            .collect();
        if found.is_empty() {
            return false;
        }
        let pid = found.swap_remove(self.rng.usize(..found.len()));
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok()
    }

    /// Fills the steady worker's disk, counting what it failed or refused
    /// meanwhile.
    fn fill_disk(&mut self, stand: &Stand) -> bool {
        let before = failures(&worker_stat(&stand.steady));
        fill_disk(stand);
        let stat = worker_stat(&stand.steady);
        self.disk_full_failures += failures(&stat) - before;
        self.succeeded_after_disk_full = stat["counters"]["succeeded"].as_u64();
        true
    }

    fn restart_etcd(&mut self, stand: &mut Stand) -> bool {
        stand.etcd.kill();
        std::thread::sleep(Duration::from_millis(self.rng.u64(500..2000)));
        stand.etcd.restart_empty().expect("etcd starts again");
        true
    }
}

fn succeeded(w: &farm::worker::local::LocalWorker) -> u64 {
    worker_stat(w)["counters"]["succeeded"]
        .as_u64()
        .expect("/stat counts succeeded attempts")
}

/// Attempts failed and submissions refused, from a `/stat` answer.
fn failures(stat: &serde_json::Value) -> u64 {
    ["failed", "rejected"]
        .iter()
        .map(|k| {
            stat["counters"][k]
                .as_object()
                .unwrap_or_else(|| panic!("/stat counts {k}"))
                .values()
                .filter_map(serde_json::Value::as_u64)
                .sum::<u64>()
        })
        .sum()
}

/// Host pids of the workers running now.
fn worker_pids(stand: &Stand) -> Vec<u32> {
    let mut pids = vec![stand.steady_pid()];
    pids.extend(stand.victim().map(|w| w.pid()));
    pids
}

fn stop_victim(stand: &Stand) -> bool {
    let Some(w) = stand.victim() else {
        return false;
    };
    w.signal(Signal::SIGSTOP).expect("SIGSTOP");
    std::thread::sleep(Duration::from_secs(3));
    w.signal(Signal::SIGCONT).expect("SIGCONT");
    true
}

/// Fills the steady worker's tmpfs until a write fails with ENOSPC, holds
/// it full for 3 s, then frees it.
fn fill_disk(stand: &Stand) {
    let path = stand.steady_fs_from_host().join("filler");
    let mut f = std::fs::File::create(&path).expect("filler file");
    let chunk = vec![0xa5u8; 64 << 10];
    let full = loop {
        match f.write(&chunk) {
            Ok(0) => break false,
            Ok(_) => {}
            Err(e) => break e.raw_os_error() == Some(libc::ENOSPC),
        }
    };
    let _ = f.flush();
    std::thread::sleep(Duration::from_secs(3));
    drop(f);
    std::fs::remove_file(&path).expect("filler removed");
    assert!(full, "the worker's disk filled up");
}
