//! An attempt whose plugin code hangs (the fixture filter `farm.test.hang`
//! sleeps an hour and never looks at RocksDB's cancel flag): it ends
//! `timed_out` at its deadline, in-process as in a child, its slot is free
//! again, the hoster compacts locally, and the worker still stops within
//! its bounded final wait.

use super::setup::*;
use crate::fault_proxy::Fault;
use crate::harness::{eventually, worker_stat};
use rocksdb::Options;
use std::time::{Duration, Instant};

fn hang_options() -> Options {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    o.set_compaction_filter("farm.test.hang", |_level, _key: &[u8], _value: &[u8]| {
        rocksdb::compaction_filter::Decision::Keep
    });
    o
}

#[test]
fn an_attempt_that_hangs_ends_timed_out_and_frees_its_slot() {
    let mut env = with_plugins(&[scenario_plugin()]);
    env.extend([
        ("ATTEMPT_TIMEOUT_MIN", "1s".to_string()),
        ("ATTEMPT_TIMEOUT_MAX", "2s".to_string()),
        ("CANCEL_GRACE", "1s".to_string()),
        ("MAX_PARALLEL_COMPACTIONS", "1".to_string()),
        ("SHUTDOWN_GRACE", "1s".to_string()),
    ]);
    let mut s = Scenario::start(
        hang_options(),
        &env,
        Fault::None,
        serde_json::json!({"plugin_versions": {"farm.test.hang": 1}}),
    );
    s.generate_test_data();

    // The first attempt hangs; at its deadline (2 s) and grace (1 s) it
    // ends timed_out and the hoster compacts locally.
    let started = Instant::now();
    s.compact_range("default", None, None);
    let first = s.settled_counts();
    println!("first: {first:?} after {:?}", started.elapsed());
    assert_eq!(first.worker_failed["timed_out"], 1, "{first:?}");
    assert_eq!(
        (first.worker_succeeded, first.installed),
        (0, 0),
        "{first:?}"
    );
    assert_eq!(first.fallbacks["remote_failed"], 1, "{first:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    s.verify_test_data();

    // Its slot is free again (one slot in all): the next attempt is
    // accepted and runs, and ends the same way.
    assert_eq!(worker_stat(&s.worker)["running"], 0);
    s.compact_range("cf_1", None, None);
    let second = s.settled_counts();
    assert_eq!(second.worker_failed["timed_out"], 2, "{second:?}");
    assert_eq!(second.worker_accepted, 2, "{second:?}");
    s.verify_test_data();

    // The abandoned thread (in-process) still sleeps: shutdown waits for
    // it only CANCEL_GRACE and a margin, and the worker exits by itself.
    let stopping = Instant::now();
    assert!(
        s.worker.stop(Duration::from_secs(30)),
        "the worker exits by itself"
    );
    println!("stopped in {:?}", stopping.elapsed());
    eventually("the hoster still takes writes", || {
        s.hoster.db.put(key(900), "after").is_ok()
    });
}

/// A submission that times out on the hoster (the proxy holds it past
/// `http_timeout`): the hoster compacts locally and cancels the attempt on
/// the worker, which does not know it yet; when the submission arrives
/// after all, the worker refuses it instead of running an attempt nobody
/// reads.
#[test]
fn a_submission_that_timed_out_is_cancelled_and_never_runs() {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    let s = Scenario::start(
        o,
        &[],
        Fault::HoldSubmit,
        serde_json::json!({"http_timeout": 1, "http_max_retry": 1}),
    );
    s.generate_test_data();
    s.compact_range("default", None, None);
    let c = s.counts();
    assert_eq!(c.fallbacks["timeout"], 1, "{c:?}");
    assert_eq!(s.proxy.held().len(), 1);
    eventually("the hoster cancelled the attempt", || {
        s.proxy.hoster_cancels() == [404]
    });

    // The held submission reaches the worker now: refused, never run.
    s.proxy.set_fault(Fault::None);
    eventually("the late submission is refused", || {
        worker_stat(&s.worker)["counters"]["rejected"]["refused"] == 1
    });
    let stat = worker_stat(&s.worker);
    assert_eq!(stat["counters"]["accepted"], 0, "{stat}");
    assert!(s.proxy.jobs().is_empty());
    s.verify_test_data();
}

/// A queued attempt that no hoster probes (its hoster gave up on it, or
/// died) is cancelled after `QUEUE_PROBE_TIMEOUT`, so it never takes a slot.
/// The one slot is held by an attempt that hangs.
#[test]
fn a_queued_attempt_nobody_probes_is_cancelled() {
    let mut env = with_plugins(&[scenario_plugin()]);
    env.extend([
        ("ATTEMPT_TIMEOUT_MIN", "1s".to_string()),
        ("ATTEMPT_TIMEOUT_MAX", "6s".to_string()),
        ("CANCEL_GRACE", "1s".to_string()),
        ("MAX_PARALLEL_COMPACTIONS", "1".to_string()),
        ("QUEUE_PROBE_TIMEOUT", "1s".to_string()),
        ("RESULT_RETENTION", "5s".to_string()),
    ]);
    let s = Scenario::start(
        hang_options(),
        &env,
        Fault::None,
        serde_json::json!({"plugin_versions": {"farm.test.hang": 1}}),
    );
    s.generate_test_data();
    std::thread::scope(|scope| {
        let hung = scope.spawn(|| s.compact_range("default", None, None));
        eventually("the first attempt runs", || {
            worker_stat(&s.worker)["running"] == 1
        });
        // Another attempt of the same job, submitted and never probed.
        let mut job = s.proxy.jobs()[0].clone();
        job["attempt"] = serde_json::json!(7);
        let out = format!("{}-unprobed", job["output_dir"].as_str().unwrap());
        job["output_dir"] = serde_json::json!(out);
        let (code, answer) = crate::harness::post(
            &format!("{}/dcompact", s.worker.base_url()),
            &serde_json::to_vec(&job).unwrap(),
            &[],
        );
        assert_eq!(code, 200, "{answer}");
        eventually("the unprobed attempt is cancelled", || {
            worker_stat(&s.worker)["counters"]["failed"]["cancelled"] == 1
        });
        let stat = worker_stat(&s.worker);
        assert_eq!(stat["waiting"], 0, "{stat}");
        assert!(!std::path::Path::new(&out).exists(), "it never ran");
        hung.join().expect("compaction thread");
    });
    let c = s.settled_counts();
    assert_eq!(c.worker_failed["timed_out"], 1, "{c:?}");
    s.verify_test_data();
}
