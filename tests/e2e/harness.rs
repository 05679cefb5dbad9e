//! What every end-to-end test needs: a worker process, a hoster database
//! with the farm enabled, waiting for compactions, reading SST properties.

use farm::hoster::FarmService;
use farm::rocks::sst::SstProperties;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A temporary directory holding the hoster root `data/` with the DB
/// `data/<db>` below it; workers keep their attempts in `worker/`.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub db: PathBuf,
}

pub fn dirs(db: &str) -> Dirs {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("data");
    std::fs::create_dir_all(&root).expect("hoster root");
    let db = root.join(db);
    Dirs { tmp, root, db }
}

pub fn worker_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_dcompact-worker"))
}

/// Whether this run of the suite puts every attempt in a child process
/// (`FARM_E2E_MULTI_PROCESS=1`): the suite runs once in each mode.
pub fn multi_process() -> bool {
    std::env::var("FARM_E2E_MULTI_PROCESS").is_ok_and(|v| v == "1")
}

/// Starts a worker with its own `WORKER_DB_ROOT` below `dir`; its
/// `HOSTER_ROOTS` are the hoster roots tests use below `dir` ([`dirs`]'s
/// `data`, a captured input's `copy`) unless `extra` names others.
pub fn start_worker(dir: &Path, extra: &[(&str, String)]) -> LocalWorker {
    start_worker_logging_to(dir, extra, std::process::Stdio::inherit())
}

/// [`start_worker`] with the worker's log (its stderr) going to `log`.
pub fn start_worker_logging_to(
    dir: &Path,
    extra: &[(&str, String)],
    log: std::process::Stdio,
) -> LocalWorker {
    let mut env = vec![
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("HOSTER_ROOTS", test_hoster_roots(dir)),
        ("RUST_LOG", "warn".to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        // Test machines may have little free disk; the guard has its own test.
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
    ];
    env.extend(extra.iter().cloned());
    LocalWorker::start_logging_to(worker_bin(), &env, log).expect("worker starts")
}

/// `HOSTER_ROOTS` for a worker of a test in `dir`: `dir/data` and
/// `dir/copy`.
pub fn test_hoster_roots(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.join("data").display(),
        dir.join("copy").display()
    )
}

pub fn get_json(url: &str) -> Value {
    ureq::get(url)
        .call()
        .expect("GET succeeds")
        .into_json()
        .expect("JSON answer")
}

pub fn worker_stat(worker: &LocalWorker) -> Value {
    get_json(&format!("{}/stat?html=0", worker.base_url()))
}

/// The identity the worker stamps on its outputs (`/stat`'s `identity`).
pub fn worker_identity(worker: &LocalWorker) -> String {
    worker_stat(worker)["identity"]
        .as_str()
        .expect("/stat names the worker's identity")
        .to_owned()
}

/// Attempts that ended other than `succeeded`, from a `/stat` answer.
pub fn failed_attempts(stat: &Value) -> u64 {
    let failed = stat["counters"]["failed"]
        .as_object()
        .unwrap_or_else(|| panic!("/stat has counters.failed: {stat}"));
    failed
        .values()
        .map(|n| n.as_u64().expect("failure counts are numbers"))
        .sum()
}

/// Options that make a small workload compact often: small memtables and
/// files, a low level-0 trigger.
pub fn small_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_write_buffer_size(1 << 20);
    o.set_target_file_size_base(1 << 20);
    o.set_max_bytes_for_level_base(4 << 20);
    o.set_level_zero_file_num_compaction_trigger(2);
    o.set_max_background_jobs(4);
    o.enable_statistics();
    o
}

/// Farm params for a hoster under `root` talking to `workers`.
pub fn params(root: &Path, workers: &[String], extra: Value) -> String {
    let mut p = serde_json::json!({
        "http_workers": workers,
        "hoster_root": root.display().to_string(),
        "instance_name": "e2e",
        "http_timeout": 5,
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            p.insert(k.clone(), v.clone());
        }
    }
    p.to_string()
}

/// A hoster database with the farm enabled.
pub struct Hoster {
    pub db: DB,
    pub farm: Arc<FarmService>,
    pub opts: Options,
}

impl Hoster {
    /// The DB of `d` with [`small_options`] in its one family, its farm on
    /// `workers` with [`params`] and `extra`.
    pub fn small(d: &Dirs, workers: &[String], extra: Value) -> Hoster {
        let params = params(&d.root, workers, extra);
        let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
        Hoster::open(&d.db, small_options(), cfs, &params)
    }

    pub fn open(
        path: &Path,
        mut opts: Options,
        cfs: Vec<ColumnFamilyDescriptor>,
        params: &str,
    ) -> Hoster {
        let farm = farm::hoster::enable(&mut opts, &path.display().to_string(), params)
            .expect("farm enabled");
        let db = DB::open_cf_descriptors(&opts, path, cfs).expect("db opens");
        Hoster { db, farm, opts }
    }

    /// Writes `spec` into the default column family, compacts it fully, waits,
    /// and checks a full scan against the model.
    pub fn churn(&self, model: &mut Model, spec: &WorkloadSpec) {
        let cf = self.db.cf_handle("default").expect("default cf");
        model.write(&self.db, cf, spec).expect("no write fails");
        self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        self.wait_for_compactions(&["default"]);
        assert_eq!(model.check(&self.db, cf), Ok(model.len() as u64));
    }

    /// Waits until no compaction is pending or running in any of `cfs`, and
    /// no remote attempt is in flight.
    pub fn wait_for_compactions(&self, cfs: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut idle_since = None;
        loop {
            let busy = self.farm.in_flight() > 0
                || cfs.iter().any(|name| {
                    let cf = self.db.cf_handle(name).expect("cf exists");
                    let p = |prop: &str| {
                        self.db
                            .property_int_value_cf(cf, prop)
                            .ok()
                            .flatten()
                            .unwrap_or(0)
                    };
                    p("rocksdb.compaction-pending") > 0 || p("rocksdb.num-running-compactions") > 0
                });
            // Idle twice in a row: a finished compaction can schedule the
            // next one a moment later.
            if !busy {
                if idle_since.is_some_and(|t: Instant| t.elapsed() >= Duration::from_millis(100)) {
                    return;
                }
                idle_since.get_or_insert_with(Instant::now);
            } else {
                idle_since = None;
            }
            assert!(
                Instant::now() < deadline,
                "compactions did not settle in 300 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `done` until it holds (a counter on the other side of a process
/// boundary catching up), for at most 30 s.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The entries of a worker's root other than the root's own marker.
pub fn attempt_entries(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .expect("the worker's root exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.ends_with(farm::worker::root_guard::ROOT_MARKER))
        .collect()
}

/// Every file named `name` below `dir` (an attempt's `LOG`, `job.json`).
pub fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    files_where(dir, &|p| p.file_name().is_some_and(|n| n == name))
}

/// Every file below `dir` (recursively) that `keep` accepts.
pub fn files_where(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_where(&p, keep));
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The contents of every attempt `LOG` below `dir`.
pub fn attempt_logs(dir: &Path) -> Vec<String> {
    files_named(dir, "LOG")
        .into_iter()
        .map(|p| std::fs::read_to_string(p).expect("LOG readable"))
        .collect()
}

/// One live SST with its properties.
pub struct LiveSst {
    pub cf: String,
    pub level: i32,
    pub props: SstProperties,
}

pub fn live_ssts(db: &DB, path: &Path) -> Vec<LiveSst> {
    db.live_files()
        .expect("live files")
        .into_iter()
        .map(|f| {
            let file = path.join(f.name.trim_start_matches('/'));
            LiveSst {
                cf: f.column_family_name,
                level: f.level,
                props: SstProperties::read(&file).expect("sst properties readable"),
            }
        })
        .collect()
}

/// Sends `body` to `url` and returns status and JSON answer.
pub fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = ureq::post(url).set("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url} failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().expect("answer readable");
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer {text:?} is not JSON: {e}"));
    (status, json)
}

/// `POST /dcompact` of `job` to `worker`: the status and the JSON answer.
pub fn submit_job(worker: &LocalWorker, job: &farm::protocol::job::Job) -> (u16, Value) {
    let body = serde_json::to_vec(job).expect("a job serializes");
    post(&format!("{}/dcompact", worker.base_url()), &body, &[])
}

/// `POST /probe` of `job`'s attempt at `worker`: the JSON answer.
pub fn probe_job(worker: &LocalWorker, job: &farm::protocol::job::Job) -> Value {
    let key = serde_json::to_vec(&job.key()).expect("a key serializes");
    post(&format!("{}/probe", worker.base_url()), &key, &[]).1
}

/// Where a test's worker reads the hoster's DB: the same tests run in both
/// storage modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The worker sees the hoster's directory (`HOSTER_ROOTS`).
    Shared,
    /// `storage: "http"`: the worker runs in a sandbox where the hoster's
    /// directory does not exist, and reads the job's files from the
    /// hoster's file endpoint.
    Http,
}

impl Storage {
    /// The hoster params that choose this mode, beside `extra`.
    pub fn params(self, mut extra: Value) -> Value {
        if self == Storage::Http {
            if let Some(o) = extra.as_object_mut() {
                o.insert("storage".into(), "http".into());
            }
        }
        extra
    }
}

/// A test's worker, plain or sandboxed; used as the [`LocalWorker`] it is.
pub enum TestWorker {
    Plain(LocalWorker),
    Sandboxed(crate::sandbox::SandboxedWorker),
}

impl std::ops::Deref for TestWorker {
    type Target = LocalWorker;
    fn deref(&self) -> &LocalWorker {
        match self {
            TestWorker::Plain(w) => w,
            TestWorker::Sandboxed(w) => w,
        }
    }
}

/// [`start_worker`] for `storage`. With [`Storage::Http`] the worker runs
/// in a private mount namespace that holds its own root (`dir/worker`) and
/// the files `read_only` (plugins), and nothing of the hoster's `dir/data`:
/// checked through the worker's `/proc/<pid>/root` before it is used.
pub fn start_worker_for(
    storage: Storage,
    dir: &Path,
    extra: &[(&str, String)],
    read_only: &[PathBuf],
) -> TestWorker {
    if storage == Storage::Shared {
        return TestWorker::Plain(start_worker(dir, extra));
    }
    let root = dir.join("worker");
    std::fs::create_dir_all(&root).expect("worker root");
    std::fs::create_dir_all(dir.join("data")).expect("hoster root");
    let mut sandbox = crate::sandbox::Sandbox::new().share(&root);
    for p in read_only {
        sandbox = sandbox.share_read_only(p);
    }
    let mut env = vec![("REMOTE_STORAGE", "true".to_string())];
    env.extend(extra.iter().cloned());
    let worker = sandbox.start_test_worker(dir, &env);
    let inner = crate::sandbox::Sandbox::inner_pid(worker.pid()).expect("the sandbox's worker");
    let seen = |p: &Path| PathBuf::from(format!("/proc/{inner}/root{}", p.display()));
    assert!(
        seen(&root).is_dir(),
        "the sandboxed worker sees its own root"
    );
    assert!(
        !seen(&dir.join("data")).exists(),
        "the sandboxed worker cannot see the hoster's directory"
    );
    TestWorker::Sandboxed(worker)
}
