//! A worker takes HTTP storage jobs only when its operator said so
//! (`REMOTE_STORAGE=true`), and only from `http(s)://host:port`.

use crate::harness::*;
use farm::protocol::remote::RemoteStorage;
use farm::workload::capture::{capture_input, Captured};
use farm::workload::WorkloadSpec;

fn job_with(captured: &Captured, attempt: u32, remote: RemoteStorage) -> farm::protocol::job::Job {
    let mut job = captured.job("e2e", attempt);
    job.remote = Some(remote);
    job
}

fn remote(url: &str) -> RemoteStorage {
    RemoteStorage {
        url: url.into(),
        job: "0011223344556677".into(),
        token: "ab".repeat(32),
        expires_unix: u64::MAX / 2,
    }
}

#[test]
fn http_jobs_are_refused_unless_the_worker_takes_them() {
    let d = dirs("db");
    let spec = WorkloadSpec {
        ops: 2_000,
        key_space: 1_000,
        ..WorkloadSpec::default()
    };
    let captured = capture_input(d.tmp.path(), small_options(), &spec).expect("input captured");
    let worker = start_worker(d.tmp.path(), &[]);
    let (status, answer) = submit_job(
        &worker,
        &job_with(&captured, 0, remote("http://127.0.0.1:9")),
    );
    assert_eq!(status, 412, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("REMOTE_STORAGE"),
        "{answer}"
    );

    drop(worker);
    let worker = start_worker(d.tmp.path(), &[("REMOTE_STORAGE", "true".into())]);
    for (n, url) in ["file:///etc", "http://h/path?x", "gopher://h:70"]
        .iter()
        .enumerate()
    {
        let (status, answer) = submit_job(&worker, &job_with(&captured, n as u32 + 1, remote(url)));
        assert_eq!(status, 412, "{url}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("remote"),
            "{answer}"
        );
    }
    // Nothing listens there: refused, not hanging.
    let (status, answer) = submit_job(
        &worker,
        &job_with(&captured, 9, remote("http://127.0.0.1:9")),
    );
    assert_eq!(status, 412, "{answer}");
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["accepted"], 0, "{stat}");
}
