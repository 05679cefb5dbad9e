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
use farm::rocks::serialized::ResultInfo;
use farm::rocks::sst::SstProperties;
use farm::workload::capture::{capture_input, Captured};
use farm::workload::WorkloadSpec;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Captures one real compaction input (see `farm::workload::capture`).
pub fn capture(dir: &Path) -> Captured {
    let spec = WorkloadSpec {
        ops: 150_000,
        key_space: 100_000,
        value_size: 200,
        ..WorkloadSpec::default()
    };
    capture_input(dir, small_options(), &spec).expect("input captured")
}

#[test]
fn parallel_limit_queue_and_503() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let info = &c.info;
    let worker = start_worker(
        dir.path(),
        &[
            ("MAX_PARALLEL_COMPACTIONS", "1".into()),
            ("MAX_WAITING_COMPACTIONS", "1".into()),
        ],
    );
    let base = worker.base_url();
    let job = |attempt: u32| c.job("adm", attempt);

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
    let identity = worker_identity(&worker);
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

/// With `WORKER_AUTH_TOKEN`, a job without the token is refused with 401 and
/// leaves no attempt directory; the same job with it is accepted.
#[test]
fn the_token_guards_submission() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start_worker(dir.path(), &[("WORKER_AUTH_TOKEN", "t0ken".into())]);
    let url = format!("{}/dcompact", worker.base_url());
    let body = serde_json::to_vec(&c.job("auth", 0)).unwrap();
    let (code, answer) = post(&url, &body, &[]);
    assert_eq!(code, 401, "{answer}");
    assert!(
        !dir.path().join("worker/auth").exists(),
        "no attempt directory"
    );
    assert_eq!(worker_stat(&worker)["counters"]["accepted"], 0);
    let (code, answer) = post(&url, &body, &[("Authorization", "Bearer t0ken")]);
    assert_eq!(code, 200, "{answer}");
    eventually("the attempt ran", || {
        worker_stat(&worker)["counters"]["succeeded"] == 1
    });
}

/// The space guard: a worker that would leave less than
/// `OUTPUT_SPACE_MARGIN` free on the output's filesystem refuses the job,
/// naming the shortfall, and the hoster compacts locally.
#[test]
fn too_little_free_space_is_refused() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[("OUTPUT_SPACE_MARGIN", "1000000G".into())]);
    let params = params(&d.root, &[worker.base_url()], serde_json::json!({}));
    let cfs = vec![rocksdb::ColumnFamilyDescriptor::new(
        "default",
        small_options(),
    )];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 30_000,
        key_space: 10_000,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut farm::workload::Model::default(), &spec);
    let stats = hoster.farm.stats();
    assert!(stats.fallbacks["refused"] > 0, "{stats:?}");
    assert_eq!(stats.local_total(), stats.fallbacks["refused"], "{stats:?}");
    assert!(
        stats.last_errors["refused"].contains("not enough free space"),
        "{:?}",
        stats.last_errors
    );
    assert_eq!(worker_stat(&worker)["counters"]["accepted"], 0);
}
