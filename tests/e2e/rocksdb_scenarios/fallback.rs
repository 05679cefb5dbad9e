//! Scenarios where the remote side does not deliver: the job cannot start,
//! the worker is busy, the result is invalid or empty, the attempt is lost
//! while the hoster waits. Where the original expects an error in the DB
//! (kFailure, kAborted), the farm's contract holds instead: the hoster
//! compacts locally and the DB keeps taking writes.

use super::setup::*;
use crate::fault_proxy::Fault;
use rocksdb::statistics::Ticker;

fn manual_options() -> rocksdb::Options {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    o
}

/// One try per compaction, so that each fault costs one fallback.
fn one_try() -> serde_json::Value {
    serde_json::json!({"http_max_retry": 1, "worker_backoff": 0})
}

/// After a fallback the DB takes writes and compacts them.
fn keeps_taking_writes(s: &Scenario) {
    for id in 0..200 {
        s.put("cf_2", &key(id), &format!("value_new{id}"));
    }
    s.flush("cf_2");
    s.compact_range("cf_2", None, None);
    for id in 0..200 {
        assert_eq!(s.get("cf_2", &key(id)), Some(format!("value_new{id}")));
    }
}

#[test]
fn fallback_local_auto() {
    // The worker answers "busy" to every submission (Schedule: kUseLocal).
    let s = Scenario::start(current_options(), &[], Fault::AnswerSubmit(503), one_try());
    s.generate_test_data();
    s.wait();
    s.verify_test_data();
    let c = s.settled_counts();
    println!("{c:?}");
    // GetCompactionNum() == 0: no remote compaction ran.
    assert_eq!(c.worker_accepted, 0);
    assert_eq!(c.installed, 0);
    assert!(c.local > 0 && c.fallbacks["busy"] == c.local, "{c:?}");
    assert_eq!(s.proxy.injected(), c.local);
    // Statistics only on the local side.
    assert_eq!(c.worker_bytes_written, 0);
    assert!(s.ticker(Ticker::CompactWriteBytes) > 0);
    assert_eq!(s.ticker(Ticker::RemoteCompactReadBytes), 0);
    assert_eq!(s.ticker(Ticker::RemoteCompactWriteBytes), 0);
}

#[test]
fn fallback_local_manual() {
    let s = Scenario::plain(manual_options());
    s.generate_test_data();
    s.verify_test_data();
    let local_written = s.ticker(Ticker::CompactWriteBytes);

    // Remote first.
    s.compact_range("default", Some(15), Some(45));
    let c = s.settled_counts();
    assert!(c.installed >= 1, "{c:?}");
    assert!(c.worker_bytes_written > 0);
    assert_eq!(
        s.ticker(Ticker::RemoteCompactWriteBytes),
        c.worker_bytes_written
    );
    assert_eq!(s.ticker(Ticker::CompactWriteBytes), local_written);

    // Then Wait answers kUseLocal: the worker reports the attempt failed.
    s.proxy.set_fault(Fault::ProbeFailed);
    let remote_written = s.ticker(Ticker::RemoteCompactWriteBytes);
    s.compact_range("default", Some(120), None);
    let after = s.settled_counts();
    assert_eq!(
        after.installed, c.installed,
        "no remote compaction installed"
    );
    assert!(after.fallbacks["remote_failed"] >= 1, "{after:?}");
    assert_eq!(after.fallbacks["remote_failed"], s.proxy.injected());
    assert_eq!(s.ticker(Ticker::RemoteCompactWriteBytes), remote_written);
    assert!(s.ticker(Ticker::CompactWriteBytes) > local_written);
    s.verify_test_data();
}

#[test]
fn failed_to_start() {
    // The submission's connection is dropped (Schedule: kFailure). The
    // original's CompactRange returns Incomplete; here it compacts locally.
    let s = Scenario::start(manual_options(), &[], Fault::DropSubmit, one_try());
    s.generate_test_data();
    s.compact_range("default", Some(15), Some(45));
    let c = s.settled_counts();
    println!("{c:?}");
    assert_eq!(c.worker_accepted, 0);
    assert_eq!(c.installed, 0);
    assert!(c.fallbacks["connection"] >= 1, "{c:?}");
    assert_eq!(c.fallbacks["connection"], s.proxy.injected());
    assert!(s.ticker(Ticker::CompactWriteBytes) > 0);
    s.verify_test_data();
    keeps_taking_writes(&s);
}

#[test]
fn invalid_result_falls_back_to_local() {
    let s = Scenario::start(
        manual_options(),
        &[],
        Fault::ReplaceResult(b"Invalid Str".to_vec()),
        serde_json::json!({}),
    );
    s.generate_test_data();
    assert_eq!(s.counts().installed + s.counts().local, 0);
    s.compact_range("default", Some(15), Some(45));
    let c = s.settled_counts();
    println!("{c:?}");
    // The worker finished; its result never reached RocksDB, which reran
    // the compaction locally (final status kUseLocal).
    assert!(c.worker_succeeded >= 1);
    assert_eq!(c.installed, 0);
    assert_eq!(c.fallbacks["verify_failed"], c.worker_succeeded);
    assert_eq!(s.proxy.injected(), c.worker_succeeded);
    let why = &s.hoster.farm.stats().last_errors["verify_failed"];
    assert!(why.contains("parse"), "{why}");
    s.verify_test_data();
    keeps_taking_writes(&s);
}

#[test]
fn empty_result() {
    let s = Scenario::plain(manual_options());
    s.generate_test_data();
    s.compact_range("default", None, None);
    let first = s.settled_counts();
    assert!(first.installed >= 1, "{first:?}");

    // Delete everything, then the remote job comes back empty.
    s.hoster
        .db
        .delete_range_cf(s.cf("default"), "key", "keyz")
        .expect("delete range");
    s.flush("default");
    s.proxy.set_fault(Fault::ReplaceResult(Vec::new()));
    s.compact_range("default", None, None);
    let c = s.settled_counts();
    println!("{c:?}");
    assert_eq!(c.installed, first.installed);
    assert!(c.fallbacks["verify_failed"] >= 1, "{c:?}");
    assert_eq!(c.fallbacks["verify_failed"], s.proxy.injected());
    // Every SST the DB lists exists (none was replaced by a remote file).
    for f in s.hoster.db.live_files().expect("live files") {
        assert!(s.d.db.join(f.name.trim_start_matches('/')).is_file());
    }
    for i in 0..200 {
        assert_eq!(s.get("default", &key(i)), None);
    }
    keeps_taking_writes(&s);
}

#[test]
fn aborted_while_wait() {
    // The worker aborts and forgets the attempt while the hoster waits
    // (Wait: kAborted in the original, whose CompactRange then fails):
    // local instead. The slow filter keeps the attempt running until then.
    let s = slow_scenario(Fault::AbortAttempt);
    s.generate_test_data();
    s.verify_test_data();
    s.compact_range("default", Some(120), None);
    let c = s.settled_counts();
    println!("{c:?}");
    // No remote compaction ran to its end; no remote statistics.
    assert_eq!(c.installed, 0);
    assert_eq!(c.worker_succeeded, 0);
    assert!(c.fallbacks["not_found"] >= 1, "{c:?}");
    assert_eq!(c.fallbacks["not_found"], s.proxy.cancelled(), "{c:?}");
    assert_eq!(s.ticker(Ticker::RemoteCompactWriteBytes), 0);
    assert!(s.ticker(Ticker::CompactWriteBytes) > 0);
    s.verify_test_data();
    keeps_taking_writes(&s);
}
