//! An HTTP proxy between a hoster and a real worker that injects the faults
//! a remote side can have: it refuses or drops submissions, cancels attempts
//! on the worker (`/shutdown`), rewrites probe answers (an empty or invalid
//! result, a lost attempt, a failure), and damages the output files of a
//! finished attempt before the hoster sees the `done` answer.
//!
//! The worker runs unchanged; every fault comes from here. The fault can be
//! switched while a test runs ([`FaultProxy::set_fault`]). The proxy records
//! what it saw: accepted submissions, the results the worker reported
//! (parsed with RocksDB's own reader), and how often it injected its fault.

use base64::Engine;
use farm::rocks::serialized::ResultInfo;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How an output SST is damaged.
#[derive(Clone, Copy, Debug)]
pub enum Damage {
    /// XOR `len` bytes (to the end when `None`) from `at_permille` of the
    /// file's size.
    Flip { at_permille: u64, len: Option<u64> },
    /// Cut the file to `keep_permille` of its size.
    Truncate { keep_permille: u64 },
    /// Delete the file.
    Remove,
}

/// What the proxy does to the traffic.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward everything unchanged.
    None,
    /// Hold `/dcompact` requests (recorded in [`Seen::held`]) until the fault
    /// is switched to another one, then go on with that one.
    HoldSubmit,
    /// Close `/dcompact` connections without an answer.
    DropSubmit,
    /// Answer `/dcompact` with this status (and a JSON error), unforwarded.
    AnswerSubmit(u16),
    /// Answer `/dcompact` "ok" without forwarding it: a worker that
    /// accepted the attempt and lost it (its probes then answer 404).
    AcceptUnforwarded,
    /// Forward `/dcompact`; once accepted, cancel the attempt on the worker.
    CancelAfterSubmit,
    /// Cancel an attempt on the worker when a probe says it is running.
    CancelWhenRunning,
    /// Replace the result of a `done` probe answer with these bytes.
    ReplaceResult(Vec<u8>),
    /// Replace the result of a `done` probe answer with what this function
    /// makes of it (a worker that lies about its outputs).
    RewriteResult(fn(&[u8]) -> Vec<u8>),
    /// The worker aborts and forgets the attempt: cancel it there and
    /// answer every probe of it with 404.
    AbortAttempt,
    /// Answer a `done` probe with `failed`.
    ProbeFailed,
    /// Damage the attempt's output SSTs, then forward `done`.
    Damage(Damage),
}

#[derive(Default)]
pub struct Seen {
    /// The jobs (JSON) of `/dcompact` requests the worker accepted.
    pub jobs: Mutex<Vec<serde_json::Value>>,
    /// Jobs held by [`Fault::HoldSubmit`].
    pub held: Mutex<Vec<serde_json::Value>>,
    /// Times the fault was injected.
    pub injected: AtomicU64,
    /// Probe answers that said `running`.
    pub running: AtomicU64,
    /// `/shutdown`s the proxy sent that the worker delivered.
    pub cancelled: AtomicU64,
    /// `/shutdown`s the hoster sent through the proxy, with the worker's
    /// answer status.
    pub hoster_cancels: Mutex<Vec<u16>>,
    /// Every result the worker reported as `done`, as it reported it.
    pub results: Mutex<Vec<ResultInfo>>,
}

pub struct FaultProxy {
    pub addr: String,
    pub seen: Arc<Seen>,
    fault: Arc<Mutex<Fault>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Route {
    /// Attempts (their keys) already cancelled.
    cancels_sent: Mutex<std::collections::HashSet<Vec<u8>>>,
    /// Attempts (their keys) whose outputs were already damaged: a probe
    /// the hoster repeats (its request timed out while the proxy was
    /// damaging) must not damage them again, which for a `Flip` would
    /// restore them.
    damaged: Mutex<std::collections::HashSet<String>>,
    worker: String,
    outputs: PathBuf,
    fault: Arc<Mutex<Fault>>,
    seen: Arc<Seen>,
}

impl FaultProxy {
    /// A proxy to the worker at `worker` (base URL) for a hoster whose
    /// attempts write below `outputs` (the DB's `farm-output`).
    pub fn start(worker: String, outputs: PathBuf, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("bound address").to_string();
        let seen = Arc::new(Seen::default());
        let fault = Arc::new(Mutex::new(fault));
        let stop = Arc::new(AtomicBool::new(false));
        let route = Arc::new(Route {
            cancels_sent: Mutex::default(),
            damaged: Mutex::default(),
            worker,
            outputs,
            fault: fault.clone(),
            seen: seen.clone(),
        });
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut handlers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let route = route.clone();
                            handlers.push(std::thread::spawn(move || route.serve(conn)));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                    handlers.retain(|h| !h.is_finished());
                }
                for h in handlers {
                    let _ = h.join();
                }
            }
        });
        FaultProxy {
            addr,
            seen,
            fault,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().expect("fault lock") = fault;
    }

    pub fn injected(&self) -> u64 {
        self.seen.injected.load(Ordering::SeqCst)
    }

    pub fn running_seen(&self) -> u64 {
        self.seen.running.load(Ordering::SeqCst)
    }

    pub fn cancelled(&self) -> u64 {
        self.seen.cancelled.load(Ordering::SeqCst)
    }

    pub fn results(&self) -> Vec<ResultInfo> {
        self.seen.results.lock().expect("results lock").clone()
    }

    /// The worker's answer status to each `/shutdown` the hoster sent.
    pub fn hoster_cancels(&self) -> Vec<u16> {
        self.seen
            .hoster_cancels
            .lock()
            .expect("cancels lock")
            .clone()
    }

    pub fn jobs(&self) -> Vec<serde_json::Value> {
        self.seen.jobs.lock().expect("jobs lock").clone()
    }

    pub fn held(&self) -> Vec<serde_json::Value> {
        self.seen.held.lock().expect("held lock").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().ok())
        })
        .flatten()
        .unwrap_or(0);
    while data.len() < head_end + len {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((path, data[head_end..head_end + len].to_vec()))
}

fn reply(mut conn: TcpStream, status: u16, body: &str) {
    let text = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(text.as_bytes());
}

/// The five fields that name an attempt, from a job or a probe body.
fn attempt_key(body: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(body).expect("hoster sends JSON");
    let mut key = serde_json::Map::new();
    for f in ["instance_name", "start_time", "dbname", "job_id", "attempt"] {
        key.insert(f.into(), v[f].clone());
    }
    key.into()
}

impl Route {
    fn fault(&self) -> Fault {
        self.fault.lock().expect("fault lock").clone()
    }

    fn injected(&self) {
        self.seen.injected.fetch_add(1, Ordering::SeqCst);
    }

    fn post(&self, path: &str, body: &[u8]) -> Option<(u16, String)> {
        match ureq::post(&format!("{}{path}", self.worker))
            .set("Content-Type", "application/json")
            .send_bytes(body)
        {
            Ok(r) => Some((r.status(), r.into_string().unwrap_or_default())),
            Err(ureq::Error::Status(code, r)) => Some((code, r.into_string().unwrap_or_default())),
            Err(_) => None,
        }
    }

    /// Cancels the attempt on the worker, once per attempt.
    fn cancel_on_worker(&self, key: &serde_json::Value) {
        let body = serde_json::to_vec(key).expect("key serializes");
        if !self
            .cancels_sent
            .lock()
            .expect("cancels lock")
            .insert(body.clone())
        {
            return;
        }
        if let Some((200, _)) = self.post("/shutdown", &body) {
            self.seen.cancelled.fetch_add(1, Ordering::SeqCst);
            self.injected();
        }
    }

    fn serve(&self, mut conn: TcpStream) {
        let Some((path, body)) = read_request(&mut conn) else {
            return;
        };
        let mut fault = self.fault();
        if path == "/dcompact" && matches!(fault, Fault::HoldSubmit) {
            let job = serde_json::from_slice(&body).expect("hoster sends JSON");
            self.seen.held.lock().expect("held lock").push(job);
            self.injected();
            while matches!(fault, Fault::HoldSubmit) {
                std::thread::sleep(Duration::from_millis(5));
                fault = self.fault();
            }
        }
        if path == "/dcompact" {
            match fault {
                Fault::DropSubmit => {
                    self.injected();
                    return;
                }
                Fault::AcceptUnforwarded => {
                    self.injected();
                    return reply(conn, 200, r#"{"status":"ok","addr":"lost"}"#);
                }
                Fault::AnswerSubmit(status) => {
                    self.injected();
                    return reply(
                        conn,
                        status,
                        r#"{"status":"error","error":"injected by the test proxy"}"#,
                    );
                }
                _ => {}
            }
        }
        let Some((status, answer)) = self.post(&path, &body) else {
            return;
        };
        if path == "/shutdown" {
            self.seen
                .hoster_cancels
                .lock()
                .expect("cancels lock")
                .push(status);
        }
        if path == "/dcompact" && status == 200 {
            let job = serde_json::from_slice(&body).expect("hoster sends JSON");
            self.seen.jobs.lock().expect("jobs lock").push(job);
            if matches!(fault, Fault::CancelAfterSubmit) {
                self.cancel_on_worker(&attempt_key(&body));
            }
        }
        if path != "/probe" || status != 200 {
            return reply(conn, status, &answer);
        }
        if matches!(fault, Fault::AbortAttempt) {
            self.cancel_on_worker(&attempt_key(&body));
            return reply(conn, 404, r#"{"status":"NotFound"}"#);
        }
        let probe: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        if probe["status"] == "running" {
            self.seen.running.fetch_add(1, Ordering::SeqCst);
            if matches!(fault, Fault::CancelWhenRunning) {
                self.cancel_on_worker(&attempt_key(&body));
            }
        }
        if probe["status"] != "done" {
            return reply(conn, status, &answer);
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let result = probe["result"]
            .as_str()
            .and_then(|r| b64.decode(r).ok())
            .expect("done carries a base64 result");
        let info = ResultInfo::parse(&result).expect("the worker's result parses");
        self.seen.results.lock().expect("results lock").push(info);
        match fault {
            Fault::ReplaceResult(bytes) => {
                self.injected();
                let answer = serde_json::json!({"status": "done", "result": b64.encode(bytes)});
                reply(conn, 200, &answer.to_string())
            }
            Fault::RewriteResult(rewrite) => {
                self.injected();
                let answer =
                    serde_json::json!({"status": "done", "result": b64.encode(rewrite(&result))});
                reply(conn, 200, &answer.to_string())
            }
            Fault::ProbeFailed => {
                self.injected();
                reply(
                    conn,
                    200,
                    r#"{"status":"failed","outcome":"compaction_failed","error":"injected by the test proxy"}"#,
                )
            }
            Fault::Damage(damage) => {
                let key = attempt_key(&body);
                let first = self
                    .damaged
                    .lock()
                    .expect("damaged lock")
                    .insert(key.to_string());
                let dir = self.output_dir_of(&key).filter(|_| first);
                if dir.is_some_and(|dir| damage_outputs(&dir, damage) > 0) {
                    self.injected();
                }
                reply(conn, status, &answer)
            }
            _ => reply(conn, status, &answer),
        }
    }
}

impl Route {
    /// The output directory the submitted job of attempt `key` named.
    fn output_dir_of(&self, key: &serde_json::Value) -> Option<PathBuf> {
        let fields = ["instance_name", "start_time", "dbname", "job_id", "attempt"];
        let jobs = self.seen.jobs.lock().expect("jobs lock");
        let job = jobs
            .iter()
            .find(|j| fields.iter().all(|f| j[*f] == key[*f]))?;
        let dir = PathBuf::from(job["output_dir"].as_str()?);
        // Attempts write below the DB's `farm-output` only.
        dir.starts_with(&self.outputs).then_some(dir)
    }
}

/// Damages every SST in `dir`; returns how many.
pub fn damage_outputs(dir: &Path, damage: Damage) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let ssts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    for sst in &ssts {
        match damage {
            Damage::Flip { at_permille, len } => {
                let mut bytes = std::fs::read(sst).expect("output readable");
                let from = bytes.len() * at_permille as usize / 1000;
                let to = len.map_or(bytes.len(), |l| (from + l as usize).min(bytes.len()));
                for b in &mut bytes[from..to] {
                    *b ^= 0x5a;
                }
                std::fs::write(sst, bytes).expect("output writable");
            }
            Damage::Truncate { keep_permille } => {
                let len = std::fs::metadata(sst).expect("output exists").len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(sst)
                    .and_then(|f| f.set_len(len * keep_permille / 1000))
                    .expect("output truncates");
            }
            Damage::Remove => std::fs::remove_file(sst).expect("output removable"),
        }
    }
    ssts.len()
}
