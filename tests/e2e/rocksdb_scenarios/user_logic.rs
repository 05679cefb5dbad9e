//! Scenarios with user logic in the compaction: a compaction filter and a
//! merge operator, run on the worker from plugin objects (fixtures built
//! here) and on the hoster from the same logic in Rust.

use super::setup::*;
use crate::fault_proxy::Fault;
use rocksdb::compaction_filter::Decision;

/// RocksDB's `PartialDeleteCompactionFilter`: removes keys 6 to 105.
fn partial_delete(key: &[u8]) -> bool {
    let n: u32 = std::str::from_utf8(&key[3..])
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (6..=105).contains(&n)
}

/// Every live SST of `default` was written by the worker.
fn all_written_by_the_worker(s: &Scenario) {
    let identity = s.worker_identity();
    let ssts = s.live_ssts("default");
    assert!(!ssts.is_empty());
    for (level, writer) in ssts {
        assert_eq!(writer, identity, "the SST at L{level} came from the worker");
    }
}

#[test]
fn compaction_filter() {
    let mut o = current_options();
    o.set_compaction_filter(
        "farm.test.partial_delete",
        |_level, key: &[u8], _value: &[u8]| {
            if partial_delete(key) {
                Decision::Remove
            } else {
                Decision::Keep
            }
        },
    );
    let s = Scenario::start(
        o,
        &with_plugins(&[scenario_plugin()]),
        Fault::None,
        serde_json::json!({"plugin_versions": {"farm.test.partial_delete": 1}}),
    );
    s.generate_test_data();
    s.wait();
    s.compact_range("default", None, None);
    for i in 0..200 {
        let want = if (6..=105).contains(&i) {
            None
        } else if i % 2 == 1 {
            Some(format!("value{i}"))
        } else {
            Some(format!("value_new{i}"))
        };
        assert_eq!(s.get("default", &key(i)), want, "{}", key(i));
    }
    let c = s.settled_counts();
    println!("{c:?}");
    assert!(c.installed >= 1, "{c:?}");
    assert_eq!(c.local, 0, "the filter ran on the worker: {c:?}");
    all_written_by_the_worker(&s);
}

#[test]
fn merge_operator() {
    let mut o = current_options();
    o.set_merge_operator_associative("farm.test.append", crate::plugins::append);
    let s = Scenario::start(
        o,
        &with_plugins(&[crate::plugins::append_plugin()]),
        Fault::None,
        serde_json::json!({"plugin_versions": {"farm.test.append": 1}}),
    );
    s.generate_test_data();
    s.wait();
    for i in 0..200 {
        s.hoster
            .db
            .merge_cf(s.cf("default"), key(i), format!("merge_op_append_{i}"))
            .expect("merge succeeds");
    }
    s.compact_range("default", None, None);
    for i in 0..200 {
        let base = if i % 2 == 1 {
            format!("value{i}")
        } else {
            format!("value_new{i}")
        };
        let want = format!("{base},merge_op_append_{i}");
        assert_eq!(s.get("default", &key(i)), Some(want));
    }
    let c = s.settled_counts();
    println!("{c:?}");
    assert!(c.installed >= 1, "{c:?}");
    assert_eq!(c.local, 0, "merges ran on the worker: {c:?}");
    all_written_by_the_worker(&s);
}
