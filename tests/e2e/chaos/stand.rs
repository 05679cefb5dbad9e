//! The farm the chaos test runs against, all on 127.0.0.1 in one fresh
//! temporary directory:
//!
//! - an etcd, which both workers register in and the hoster watches;
//! - the *steady* worker, never killed, whose resources are sampled: it
//!   runs in a sandbox (`crate::sandbox`) whose `WORKER_DB_ROOT` lies on a
//!   small tmpfs of its own, so the test can fill the worker's disk;
//! - the *victim* worker, SIGKILLed (or stopped) and started again on the
//!   same address;
//! - with `FARM_E2E_MULTI_PROCESS=1`, each worker runs attempts in children
//!   and sends their blocks to a zipserver of its own (`ZIP_SERVER_OPTIONS`).
//!
//! The hoster (`chaos-hoster`) knows both workers by address and finds
//! them in etcd too.

use crate::harness::{multi_process, worker_bin};
use crate::sandbox::{Sandbox, SandboxedWorker};
use farm::etcd::local::LocalEtcd;
use farm::worker::local::LocalWorker;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ETCD_ROOT: &str = "/chaos";
/// How long workers keep finished attempts answerable.
pub const RESULT_RETENTION: &str = "10s";
/// ... waited out before the steady worker's usage is sampled.
pub const RETENTION_WAIT: std::time::Duration = std::time::Duration::from_secs(12);
/// The steady worker's disk.
pub const WORKER_FS_BYTES: u64 = 16 << 20;

/// Fields are dropped in order: the workers and etcd end before the
/// directory goes.
pub struct Stand {
    victim: Option<LocalWorker>,
    pub steady: SandboxedWorker,
    pub etcd: LocalEtcd,
    /// The hoster root, `data/`, and the DB below it.
    pub root: PathBuf,
    pub db: PathBuf,
    /// The tmpfs holding the steady worker's root, as the sandbox sees it
    /// (reach it through [`Stand::steady_fs_from_host`]).
    steady_fs: PathBuf,
    victim_addr: String,
    /// Starts of the victim so far (each logs to its own file).
    victim_starts: u32,
    pub tmp: tempfile::TempDir,
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("bound").to_string()
}

fn log_file(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).expect("log file"))
}

impl Stand {
    pub fn start() -> Stand {
        let tmp = tempfile::Builder::new()
            .prefix("farm-chaos-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().join("data");
        std::fs::create_dir_all(&root).expect("hoster root");
        std::fs::create_dir_all(tmp.path().join("logs")).expect("log dir");
        let etcd = LocalEtcd::start(tmp.path()).expect("etcd starts");
        let steady_fs = tmp.path().join("steady-fs");
        let mut env = common_env(&root, &etcd);
        env.push((
            "WORKER_DB_ROOT",
            steady_fs.join("root").display().to_string(),
        ));
        let steady = Sandbox::new()
            .share(tmp.path())
            .tmpfs(&steady_fs, WORKER_FS_BYTES)
            .start_worker_on(
                &free_addr(),
                &env,
                log_file(&tmp.path().join("logs/steady.log")),
            )
            .expect("the steady worker starts");
        let mut stand = Stand {
            db: root.join("db"),
            root,
            etcd,
            steady,
            steady_fs,
            victim: None,
            victim_addr: free_addr(),
            victim_starts: 0,
            tmp,
        };
        stand.start_victim();
        stand
    }

    /// The hoster's parameters: both workers by address, and etcd.
    pub fn params(&self) -> String {
        serde_json::json!({
            "http_workers": [self.steady.base_url(), format!("http://{}", self.victim_addr)],
            "hoster_root": self.root.display().to_string(),
            "instance_name": "chaos",
            "http_timeout": 5,
            "etcd": {"url": self.etcd.addr()},
            "etcd_root": ETCD_ROOT,
        })
        .to_string()
    }

    /// The steady worker's host pid (the sandbox's PID 1).
    pub fn steady_pid(&self) -> u32 {
        Sandbox::inner_pid(self.steady.pid()).expect("the steady worker runs")
    }

    /// The steady worker's tmpfs, reached from the host.
    pub fn steady_fs_from_host(&self) -> PathBuf {
        let inside = self.steady_fs.strip_prefix("/").expect("absolute");
        Path::new(&format!("/proc/{}/root", self.steady_pid())).join(inside)
    }

    pub fn victim(&self) -> Option<&LocalWorker> {
        self.victim.as_ref()
    }

    pub fn victim_url(&self) -> String {
        format!("http://{}", self.victim_addr)
    }

    /// Starts the victim on its address (after a kill: the same address).
    pub fn start_victim(&mut self) {
        assert!(self.victim.is_none(), "the victim already runs");
        let mut cmd = Command::new(worker_bin());
        cmd.args(["--listen", &self.victim_addr])
            .stdin(Stdio::null());
        let mut env = common_env(&self.root, &self.etcd);
        env.push((
            "WORKER_DB_ROOT",
            self.tmp.path().join("victim").display().to_string(),
        ));
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.victim_starts += 1;
        let log = self
            .tmp
            .path()
            .join(format!("logs/victim-{}.log", self.victim_starts));
        let w = LocalWorker::start_command(cmd, log_file(&log)).expect("the victim starts");
        assert_eq!(w.addr, self.victim_addr, "the victim kept its address");
        self.victim = Some(w);
    }

    /// SIGKILLs the victim (and, as its handle goes, whatever it left).
    pub fn kill_victim(&mut self) {
        if let Some(mut w) = self.victim.take() {
            w.kill();
        }
    }

    /// Ends every process of the run and returns those still alive after
    /// it (none, unless something escaped its group), before the
    /// directory goes.
    pub fn shutdown(mut self) -> Vec<u32> {
        self.kill_victim();
        drop(self.steady);
        self.etcd.kill();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = processes(self.tmp.path());
            if left.is_empty() || std::time::Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Every process of a run: any whose environment or command line names
/// its directory `dir`.
fn processes(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            ["environ", "cmdline"].iter().any(|f| {
                std::fs::read(format!("/proc/{pid}/{f}"))
                    .is_ok_and(|b| String::from_utf8_lossy(&b).contains(&needle))
            })
        })
        .collect()
}

/// What both workers share: the hoster root, etcd, a short lease, small
/// limits; with children, a zipserver.
fn common_env(root: &Path, etcd: &LocalEtcd) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("HOSTER_ROOTS", root.display().to_string()),
        ("RUST_LOG", "warn".to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("DEL_WORKER_TEMP_DB", "true".to_string()),
        ("MAX_PARALLEL_COMPACTIONS", "2".to_string()),
        ("CANCEL_GRACE", "1s".to_string()),
        // Finished attempts are kept this long (bounded by design): the
        // resource comparison waits it out, so that it compares a worker
        // holding no finished attempt with one holding none either.
        ("RESULT_RETENTION", RESULT_RETENTION.to_string()),
        ("ETCD_URL", etcd.addr()),
        ("ETCD_ROOT", ETCD_ROOT.to_string()),
        ("ETCD_LEASE_TTL", "3s".to_string()),
    ];
    // The sandbox passes on only what it is given: the suite's run marker
    // lets scripts/leftovers.sh find the steady worker too.
    if let Ok(run) = std::env::var("FARM_TEST_RUN") {
        env.push(("FARM_TEST_RUN", run));
    }
    if multi_process() {
        env.push((
            "ZIP_SERVER_OPTIONS",
            "listening_ports=127.0.0.1:0:num_threads=1:client_timeout=500ms".to_string(),
        ));
    }
    env
}
