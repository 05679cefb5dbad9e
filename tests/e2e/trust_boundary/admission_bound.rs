//! Admission is bounded: a submission reserves its place in the queue and
//! takes an admission permit before the worker reads anything for it, so a
//! full worker, or one whose admissions are stuck on storage that does not
//! answer, refuses at once and reads nothing, while `/health`, `/probe`
//! and `/stat` stay answered.
//!
//! Storage that does not answer is a DB whose `CURRENT` is a named pipe
//! with no writer: opening it blocks, as a read from a dead NFS server
//! does, until the test opens the other end. The DB of a submission that
//! must not be read is watched with inotify: a refused submission leaves
//! no open on it, and the same submission once admitted does (the watch
//! works).

use super::http_limits::{agent, metric, send, start, Poller};
use farm::protocol::job::Job;
use serde_json::Value;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A job for the DB `data/<db>` of the test's hoster root. Its input is no
/// compaction input: admission refuses it, once it gets that far.
fn job(dir: &Path, db: &str) -> Job {
    let root = dir.join("data");
    let dbname = root.join(db);
    Job {
        instance_name: "bounded".into(),
        dbname: dbname.display().to_string(),
        hoster_root: root.display().to_string(),
        start_time: 1,
        job_id: 1 << 32,
        attempt: 0,
        code_version: String::new(),
        protocol: farm::protocol::version::PROTOCOL_VERSION,
        cf_name: "default".into(),
        output_level: 1,
        estimate_time_us: 0,
        nfs_type: String::new(),
        nfs_mnt_src: String::new(),
        nfs_mnt_opt: String::new(),
        output_dir: dbname.join("out").display().to_string(),
        compaction_service_input: Job::encode_input(b"not a compaction input"),
        plugins: Vec::new(),
        job_info: None,
        remote: None,
    }
}

/// A DB directory whose `CURRENT` is a named pipe: admission blocks on it.
fn stuck_db(dir: &Path, db: &str) -> PathBuf {
    let path = dir.join("data").join(db);
    std::fs::create_dir_all(&path).unwrap();
    let current = path.join("CURRENT");
    nix::unistd::mkfifo(&current, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    current
}

/// A DB directory with a plain `CURRENT`, watched.
fn canary_db(dir: &Path) -> PathBuf {
    let path = dir.join("data/canary");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("CURRENT"), "MANIFEST-000001\n").unwrap();
    path
}

/// Lets a blocked open of `fifo` go on: opening the writing end succeeds
/// only while a reader waits (else ENXIO), so success also shows that the
/// worker was blocked there.
fn unblock(fifo: &Path) {
    crate::harness::eventually("the worker waits on the pipe", || {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .is_ok()
    });
}

/// Submits `job` from a thread (it blocks while admission does).
fn submit_in_background(base: &str, job: &Job) -> JoinHandle<(u16, Value)> {
    let url = format!("{base}/dcompact");
    let body = serde_json::to_vec(job).unwrap();
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        send(agent.post(&url), Some(&body))
    })
}

/// Submits `job`; the answer and how long it took.
fn submit(base: &str, job: &Job) -> (u16, Value, Duration) {
    let t = Instant::now();
    let body = serde_json::to_vec(job).unwrap();
    let (code, answer) = send(agent().post(&format!("{base}/dcompact")), Some(&body));
    (code, answer, t.elapsed())
}

fn admitting(base: &str) -> f64 {
    metric(base, "farm_worker_admissions_in_progress")
}

fn counters(base: &str) -> Value {
    send(agent().get(&format!("{base}/stat?html=0")), None).1["counters"].clone()
}

/// Opens and reads in a directory, seen by inotify.
struct Watch(OwnedFd);

impl Watch {
    fn new(dir: &Path) -> Watch {
        // SAFETY: inotify_init1 takes flags only; the result is checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is a new descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: `fd` is an inotify descriptor and `path` a valid C string.
        let wd = unsafe {
            libc::inotify_add_watch(
                fd.as_raw_fd(),
                path.as_ptr(),
                libc::IN_OPEN | libc::IN_ACCESS,
            )
        };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        Watch(fd)
    }

    /// The number of events since the last call.
    fn events(&self) -> usize {
        const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
        let mut buf = [0u8; 8192];
        let mut count = 0;
        loop {
            // SAFETY: reading into a buffer of the length given.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n @ 1..) = usize::try_from(n) else {
                return count; // EAGAIN: nothing more
            };
            let mut at = 0;
            while at + HEADER <= n {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                at += HEADER + len;
                count += 1;
            }
        }
    }
}

/// `MAX_ADMISSIONS=2` admissions stuck on storage that does not answer:
/// further submissions get 503 at once and their DB is never opened, while
/// `/health`, `/probe` and `/stat` answer within 1 s; once the storage
/// answers, admission goes on.
#[test]
fn beyond_max_admissions_a_submission_is_refused_at_once_and_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pipes: Vec<PathBuf> = (0..2)
        .map(|i| stuck_db(dir.path(), &format!("stuck-{i}")))
        .collect();
    let canary = canary_db(dir.path());
    let worker = start(
        dir.path(),
        &[
            ("MAX_ADMISSIONS", "2".into()),
            ("MAX_PARALLEL_COMPACTIONS", "4".into()),
            ("MAX_WAITING_COMPACTIONS", "4".into()),
        ],
    );
    let base = worker.base_url();
    let poller = Poller::start(base.clone());
    let blocked: Vec<_> = (0..2)
        .map(|i| submit_in_background(&base, &job(dir.path(), &format!("stuck-{i}"))))
        .collect();
    crate::harness::eventually("two admissions are in progress", || admitting(&base) == 2.0);
    let watch = Watch::new(&canary);
    let mut slowest_refusal = Duration::ZERO;
    for _ in 0..5 {
        let (code, answer, took) = submit(&base, &job(dir.path(), "canary"));
        assert_eq!(code, 503, "{answer}");
        assert_eq!(answer["status"], "busy");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("MAX_ADMISSIONS=2"),
            "{answer}"
        );
        slowest_refusal = slowest_refusal.max(took);
    }
    assert_eq!(watch.events(), 0, "a refused submission's DB was opened");
    std::thread::sleep(Duration::from_millis(500));
    let (slowest, rounds) = poller.finish();
    println!(
        "refusals beyond MAX_ADMISSIONS took at most {slowest_refusal:?}; \
         {rounds} rounds of /health, /probe, /stat: slowest answer {slowest:?}"
    );
    assert!(slowest_refusal < Duration::from_secs(1));
    assert!(
        slowest < Duration::from_secs(1),
        "slowest answer {slowest:?}"
    );
    let c = counters(&base);
    assert_eq!(c["rejected"]["admissions_full"], 5, "{c}");
    assert_eq!(c["rejected"]["busy"], 0, "{c}");
    assert_eq!(admitting(&base), 2.0);

    for pipe in &pipes {
        unblock(pipe);
    }
    for b in blocked {
        let (code, answer) = b.join().unwrap();
        assert_eq!(code, 412, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("CURRENT"),
            "{answer}"
        );
    }
    crate::harness::eventually("the admissions ended", || admitting(&base) == 0.0);
    // Admitted now, the canary's DB is read (and its input refused).
    let (code, answer, _) = submit(&base, &job(dir.path(), "canary"));
    assert_eq!(code, 400, "{answer}");
    assert!(watch.events() > 0, "the watch sees an admission");
}

/// A full queue (`MAX_PARALLEL_COMPACTIONS=1`, no waiting places) whose
/// place is held by a submission being admitted: another gets 503 before
/// its DB is opened. When the first client goes away, its place is given
/// back but its admission permit stays with the blocked work, so with
/// `MAX_ADMISSIONS=1` the next is refused for that; once the storage
/// answers, both are free again.
#[test]
fn a_full_queue_refuses_before_reading_and_a_dropped_request_gives_its_place_back() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = stuck_db(dir.path(), "stuck");
    let canary = canary_db(dir.path());
    let worker = start(
        dir.path(),
        &[
            ("MAX_ADMISSIONS", "1".into()),
            ("MAX_PARALLEL_COMPACTIONS", "1".into()),
            ("MAX_WAITING_COMPACTIONS", "0".into()),
        ],
    );
    let base = worker.base_url();
    // The stuck submission over a connection the test can close.
    let mut stuck = std::net::TcpStream::connect(&worker.addr).unwrap();
    let body = serde_json::to_vec(&job(dir.path(), "stuck")).unwrap();
    use std::io::Write;
    write!(
        stuck,
        "POST /dcompact HTTP/1.1\r\nHost: worker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stuck.write_all(&body).unwrap();
    crate::harness::eventually("the stuck submission is being admitted", || {
        admitting(&base) == 1.0
    });
    let watch = Watch::new(&canary);

    let (code, answer, took) = submit(&base, &job(dir.path(), "canary"));
    println!("a submission to a full worker was refused in {took:?}");
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("MAX_PARALLEL_COMPACTIONS=1"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(1));
    assert_eq!(watch.events(), 0, "a full worker opened the job's DB");
    assert_eq!(counters(&base)["rejected"]["busy"], 1);

    // The client goes away: its place comes back, the permit does not.
    drop(stuck);
    crate::harness::eventually("the place is given back", || {
        let (code, answer, _) = submit(&base, &job(dir.path(), "canary"));
        assert_eq!(code, 503, "{answer}");
        answer["error"]
            .as_str()
            .unwrap()
            .contains("MAX_ADMISSIONS=1")
    });
    assert_eq!(watch.events(), 0, "a refused submission's DB was opened");
    assert_eq!(admitting(&base), 1.0, "the blocked work keeps its permit");
    let health = send(agent().get(&format!("{base}/health")), None);
    assert_eq!(health.0, 200);

    unblock(&pipe);
    crate::harness::eventually("the admission ended", || admitting(&base) == 0.0);
    let (code, answer, _) = submit(&base, &job(dir.path(), "canary"));
    assert_eq!(code, 400, "{answer}");
    assert!(watch.events() > 0, "the watch sees an admission");
    let c = counters(&base);
    assert_eq!(c["accepted"], 0, "{c}");
    assert!(
        c["rejected"]["admissions_full"].as_u64().unwrap() >= 1,
        "{c}"
    );
}
