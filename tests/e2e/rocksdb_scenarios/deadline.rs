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
