//! `"attempt": 4294967295` once panicked the queue ordering while the
//! supervisor's lock was held, and the queue stopped for good. Now the
//! number is refused at parse time with its bound, the largest allowed
//! attempt runs, and the next normal job still runs.

use super::worker::{start, wait_done};
use crate::admission::capture;
use crate::harness::*;

#[test]
fn an_attempt_beyond_its_bound_is_refused_and_the_queue_keeps_moving() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[("MAX_PARALLEL_COMPACTIONS", "1".into())]);

    for attempt in [
        u32::MAX,
        u32::MAX - 1,
        farm::protocol::limits::MAX_ATTEMPT + 1,
    ] {
        let job = c.job("overflow", attempt);
        let (code, answer) = submit_job(&worker, &job);
        assert_eq!(code, 400, "attempt {attempt}: {answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(why.contains("attempt") && why.contains("0..=1000"), "{why}");
    }
    // Also as the raw JSON an attacker sends, beyond u32 and negative.
    let mut raw = serde_json::to_value(c.job("overflow", 0)).unwrap();
    for bad in [serde_json::json!(4294967296u64), serde_json::json!(-1)] {
        raw["attempt"] = bad;
        let (code, answer) = post(
            &format!("{}/dcompact", worker.base_url()),
            raw.to_string().as_bytes(),
            &[],
        );
        assert_eq!(code, 400, "{answer}");
    }

    // The largest attempt allowed runs, and so does the next normal job.
    let largest = c.job("largest", farm::protocol::limits::MAX_ATTEMPT);
    let (code, answer) = submit_job(&worker, &largest);
    assert_eq!(code, 200, "{answer}");
    let normal = c.job("normal", 0);
    let (code, answer) = submit_job(&worker, &normal);
    assert_eq!(code, 200, "{answer}");
    wait_done(&worker, &largest);
    wait_done(&worker, &normal);
    // With `MULTI_PROCESS` a probe answers `done` at the child's delivery;
    // its slot is free once the child has been reaped.
    eventually("both slots are free", || {
        worker_stat(&worker)["running"] == 0
    });
    let stat = worker_stat(&worker);
    assert_eq!(stat["waiting"], 0, "{stat}");
    assert_eq!(stat["counters"]["succeeded"], 2, "{stat}");
    assert_eq!(stat["counters"]["rejected"]["malformed"], 5, "{stat}");
    assert_eq!(
        get_json(&format!("{}/health", worker.base_url()))["status"],
        "OK"
    );
}
