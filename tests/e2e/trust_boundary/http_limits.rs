//! The HTTP listener's limits against clients that hold connections: half
//! sent heads (slowloris), more connections than `MAX_CONNECTIONS`,
//! kept-alive connections left idle, bodies that trickle. Throughout, the
//! worker keeps answering the endpoints hosters and operators rely on.

use crate::harness::*;
use crate::sandbox::{Sandbox, SandboxedWorker};
use farm::worker::local::LocalWorker;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A sandboxed worker with `extra` settings.
pub(super) fn start(dir: &Path, extra: &[(&str, String)]) -> SandboxedWorker {
    let mut env = vec![
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("HOSTER_ROOTS", test_hoster_roots(dir)),
        ("RUST_LOG", "warn".to_string()),
    ];
    env.extend(extra.iter().cloned());
    Sandbox::new()
        .share(dir)
        .start_worker(&env, Stdio::inherit())
        .expect("worker starts")
}

/// A client that gives up after 10 s rather than hang the test.
pub(super) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

/// Status and JSON answer of a request, error statuses included.
pub(super) fn send(req: ureq::Request, body: Option<&[u8]>) -> (u16, Value) {
    let sent = match body {
        Some(b) => req.set("Content-Type", "application/json").send_bytes(b),
        None => req.call(),
    };
    let resp = match sent {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().expect("answer readable");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One round of what hosters and operators ask: `/health`, `/probe` (of
/// an attempt that does not exist), `/stat?html=0`. Returns the slowest
/// answer's time and its endpoint.
pub(super) fn poll_endpoints(agent: &ureq::Agent, base: &str) -> (Duration, &'static str) {
    let key = serde_json::json!({
        "instance_name": "nobody", "start_time": 1, "dbname": "/x", "job_id": 1, "attempt": 0
    });
    let key = serde_json::to_vec(&key).unwrap();
    let mut slowest = (Duration::ZERO, "");
    let mut timed = |what: &'static str, f: &dyn Fn() -> (u16, Value), want: u16| {
        let t = Instant::now();
        let (code, answer) = f();
        slowest = slowest.max((t.elapsed(), what));
        assert_eq!(code, want, "{what}: {answer}");
    };
    timed(
        "/health",
        &|| send(agent.get(&format!("{base}/health")), None),
        200,
    );
    timed(
        "/probe",
        &|| send(agent.post(&format!("{base}/probe")), Some(&key)),
        404,
    );
    timed(
        "/stat",
        &|| send(agent.get(&format!("{base}/stat?html=0")), None),
        200,
    );
    slowest
}

/// Polls the endpoints from a thread until told to stop; the slowest
/// answer of all rounds, and how many rounds.
pub(super) struct Poller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Duration, usize)>,
}

/// An answer slower than this is printed with when it came.
const SLOW: Duration = Duration::from_millis(100);

impl Poller {
    pub(super) fn start(base: String) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let agent = agent();
            let (mut slowest, mut rounds) = (Duration::ZERO, 0);
            let t0 = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                let (took, what) = poll_endpoints(&agent, &base);
                if took > SLOW {
                    println!(
                        "{what} answered in {took:?}, {:?} after polling began",
                        t0.elapsed()
                    );
                }
                slowest = slowest.max(took);
                rounds += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (slowest, rounds)
        });
        Poller { stop, thread }
    }

    pub(super) fn finish(self) -> (Duration, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("poller ran")
    }
}

/// The value of a sample in `/metrics` (`name` with its labels as the text
/// shows them).
pub(super) fn metric(base: &str, name: &str) -> f64 {
    let text = agent()
        .get(&format!("{base}/metrics"))
        .call()
        .expect("metrics served")
        .into_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in {text}"))
}

fn connect(worker: &LocalWorker) -> TcpStream {
    TcpStream::connect(&worker.addr).expect("connect")
}

/// Whether the worker closed `s`: a read returns end of file or a reset
/// within `wait`, rather than nothing.
fn closed_by_peer(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // An answer (a 408) before the close: read on.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Whether the worker has closed `s` by now (without waiting).
fn closed_now(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Reads one HTTP/1.1 answer from `s`: status and body.
fn read_answer(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    while got.len() < head_end + length {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&got[head_end..head_end + length]).into_owned();
    Ok((status, body))
}

/// `GET path` on a kept-alive connection.
fn get_on(s: &mut TcpStream, path: &str) -> std::io::Result<(u16, String)> {
    write!(s, "GET {path} HTTP/1.1\r\nHost: worker\r\n\r\n")?;
    read_answer(s)
}

/// Half of a head, never finished.
const HALF_HEAD: &[u8] = b"POST /dcompact HTTP/1.1\r\nHost: worker\r\nContent-Le";

/// 400 connections that send half of their heads (a few trickle a byte
/// now and then, which must not buy them time) while `/health`, `/probe`
/// and `/stat` are polled: every answer comes within 1 s, and the worker
/// closes each stalled connection once `HTTP_HEADER_TIMEOUT` has passed,
/// not before.
#[test]
fn slowloris_connections_are_closed_after_the_header_timeout_while_the_worker_answers() {
    let dir = tempfile::tempdir().unwrap();
    let header_timeout = Duration::from_secs(3);
    let worker = start(dir.path(), &[("HTTP_HEADER_TIMEOUT", "3s".into())]);
    let base = worker.base_url();
    let poller = Poller::start(base.clone());

    const STALLED: usize = 400;
    const TRICKLING: usize = 20;
    let t0 = Instant::now();
    // Each with the time its connect returned: the worker accepted it then
    // or later, so it may close it no sooner than the timeout after that.
    let mut stalled: Vec<(TcpStream, Instant)> = (0..STALLED)
        .map(|_| {
            let mut s = connect(&worker);
            let opened = Instant::now();
            s.write_all(HALF_HEAD).unwrap();
            (s, opened)
        })
        .collect();
    let opened = t0.elapsed();
    let trickle: Vec<TcpStream> = stalled[..TRICKLING]
        .iter()
        .map(|(s, _)| s.try_clone().unwrap())
        .collect();
    let trickler = std::thread::spawn(move || {
        let mut trickle = trickle;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && !trickle.is_empty() {
            std::thread::sleep(Duration::from_millis(250));
            trickle.retain_mut(|s| s.write_all(b"n").is_ok());
        }
    });

    // Each is closed by the worker once its timeout has passed, not before.
    let mut earliest = Duration::MAX;
    let deadline = Instant::now() + header_timeout + Duration::from_secs(10);
    while !stalled.is_empty() && Instant::now() < deadline {
        stalled.retain_mut(|(s, opened)| {
            if !closed_now(s) {
                return true;
            }
            earliest = earliest.min(opened.elapsed());
            false
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed_after = t0.elapsed();
    trickler.join().unwrap();
    // The endpoints still answer once the stalled connections are gone.
    std::thread::sleep(Duration::from_millis(300));
    let (slowest, rounds) = poller.finish();
    println!(
        "{STALLED} stalled connections opened in {opened:?}, all closed by {closed_after:?} \
         (the soonest {earliest:?} after it was opened); {rounds} rounds of /health, /probe, \
         /stat: slowest answer {slowest:?}"
    );
    assert!(
        stalled.is_empty(),
        "{} stalled connections still open",
        stalled.len()
    );
    assert!(
        earliest >= header_timeout,
        "a connection was closed after {earliest:?}"
    );
    assert!(
        rounds >= 10,
        "the endpoints were polled throughout ({rounds} rounds)"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest answer {slowest:?}"
    );
    let closed = metric(
        &base,
        "farm_worker_http_closed_total{reason=\"header_timeout\"}",
    );
    assert!(
        closed >= STALLED as f64,
        "{closed} closed for their headers"
    );
}

/// With `MAX_CONNECTIONS` open, a further connection is not served (it
/// waits in the backlog) until one of them closes; then it is.
#[test]
fn beyond_max_connections_a_connection_waits_until_another_closes() {
    let dir = tempfile::tempdir().unwrap();
    let worker = start(
        dir.path(),
        &[
            ("MAX_CONNECTIONS", "4".into()),
            ("HTTP_HEADER_TIMEOUT", "60s".into()),
            ("HTTP_IDLE_TIMEOUT", "60s".into()),
        ],
    );
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(&worker);
            assert_eq!(get_on(&mut s, "/health").unwrap().0, 200);
            s
        })
        .collect();
    let mut fifth = connect(&worker);
    write!(fifth, "GET /health HTTP/1.1\r\nHost: worker\r\n\r\n").unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 1];
    let waited = fifth.peek(&mut buf);
    assert!(
        waited
            .as_ref()
            .is_err_and(|e| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a fifth connection was served while four were open: {waited:?}"
    );
    // The four still work.
    assert_eq!(get_on(&mut held[1], "/health").unwrap().0, 200);
    let closed = Instant::now();
    drop(held.remove(0));
    fifth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (status, body) = read_answer(&mut fifth).expect("served once a connection closed");
    println!(
        "the fifth connection was served {:?} after one closed",
        closed.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    drop(held);
    drop(fifth);
    let base = worker.base_url();
    eventually("the connections are closed", || {
        metric(&base, "farm_worker_http_connections_open") <= 1.0
    });
    assert_eq!(metric(&base, "farm_worker_http_max_connections"), 4.0);
    assert!(metric(&base, "farm_worker_http_connection_limit_waits_total") >= 1.0);
}

/// A kept-alive connection is closed once it has been idle for
/// `HTTP_IDLE_TIMEOUT`, and one that keeps asking stays open.
#[test]
fn idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let worker = start(dir.path(), &[("HTTP_IDLE_TIMEOUT", "1s".into())]);
    let mut busy = connect(&worker);
    let mut idle = connect(&worker);
    assert_eq!(get_on(&mut idle, "/health").unwrap().0, 200);
    let answered = Instant::now();
    // Three seconds of requests 300 ms apart: never idle for a second.
    while answered.elapsed() < Duration::from_secs(3) {
        assert_eq!(get_on(&mut busy, "/health").unwrap().0, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(closed_now(&mut idle), "idle for 3 s and still open");
    let mut late = connect(&worker);
    assert_eq!(get_on(&mut late, "/health").unwrap().0, 200);
    let t = Instant::now();
    assert!(closed_by_peer(&mut late, Duration::from_secs(10)));
    let idle_for = t.elapsed();
    println!("an idle connection was closed after {idle_for:?}");
    assert!(
        idle_for >= Duration::from_millis(800),
        "closed after {idle_for:?}"
    );
    let base = worker.base_url();
    assert!(
        metric(
            &base,
            "farm_worker_http_closed_total{reason=\"idle_timeout\"}"
        ) >= 2.0
    );
}

/// A body that trickles, or stops, gets 408 `{"status":"timeout"}` once
/// `HTTP_BODY_TIMEOUT` has passed since its head, and its connection is
/// closed; a submission cut so counts as rejected for `timeout`.
#[test]
fn a_trickling_body_is_cut_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let body_timeout = Duration::from_secs(2);
    let worker = start(dir.path(), &[("HTTP_BODY_TIMEOUT", "2s".into())]);
    let mut s = connect(&worker);
    let head = "POST /dcompact HTTP/1.1\r\nHost: worker\r\nContent-Type: application/json\r\n\
                Content-Length: 100000\r\n\r\n{";
    s.write_all(head.as_bytes()).unwrap();
    let sent = Instant::now();
    let mut trickling = s.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if trickling.write_all(b" ").is_err() {
                break;
            }
        }
    });
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let (status, body) = read_answer(&mut s).expect("an answer");
    let cut_after = sent.elapsed();
    println!("a trickling body was answered {status} after {cut_after:?}: {body}");
    assert_eq!(status, 408, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["status"], "timeout", "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("HTTP_BODY_TIMEOUT"));
    assert!(cut_after >= body_timeout, "cut after {cut_after:?}");
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(5)),
        "connection closed"
    );
    trickler.join().unwrap();

    // A body that stops half way, on /probe.
    let mut s = connect(&worker);
    let head =
        "POST /probe HTTP/1.1\r\nHost: worker\r\nContent-Length: 500\r\n\r\n{\"instance_name\":";
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let (status, body) = read_answer(&mut s).expect("an answer");
    assert_eq!(status, 408, "{body}");
    assert!(closed_by_peer(&mut s, Duration::from_secs(5)));

    let base = worker.base_url();
    let stat = send(agent().get(&format!("{base}/stat?html=0")), None).1;
    assert_eq!(
        stat["counters"]["rejected"]["timeout"], 1,
        "{}",
        stat["counters"]
    );
    assert_eq!(stat["counters"]["accepted"], 0);
    assert_eq!(metric(&base, "farm_worker_http_body_timeouts_total"), 2.0);
    assert_eq!(
        metric(&base, "farm_worker_rejected_total{reason=\"timeout\"}"),
        1.0
    );
}
