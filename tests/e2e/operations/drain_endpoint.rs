//! `POST /drain`: token-guarded; the worker then refuses new jobs with the
//! answer after which a hoster tries another worker, shows the drain in
//! `/health`, `/stat`, `/metrics` and the web view, finishes the attempt
//! it accepted, and keeps its result until a probe collects it; then it
//! exits by itself.

use super::worker_at::{log_of, post_drain, start_worker_at};
use crate::harness::*;
use std::time::{Duration, Instant};

const TOKEN: &str = "drain-test-token-0123456789";

#[test]
fn post_drain_finishes_the_accepted_attempt_and_waits_until_its_result_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let c = crate::admission::capture(dir.path());
    let mut worker = start_worker_at(
        dir.path(),
        "worker",
        "127.0.0.1:0",
        &[("WORKER_AUTH_TOKEN", TOKEN.into())],
    );
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let job = c.job("drain", 0);
    let body = serde_json::to_vec(&job).unwrap();
    let url = worker.base_url();
    assert_eq!(post(&format!("{url}/dcompact"), &body, &auth).0, 200);

    // Without the token the drain is refused, and nothing changes.
    let (code, _) = post_drain(&worker, &[]);
    assert_eq!(code, 401);
    assert_eq!(worker_stat(&worker)["draining"], false);
    let (code, answer) = post_drain(&worker, &auth);
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("ok")),
        "{answer}"
    );
    assert_eq!(answer["cause"], "POST /drain");

    // New jobs: 503 "stopping", the answer after which hosters try another
    // worker; /health: 412.
    let next = serde_json::to_vec(&c.job("drain", 1)).unwrap();
    let (code, answer) = post(&format!("{url}/dcompact"), &next, &auth);
    assert_eq!(
        (code, answer["status"].as_str()),
        (503, Some("stopping")),
        "{answer}"
    );
    let health = ureq::get(&format!("{url}/health")).call();
    assert!(
        matches!(health, Err(ureq::Error::Status(412, _))),
        "{health:?}"
    );

    // The accepted attempt runs to its end, not cancelled ...
    eventually("the accepted attempt succeeded", || {
        worker_stat(&worker)["counters"]["succeeded"].as_u64() == Some(1)
    });
    let stat = worker_stat(&worker);
    assert_eq!(stat["draining"], true, "{stat}");
    assert_eq!(stat["drain"]["cause"], "POST /drain", "{stat}");
    assert_eq!(stat["counters"]["rejected"]["draining"], 1, "{stat}");
    assert_eq!(failed_attempts(&stat), 0, "{stat}");
    let metrics = ureq::get(&format!("{url}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("\nfarm_worker_draining 1\n"), "{metrics}");
    assert!(metrics.contains("farm_worker_rejected_total{reason=\"draining\"} 1"));
    let page = ureq::get(&format!("{url}/stat"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains("(draining since "), "{page}");

    // ... and the worker stays while nobody has collected the result.
    assert!(
        worker.wait_exit(Duration::from_secs(2)).is_none(),
        "the worker waits for its uncollected result"
    );
    let answer = probe_job(&worker, &job);
    assert_eq!(answer["status"], "done", "{answer}");
    assert!(answer["result"].as_str().is_some_and(|r| !r.is_empty()));
    let collected = Instant::now();
    let status = worker.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker exits by itself once the result was collected: {status:?}"
    );
    assert!(collected.elapsed() < Duration::from_secs(10));
    let log = std::fs::read_to_string(log_of(dir.path(), "worker")).unwrap();
    assert!(log.contains("drain begun"), "{log}");
    assert!(log.contains("drained"), "{log}");
}
