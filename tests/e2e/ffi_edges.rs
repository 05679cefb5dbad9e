//! The FFI edges hold when user code misbehaves: a plugin whose entry point
//! throws a C++ exception is refused (the process loading it keeps
//! running), and a merge operator that panics on the hoster fails the reads
//! of its keys, never the database process, its compactions or its writes.

use crate::harness::*;
use farm::hoster::plugins::install_merge_operator;
use farm_plugin_sdk::MergeOperator;
use rocksdb::ColumnFamilyDescriptor;
use std::path::PathBuf;
use std::process::Command;

/// Compiles `tests/e2e/fixtures/throwing_plugin.cc` into a `.so`.
fn throwing_plugin() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("farm-throwing-plugin-{}.so", std::process::id()));
    let status = Command::new("c++")
        .args([
            "-std=c++20",
            "-shared",
            "-fPIC",
            "-O1",
            "-Wall",
            "-Werror",
            "-I",
        ])
        .arg(root.join("plugins/include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("tests/e2e/fixtures/throwing_plugin.cc"))
        .status()
        .expect("c++ runs");
    assert!(status.success(), "the throwing plugin compiles");
    out
}

/// The worker loads plugins in a describing child first; one whose
/// `farm_plugin_register` throws is refused there with the exception's
/// message, and the child exits normally instead of aborting.
#[test]
fn a_plugin_entry_point_that_throws_is_refused() {
    let so = throwing_plugin();
    let out = Command::new(worker_bin())
        .arg("--describe-plugins")
        .arg(&so)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("the describing child runs");
    let _ = std::fs::remove_file(&so);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{:?}: {stderr}", out.status);
    assert!(stderr.contains("failed while registering"), "{stderr}");
    assert!(stderr.contains("the entry point throws"), "{stderr}");
}

/// The hoster's side of `libpanicky.so` (plugins/fixtures/panicky): the same
/// class, which panics on every full merge.
struct Panicky;

impl MergeOperator for Panicky {
    const NAME: &'static str = "farm.test.panicky";
    const VERSION: u32 = 1;
    fn full_merge(&self, _: &[u8], _: Option<&[u8]>, _: &[&[u8]]) -> Option<Vec<u8>> {
        panic!("farm.test.panicky: this merge function always panics");
    }
}

/// The worker's copy of the class panics (the attempt fails), the hoster
/// falls back to compacting locally, where its own copy panics too: the
/// local compaction still completes (RocksDB keeps the operands unmerged),
/// reads of the merged keys fail with RocksDB's merge failure, and the
/// database keeps reading other keys and taking writes.
#[test]
fn a_panicking_merge_operator_on_the_hoster_fails_reads_not_the_db() {
    let d = dirs("db");
    let panicky = worker_bin().with_file_name("libpanicky.so");
    let worker = start_worker(d.tmp.path(), &[("PLUGINS", panicky.display().to_string())]);
    let mut opts = small_options();
    install_merge_operator(&mut opts, Panicky).expect("installed");
    let params = params(&d.root, &[worker.base_url()], serde_json::json!({}));
    let hoster = Hoster::open(
        &d.db,
        opts.clone(),
        vec![ColumnFamilyDescriptor::new("default", opts)],
        &params,
    );
    let db = &hoster.db;
    for i in 0..4_000u32 {
        db.put(format!("plain{i:04}"), format!("{i}")).unwrap();
        db.merge(format!("merged{:03}", i % 100), format!("{i}"))
            .unwrap();
        if i % 1_000 == 999 {
            db.flush().unwrap();
        }
    }
    db.compact_range(None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);

    let stats = hoster.farm.stats();
    assert!(stats.fallbacks["remote_failed"] > 0, "{stats:?}");
    assert_eq!(stats.remote_installed, 0, "{stats:?}");
    let level0 = db
        .property_int_value("rocksdb.num-files-at-level0")
        .unwrap();
    assert_eq!(level0, Some(0), "the local compactions completed");
    let errors = db.property_int_value("rocksdb.background-errors").unwrap();
    assert_eq!(errors, Some(0), "no background error stopped the DB");

    let err = db.get(b"merged042").expect_err("the merge panics on read");
    assert!(err.to_string().contains("Merge operator failed"), "{err}");
    assert_eq!(db.get(b"plain1234").unwrap().as_deref(), Some(&b"1234"[..]));
    db.put(b"after", b"still writable").unwrap();
    db.flush().unwrap();
    assert_eq!(
        db.get(b"after").unwrap().as_deref(),
        Some(&b"still writable"[..])
    );
}
