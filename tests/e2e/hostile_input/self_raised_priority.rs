//! `estimate_time_us: 1` once raised a job's priority about a
//! thousandfold. Now the queue orders by what the worker measured (the
//! input's bytes, the level the input names): a later job of the same
//! level and size that claims to be quick does not overtake an earlier
//! one, and a job whose `output_level` differs from its input's is 400.

use super::worker::{start, wait_done};
use crate::admission::capture;
use crate::harness::*;
use std::time::{Duration, Instant};

#[test]
fn a_job_cannot_raise_its_own_priority() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[("MAX_PARALLEL_COMPACTIONS", "1".into())]);

    // A level that is not the input's is refused.
    let mut lower = c.job("lower", 0);
    lower.output_level = if c.info.output_level > 0 { 0 } else { 1 };
    let (code, answer) = submit_job(&worker, &lower);
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("output_level"),
        "{answer}"
    );

    // One job holds the only slot; the honest one queues, then the one
    // that claims to take a microsecond.
    let blocker = c.job("blocker", 0);
    let honest = c.job("honest", 0);
    let mut quick = c.job("quick", 0);
    quick.estimate_time_us = 1;
    for job in [&blocker, &honest, &quick] {
        let (code, answer) = submit_job(&worker, job);
        assert_eq!(code, 200, "{answer}");
    }
    let stat = worker_stat(&worker);
    assert_eq!(stat["waiting"], 2, "both wait behind the blocker: {stat}");

    // Whichever leaves the queue first is seen running or done while the
    // other still waits.
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        assert!(Instant::now() < deadline, "nothing left the queue");
        let h = probe_job(&worker, &honest)["status"].clone();
        let q = probe_job(&worker, &quick)["status"].clone();
        match (h.as_str().unwrap(), q.as_str().unwrap()) {
            ("queued", "queued") => std::thread::sleep(Duration::from_millis(5)),
            (_, "queued") => break "honest",
            ("queued", _) => break "quick",
            other => panic!("both left the queue between two looks: {other:?}"),
        }
    };
    assert_eq!(
        first, "honest",
        "the self-raised job overtook the earlier one"
    );
    wait_done(&worker, &honest);
    wait_done(&worker, &quick);
}
