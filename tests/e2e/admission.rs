//! Admission on the worker: at most `MAX_PARALLEL_COMPACTIONS` attempts run,
//! at most `MAX_WAITING_COMPACTIONS` wait, the rest get 503; every accepted
//! attempt runs to `done` and stays answerable by `/probe`.
//!
//! Real compaction inputs are captured from a hoster by a service that copies
//! the DB directory at `schedule` time (so the inputs survive) and answers
//! "compact locally"; the test then submits the same input as eight
//! attempts at once.

use crate::harness::*;
use base64::Engine;
use farm::protocol::job::Job;
use farm::rocks::serialized::ResultInfo;
use farm::rocks::service::{
    self, CompactionService, InstallStatus, JobInfo, ScheduleAnswer, WaitAnswer,
};
use farm::rocks::sst::SstProperties;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, DB};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Copies the DB at the first `schedule` and keeps the input.
struct Capture {
    db: PathBuf,
    copy: PathBuf,
    captured: Mutex<Option<(JobInfo, Vec<u8>)>>,
}

impl CompactionService for Capture {
    fn schedule(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        let mut c = self.captured.lock().unwrap();
        if c.is_none() {
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(&self.db)
                .arg(&self.copy)
                .status()
                .unwrap();
            assert!(status.success());
            *c = Some((info.clone(), input.to_vec()));
        }
        ScheduleAnswer::UseLocal
    }
    fn wait(&self, _: &str) -> WaitAnswer {
        WaitAnswer::UseLocal
    }
    fn cancel_awaiting(&self) {}
    fn on_installation(&self, _: &str, _: InstallStatus) {}
}

/// Captures one real compaction input; returns the root of a copy of the DB
/// in which the input's files live, the job info and the input.
pub fn capture_input(dir: &Path) -> (PathBuf, JobInfo, Vec<u8>) {
    let db_path = dir.join("hoster/db");
    let copy_root = dir.join("copy");
    std::fs::create_dir_all(db_path.parent().unwrap()).unwrap();
    std::fs::create_dir_all(&copy_root).unwrap();
    let capture = Arc::new(Capture {
        db: db_path.clone(),
        copy: copy_root.join("db"),
        captured: Mutex::new(None),
    });
    let mut opts = small_options();
    opts.set_disable_auto_compactions(true);
    service::install(&mut opts, capture.clone());
    let db = DB::open_cf_descriptors(
        &opts,
        &db_path,
        vec![ColumnFamilyDescriptor::new("default", opts.clone())],
    )
    .unwrap();
    let cf = db.cf_handle("default").unwrap();
    let spec = WorkloadSpec {
        ops: 150_000,
        key_space: 100_000,
        value_size: 200,
        ..WorkloadSpec::default()
    };
    Model::default().write(&db, cf, &spec).unwrap();
    db.flush_cf(cf).unwrap();
    db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    let (info, input) = capture
        .captured
        .lock()
        .unwrap()
        .take()
        .expect("a compaction was scheduled");
    (copy_root, info, input)
}

/// A job for attempt `attempt` of the captured input, with its own output
/// directory in the copy.
pub fn captured_job(
    root: &Path,
    info: &JobInfo,
    input: &[u8],
    instance: &str,
    attempt: u32,
) -> Job {
    let db = root.join("db");
    Job {
        instance_name: instance.into(),
        dbname: db.display().to_string(),
        hoster_root: root.display().to_string(),
        start_time: 7,
        job_id: info.job_id,
        attempt,
        code_version: String::new(),
        cf_name: info.cf_name.clone(),
        output_level: info.output_level,
        estimate_time_us: 0,
        nfs_type: String::new(),
        nfs_mnt_src: String::new(),
        nfs_mnt_opt: String::new(),
        output_dir: db
            .join(format!("out/{instance}-{attempt}"))
            .display()
            .to_string(),
        compaction_service_input: Job::encode_input(input),
    }
}

#[test]
fn parallel_limit_queue_and_503() {
    let dir = tempfile::tempdir().unwrap();
    let (root, info, input) = capture_input(dir.path());
    let worker = start_worker(
        dir.path(),
        &[
            ("MAX_PARALLEL_COMPACTIONS", "1".into()),
            ("MAX_WAITING_COMPACTIONS", "1".into()),
        ],
    );
    let base = worker.base_url();
    let job = |attempt: u32| captured_job(&root, &info, &input, "adm", attempt);

    const N: u32 = 8;
    let barrier = Arc::new(Barrier::new(N as usize));
    let answers: Vec<(u32, u16, serde_json::Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|a| {
                let (barrier, body, url) = (
                    barrier.clone(),
                    serde_json::to_vec(&job(a)).unwrap(),
                    format!("{base}/dcompact"),
                );
                s.spawn(move || {
                    barrier.wait();
                    let (code, answer) = post(&url, &body, &[]);
                    (a, code, answer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted: Vec<u32> = answers
        .iter()
        .filter(|(_, c, _)| *c == 200)
        .map(|(a, _, _)| *a)
        .collect();
    let busy: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|(_, c, _)| *c == 503)
        .map(|(_, _, v)| v)
        .collect();
    println!("accepted {accepted:?}, busy {}", busy.len());
    assert_eq!(accepted.len() + busy.len(), N as usize, "{answers:?}");
    assert!(
        accepted.len() >= 2,
        "one running and one waiting were admitted"
    );
    assert!(!busy.is_empty(), "the rest were turned away");
    for b in &busy {
        assert_eq!(b["status"], "busy");
        assert!(
            b["error"]
                .as_str()
                .unwrap()
                .contains("MAX_PARALLEL_COMPACTIONS"),
            "{b}"
        );
    }

    // Never more than one running; every accepted attempt ends done.
    let identity = worker_stat(&worker)["identity"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = Vec::new();
    while done.len() < accepted.len() {
        assert!(Instant::now() < deadline, "attempts did not finish");
        let stat = worker_stat(&worker);
        assert!(stat["running"].as_u64().unwrap() <= 1, "{stat}");
        for &a in &accepted {
            let key = serde_json::to_vec(&job(a).key()).unwrap();
            let (code, p) = post(&format!("{base}/probe"), &key, &[]);
            assert_eq!(code, 200, "{p}");
            if p["status"] == "done" && !done.contains(&a) {
                let result = base64::engine::general_purpose::STANDARD
                    .decode(p["result"].as_str().unwrap())
                    .unwrap();
                let r = ResultInfo::parse(&result).unwrap();
                assert!(r.error.is_none());
                assert!(!r.output_files.is_empty());
                for f in &r.output_files {
                    let props = SstProperties::read(&r.output_path.join(&f.name)).unwrap();
                    assert_eq!(props.db_host_id, identity);
                }
                done.push(a);
            }
            assert_ne!(p["status"], "failed", "{p}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let counters = &worker_stat(&worker)["counters"];
    assert_eq!(counters["accepted"].as_u64(), Some(accepted.len() as u64));
    assert_eq!(counters["succeeded"].as_u64(), Some(accepted.len() as u64));
    assert_eq!(
        counters["rejected"]["busy"].as_u64(),
        Some(busy.len() as u64)
    );

    // A finished attempt stays answerable, and a resubmission is refused.
    let key = serde_json::to_vec(&job(accepted[0]).key()).unwrap();
    assert_eq!(
        post(&format!("{base}/probe"), &key, &[]).1["status"],
        "done"
    );
    let (code, again) = post(
        &format!("{base}/dcompact"),
        &serde_json::to_vec(&job(accepted[0])).unwrap(),
        &[],
    );
    assert_eq!(code, 412, "{again}");
    // Each attempt kept its directory with job.json and LOG.
    let att = dir.path().join(format!(
        "worker/adm/7/db/job-{:05}-{:02}/att-{:02}",
        info.job_id >> 32,
        info.job_id & 0xffff_ffff,
        accepted[0]
    ));
    assert!(
        att.join("job.json").is_file() && att.join("LOG").is_file(),
        "{}",
        att.display()
    );
}
