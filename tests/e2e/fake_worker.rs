//! A "worker" that answers garbage, 404, or nothing: every compaction falls
//! back to local with the matching reason, and no write fails.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Garbage,
    NotFound,
    Silent,
}

/// Requests the fake has read, by kind.
#[derive(Default)]
struct Seen {
    /// `POST /dcompact`: submissions, one per try.
    submits: AtomicU64,
    /// `POST /shutdown`: the hoster cancelling an attempt it gave up on.
    cancels: AtomicU64,
    /// Anything else.
    other: AtomicU64,
}

/// A loopback HTTP server that counts requests and misbehaves.
struct FakeWorker {
    addr: String,
    requests: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeWorker {
    fn start(behaviour: Behaviour) -> FakeWorker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let requests = requests.clone();
            let stop = stop.clone();
            move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            if let Some(c) = answer(conn, behaviour, &requests) {
                                held.push(c);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            }
        });
        FakeWorker {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head; answers per `behaviour`. A silent connection is
/// returned so it stays open (unanswered) until the server stops.
fn answer(mut conn: TcpStream, behaviour: Behaviour, requests: &Seen) -> Option<TcpStream> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let counter = if head.starts_with(b"POST /dcompact ") {
        &requests.submits
    } else if head.starts_with(b"POST /shutdown ") {
        &requests.cancels
    } else {
        &requests.other
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let reply: &[u8] = match behaviour {
        Behaviour::Garbage => {
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<<not json>>!"
        }
        Behaviour::NotFound => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot here\n"
        }
        Behaviour::Silent => return Some(conn),
    };
    let _ = conn.write_all(reply);
    None
}

fn run_against(behaviour: Behaviour, reason: &str) {
    let d = dirs("db");
    let fake = FakeWorker::start(behaviour);
    // One try per compaction and no backoff: every compaction sends exactly
    // one request, so the fake's count and the fallbacks can be compared.
    let params = params(
        &d.root,
        &[format!("http://{}", fake.addr)],
        serde_json::json!({"http_max_retry": 1, "worker_backoff": 0, "http_timeout": 0.3}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 20_000,
        seed: 3,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);

    let stats = hoster.farm.stats();
    let seen = fake.requests.submits.load(Ordering::SeqCst);
    let cancels = fake.requests.cancels.load(Ordering::SeqCst);
    let other = fake.requests.other.load(Ordering::SeqCst);
    let fallbacks = stats.local_total();
    println!(
        "{behaviour:?}: fake saw {seen} submissions, {cancels} cancels, {other} others; \
         hoster {stats:?}"
    );
    assert!(fallbacks > 0, "compactions were attempted");
    assert_eq!(
        stats.fallbacks[reason], fallbacks,
        "every fallback is for {reason}: {stats:?}"
    );
    assert_eq!(
        seen, fallbacks,
        "`http_max_retry: 1` means one submission per compaction"
    );
    assert!(
        cancels <= seen && other == 0,
        "only submissions and their cancels reach a worker"
    );
    assert_eq!(stats.remote_installed, 0);
}

#[test]
fn garbage_answers_fall_back_as_protocol_errors() {
    run_against(Behaviour::Garbage, "protocol");
}

#[test]
fn not_found_answers_fall_back_as_http_status() {
    run_against(Behaviour::NotFound, "http_status");
}

#[test]
fn silent_worker_falls_back_as_timeout() {
    run_against(Behaviour::Silent, "timeout");
}
