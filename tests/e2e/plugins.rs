//! Plugins: a merge operator and a compaction filter from a plugin object
//! (`fixtures/append_plugin.c`, built here against
//! `plugins/include/farm_plugin.h`) run on the worker exactly as the same
//! logic runs on the hoster; a job whose hoster uses another version of a
//! plugin class is refused and compacted locally.

use crate::harness::*;
use rocksdb::compaction_filter::Decision;
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, MergeOperands, Options, DB};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn append_plugin() -> &'static PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out =
            std::env::temp_dir().join(format!("farm-append-plugin-{}.so", std::process::id()));
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
            .arg(root.join("plugins/include"))
            .arg("-o")
            .arg(&out)
            .arg(root.join("tests/e2e/fixtures/append_plugin.c"))
            .status()
            .expect("cc runs");
        assert!(status.success(), "the test plugin compiles");
        out
    })
}

fn append(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = existing.into_iter().collect();
    parts.extend(operands);
    Some(parts.join(&b","[..]))
}

/// The hoster's options: the plugin's logic, in Rust, under the same names.
fn options() -> Options {
    let mut o = small_options();
    o.set_merge_operator_associative("farm.test.append", append);
    o.set_compaction_filter("farm.test.drop7", |_level, key: &[u8], _value: &[u8]| {
        if key.last() == Some(&b'7') {
            Decision::Remove
        } else {
            Decision::Keep
        }
    });
    o
}

/// Puts, merges and deletes over 5,000 keys, then a full compaction (the
/// filter then removes every key ending in 7).
fn workload(db: &DB) {
    let cf = db.cf_handle("default").unwrap();
    for i in 0..60_000u32 {
        let key = format!("key{:05}", i % 5_000);
        // Keys the filter drops only ever get puts: which of a key's merge
        // operands meet its filtered base value depends on compaction
        // timing, in any RocksDB.
        if key.ends_with('7') {
            db.put_cf(cf, &key, format!("p{i}")).unwrap();
            continue;
        }
        match i % 17 {
            0 => db.delete_cf(cf, &key).unwrap(),
            1..=4 => db.put_cf(cf, &key, format!("p{i}")).unwrap(),
            _ => db.merge_cf(cf, &key, format!("m{i}")).unwrap(),
        }
    }
    db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
}

/// A full scan: every key and value, in order.
type Scan = Vec<(Box<[u8]>, Box<[u8]>)>;

fn scan(db: &DB) -> Scan {
    let cf = db.cf_handle("default").unwrap();
    db.iterator_cf(cf, IteratorMode::Start)
        .map(Result::unwrap)
        .collect()
}

fn local_only(dir: &Path) -> Scan {
    let path = dir.join("local");
    let db = DB::open_cf_descriptors(
        &options(),
        &path,
        vec![ColumnFamilyDescriptor::new("default", options())],
    )
    .unwrap();
    workload(&db);
    scan(&db)
}

#[test]
fn plugin_classes_run_on_the_worker_as_on_the_hoster() {
    let d = dirs("db");
    let expected = local_only(d.tmp.path());
    let worker = start_worker(
        d.tmp.path(),
        &[("PLUGINS", append_plugin().display().to_string())],
    );
    let identity = worker_stat(&worker)["identity"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the worker knows its plugin classes", || {
        worker_stat(&worker)["plugins"]["classes"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    });
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"plugin_versions": {"farm.test.append": 1, "farm.test.drop7": 1}}),
    );
    let hoster = Hoster::open(
        &d.db,
        options(),
        vec![ColumnFamilyDescriptor::new("default", options())],
        &params,
    );
    workload(&hoster.db);
    hoster.wait_for_compactions(&["default"]);

    let stat = worker_stat(&worker);
    let stats = hoster.farm.stats();
    println!(
        "worker {} {}; hoster {stats:?}",
        stat["counters"], stat["plugins"]
    );
    assert_eq!(
        stats.local_total(),
        0,
        "every compaction ran remotely: {stats:?}"
    );
    assert!(stats.remote_installed > 0);
    let counts = &stat["plugins"]["counts"];
    assert!(
        counts["merges"].as_u64().unwrap() > 0,
        "merges resolved on the worker: {counts}"
    );
    assert!(
        counts["dropped"].as_u64().unwrap() > 0,
        "entries dropped on the worker: {counts}"
    );
    let ssts = live_ssts(&hoster.db, &d.db);
    assert!(
        ssts.iter().all(|s| s.props.db_host_id == identity),
        "live SSTs come from the worker"
    );
    let got = scan(&hoster.db);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the farm's data equals a local-only run's");
    assert!(got.iter().all(|(k, _)| k.last() != Some(&b'7')));
}

#[test]
fn another_plugin_version_is_refused_and_compacted_locally() {
    let d = dirs("db");
    let expected = local_only(d.tmp.path());
    let worker = start_worker(
        d.tmp.path(),
        &[("PLUGINS", append_plugin().display().to_string())],
    );
    eventually("the worker knows its plugin classes", || {
        worker_stat(&worker)["plugins"]["classes"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    });
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"plugin_versions": {"farm.test.append": 2, "farm.test.drop7": 1}}),
    );
    let hoster = Hoster::open(
        &d.db,
        options(),
        vec![ColumnFamilyDescriptor::new("default", options())],
        &params,
    );
    workload(&hoster.db);
    hoster.wait_for_compactions(&["default"]);
    let stat = worker_stat(&worker);
    let stats = hoster.farm.stats();
    assert_eq!(stat["counters"]["accepted"], 0, "{}", stat["counters"]);
    assert!(stats.fallbacks["refused"] > 0, "{stats:?}");
    assert_eq!(stats.remote_installed, 0);
    assert!(
        scan(&hoster.db) == expected,
        "the data equals a local-only run's"
    );
}
