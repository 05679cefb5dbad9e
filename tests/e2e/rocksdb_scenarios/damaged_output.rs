//! Scenarios whose remote output is damaged after the worker finished and
//! before the hoster installs it. The original's CompactRange fails with
//! Corruption (RocksDB renames the outputs into the DB, then verifies them);
//! the farm's hoster checks every output before answering success, so the
//! damaged output is never installed, the hoster compacts locally and the
//! DB keeps taking writes.

use super::setup::*;
use crate::fault_proxy::{Damage, Fault};

fn damaged_output_is_not_installed(damage: Damage) {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    let s = Scenario::start(o, &[], Fault::Damage(damage), serde_json::json!({}));
    s.generate_test_data();
    s.compact_range("default", Some(15), Some(45));
    let c = s.settled_counts();
    println!("{damage:?}: {c:?}");

    // GetCompactionNum() >= comp_num + 1; the worker considers it success.
    assert!(c.worker_succeeded >= 1, "{c:?}");
    let results = s.proxy.results();
    assert_eq!(results.len() as u64, c.worker_succeeded);
    for r in &results {
        assert_eq!(r.error, None);
        assert!(r.stats.is_manual_compaction && r.stats.is_remote_compaction);
    }
    // Every result was damaged, caught and compacted locally.
    assert_eq!(s.proxy.injected(), c.worker_succeeded);
    assert_eq!(c.fallbacks["verify_failed"], c.worker_succeeded);
    assert_eq!(c.installed, 0);

    s.verify_test_data();
    s.put("default", &key(500), "after");
    assert_eq!(s.get("default", &key(500)).as_deref(), Some("after"));
    let (db, d) = s.close();
    for f in db.live_files().expect("live files") {
        farm::rocks::sst::verify_checksums(&d.db.join(f.name.trim_start_matches('/')))
            .expect("every installed table is sound");
    }
    verify_test_data_in(&db);
}

#[test]
fn corrupted_output() {
    // test::CorruptFile(file, 0, file_size): every byte of every output.
    damaged_output_is_not_installed(Damage::Flip {
        at_permille: 0,
        len: None,
    });
}

#[test]
fn corrupted_output_paranoid_file_check() {
    // One byte at offset 0 of every output, too small for RocksDB's light
    // checks; the hoster's whole-file checksum catches it with or without
    // paranoid_file_checks.
    damaged_output_is_not_installed(Damage::Flip {
        at_permille: 0,
        len: Some(1),
    });
}

#[test]
fn truncated_output() {
    // test::TruncateFile(file, file_size / 4).
    damaged_output_is_not_installed(Damage::Truncate { keep_permille: 250 });
}
