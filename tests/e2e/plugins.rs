//! Plugins: a merge operator and a compaction filter from a plugin object
//! (`fixtures/append_plugin.c`, built here against
//! `plugins/include/farm_plugin.h`) run on the worker exactly as the same
//! logic runs on the hoster; a job whose hoster uses another version of a
//! plugin class is refused and compacted locally.

use crate::harness::*;
use farm::worker::local::LocalWorker;
use rocksdb::compaction_filter::Decision;
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, MergeOperands, Options, DB};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn append_plugin() -> &'static PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| compile_fixture_plugin("append_plugin.c"))
}

/// Compiles `tests/e2e/fixtures/<source>` against the plugin ABI header
/// into a `.so` in the temporary directory.
pub fn compile_fixture_plugin(source: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let stem = source.trim_end_matches(".c").replace('_', "-");
    let out = std::env::temp_dir().join(format!("farm-{stem}-{}.so", std::process::id()));
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-I"])
        .arg(root.join("plugins/include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("tests/e2e/fixtures").join(source))
        .status()
        .expect("cc runs");
    assert!(status.success(), "the test plugin {source} compiles");
    out
}

pub fn append(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
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

/// A worker with the test plugin, a hoster that says it uses
/// `farm.test.append` in `append_version`, the workload run through both.
struct PluginRun {
    d: Dirs,
    expected: Scan,
    worker: TestWorker,
    hoster: Hoster,
}

fn run_with_plugin(append_version: u32, storage: Storage) -> PluginRun {
    let d = dirs("db");
    let expected = local_only(d.tmp.path());
    let worker = start_worker_for(
        storage,
        d.tmp.path(),
        &[("PLUGINS", append_plugin().display().to_string())],
        &[append_plugin().clone()],
    );
    eventually("the worker knows its plugin classes", || {
        worker_stat(&worker)["plugins"]["classes"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    });
    let params = params(
        &d.root,
        &[worker.base_url()],
        storage.params(serde_json::json!({"plugin_versions": {"farm.test.append": append_version, "farm.test.drop7": 1}})),
    );
    let hoster = Hoster::open(
        &d.db,
        options(),
        vec![ColumnFamilyDescriptor::new("default", options())],
        &params,
    );
    workload(&hoster.db);
    hoster.wait_for_compactions(&["default"]);
    PluginRun {
        d,
        expected,
        worker,
        hoster,
    }
}

/// Every compaction ran on the worker, and the plugin code there resolved
/// merges and dropped entries.
fn plugin_code_ran_remotely(worker: &LocalWorker, hoster: &Hoster) {
    let stat = worker_stat(worker);
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
        counts["merges"].as_u64().expect("merge count") > 0,
        "merges resolved on the worker: {counts}"
    );
    assert!(
        counts["dropped"].as_u64().expect("dropped count") > 0,
        "entries dropped on the worker: {counts}"
    );
}

#[test]
fn plugin_classes_run_on_the_worker_as_on_the_hoster() {
    plugin_scenario(Storage::Shared);
}

/// Plugin classes on the worker, in either storage mode.
pub fn plugin_scenario(storage: Storage) {
    let PluginRun {
        d,
        expected,
        worker,
        hoster,
    } = run_with_plugin(1, storage);
    let identity = worker_identity(&worker);
    plugin_code_ran_remotely(&worker, &hoster);
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
    let PluginRun {
        d: _dirs,
        expected,
        worker,
        hoster,
    } = run_with_plugin(2, Storage::Shared);
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

/// The example plugins: `counter` (u64 add) on one family and `ttl` (drop
/// values older than an hour against a fixed "now") on another, installed
/// from the same Rust code on the hoster and loaded as `libcounter.so` and
/// `libttl.so` on the worker.
mod examples {
    use super::*;
    use farm::hoster::plugins::{install_compaction_filter, install_merge_operator};
    use farm_plugin_counter::Counter;
    use farm_plugin_ttl::Ttl;

    const NOW: u64 = 1_800_000_000;
    const TTL: u64 = 3_600;

    fn families() -> Vec<ColumnFamilyDescriptor> {
        let mut counters = small_options();
        install_merge_operator(&mut counters, Counter).unwrap();
        let mut sessions = small_options();
        install_compaction_filter(&mut sessions, Ttl::new(TTL, Some(NOW)));
        vec![
            ColumnFamilyDescriptor::new("default", small_options()),
            ColumnFamilyDescriptor::new("counters", counters),
            ColumnFamilyDescriptor::new("sessions", sessions),
        ]
    }

    /// Counter increments on 2,000 keys; session values stamped up to two
    /// hours before NOW, so about half have expired.
    fn workload(db: &DB) {
        let counters = db.cf_handle("counters").unwrap();
        let sessions = db.cf_handle("sessions").unwrap();
        for i in 0..50_000u64 {
            db.merge_cf(
                counters,
                format!("c{:04}", i % 2_000),
                (i % 7 + 1).to_le_bytes(),
            )
            .unwrap();
            let written = NOW - (i * 7_919) % (2 * TTL);
            let value = [written.to_le_bytes().as_slice(), &[b's'; 100]].concat();
            db.put_cf(sessions, format!("s{:05}", i % 20_000), value)
                .unwrap();
        }
        for cf in [counters, sessions] {
            db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
    }

    fn scan_all(db: &DB) -> Vec<Scan> {
        ["counters", "sessions"]
            .iter()
            .map(|name| {
                let cf = db.cf_handle(name).unwrap();
                db.iterator_cf(cf, IteratorMode::Start)
                    .map(Result::unwrap)
                    .collect()
            })
            .collect()
    }

    fn open(path: &Path, opts: &Options) -> DB {
        let mut o = opts.clone();
        o.create_missing_column_families(true);
        DB::open_cf_descriptors(&o, path, families()).unwrap()
    }

    /// The workload on a hoster with the plugins installed, against a worker
    /// started with `with_plugins`, and the same workload compacted locally.
    struct Run {
        _dirs: Dirs,
        expected: Vec<Scan>,
        worker: farm::worker::local::LocalWorker,
        hoster: Hoster,
    }

    fn run(with_plugins: bool, params_extra: serde_json::Value) -> Run {
        let d = dirs("db");
        let expected = {
            let db = open(&d.tmp.path().join("local"), &small_options());
            workload(&db);
            scan_all(&db)
        };
        let bin = worker_bin();
        let so = |name: &str| {
            bin.with_file_name(format!("lib{name}.so"))
                .display()
                .to_string()
        };
        let mut env = vec![
            ("FARM_TTL_SECONDS", TTL.to_string()),
            ("FARM_TTL_NOW", NOW.to_string()),
        ];
        if with_plugins {
            env.push(("PLUGINS", format!("{}:{}", so("counter"), so("ttl"))));
        }
        let worker = start_worker(d.tmp.path(), &env);
        let classes = if with_plugins { 2 } else { 0 };
        eventually("the worker knows its plugin classes", || {
            worker_stat(&worker)["plugins"]["classes"]
                .as_array()
                .is_some_and(|c| c.len() == classes)
        });
        let params = params(&d.root, &[worker.base_url()], params_extra);
        let hoster = Hoster::open(&d.db, small_options(), families(), &params);
        workload(&hoster.db);
        hoster.wait_for_compactions(&["counters", "sessions"]);
        Run {
            _dirs: d,
            expected,
            worker,
            hoster,
        }
    }

    /// Jobs were refused with a message containing `needles` (the worker's
    /// refusals are the hoster's), compacted locally, and the data is the
    /// local-only run's.
    fn assert_refused_locally(r: &Run, needles: &[&str]) {
        let stats = r.hoster.farm.stats();
        let counters = worker_stat(&r.worker)["counters"].clone();
        assert!(stats.fallbacks["refused"] > 0, "{stats:?}");
        assert_eq!(
            counters["rejected"]["refused"].as_u64(),
            Some(stats.fallbacks["refused"]),
            "{counters}"
        );
        let why = &stats.last_errors["refused"];
        for n in needles {
            assert!(why.contains(n), "{why:?} should name {n:?}");
        }
        assert!(
            scan_all(&r.hoster.db) == r.expected,
            "data equals the local-only run's"
        );
    }

    #[test]
    fn counter_and_ttl_run_on_the_worker_as_on_the_hoster() {
        let r = run(true, serde_json::json!({}));
        let (worker, hoster) = (&r.worker, &r.hoster);
        let identity = worker_identity(worker);
        plugin_code_ran_remotely(worker, hoster);
        for s in live_ssts(&hoster.db, &r._dirs.db)
            .iter()
            .filter(|s| s.cf != "default")
        {
            assert_eq!(
                s.props.db_host_id, identity,
                "{} L{} came from the worker",
                s.cf, s.level
            );
        }
        let got = scan_all(&hoster.db);
        assert!(!got[0].is_empty() && !got[1].is_empty());
        assert!(got == r.expected, "a full scan equals the local-only run's");
    }

    #[test]
    fn another_counter_version_is_refused_naming_both() {
        let r = run(true, serde_json::json!({"plugin_versions": {"counter": 2}}));
        assert_refused_locally(&r, &["counter", "version 2", "version 1"]);
    }

    #[test]
    fn a_worker_without_the_plugins_refuses_naming_the_class() {
        let r = run(false, serde_json::json!({}));
        assert_refused_locally(&r, &["cannot create"]);
        assert_eq!(worker_stat(&r.worker)["counters"]["accepted"], 0);
        let why = &r.hoster.farm.stats().last_errors["refused"];
        assert!(
            why.contains("merge_operator=counter") || why.contains("compaction_filter=ttl"),
            "{why}"
        );
    }
}

/// A plugin whose merge function panics: the SDK catches the panic at the
/// FFI boundary, RocksDB fails that compaction, the worker reports it and
/// keeps serving, and the hoster compacts locally with its own (sound)
/// implementation of the class.
#[test]
fn a_panicking_plugin_costs_one_attempt() {
    let d = dirs("db");
    let panicky = worker_bin().with_file_name("libpanicky.so");
    let worker = start_worker(d.tmp.path(), &[("PLUGINS", panicky.display().to_string())]);
    eventually("the worker knows the panicky class", || {
        worker_stat(&worker)["plugins"]["classes"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
    });
    let mut opts = small_options();
    opts.set_merge_operator_associative("farm.test.panicky", append);
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"plugin_versions": {"farm.test.panicky": 1}}),
    );
    let hoster = Hoster::open(
        &d.db,
        opts.clone(),
        vec![ColumnFamilyDescriptor::new("default", opts)],
        &params,
    );
    merge_and_compact(&hoster);

    let counters = worker_stat(&worker)["counters"].clone();
    let stats = hoster.farm.stats();
    let failed = counters["failed"]["compaction_failed"].as_u64().unwrap();
    assert!(failed > 0, "{counters}");
    assert_eq!(counters["succeeded"], 0, "{counters}");
    assert_eq!(stats.fallbacks["remote_failed"], failed, "{stats:?}");
    assert!(
        stats.last_errors["remote_failed"].contains("Merge"),
        "{:?}",
        stats.last_errors
    );
    assert_eq!(
        get_json(&format!("{}/health", worker.base_url()))["status"],
        "OK"
    );
    assert_merged(&hoster);
}

/// A C++ plugin in RocksDB's own style (`fixtures/cpp_plugin.cc`: no farm
/// ABI, a static initializer registering a merge operator in
/// `ObjectLibrary`) works too: the worker exports its RocksDB symbols to it
/// and lists the class, unversioned.
#[test]
fn a_cpp_plugin_registering_in_object_library_works() {
    let so = compile_cpp_plugin("cpp_plugin.cc");
    cpp_plugin_runs_remotely(&so, "farm.test.cpp_concat", multi_process());
    let _ = std::fs::remove_file(so);
}

/// A C++ plugin whose static constructor builds on RocksDB's globals while
/// it registers (`fixtures/cpp_static_plugin.cc`, as db_stress's custom
/// compression manager does) serves jobs in both modes, whatever
/// `FARM_E2E_MULTI_PROCESS` says. Children once got `PLUGINS` through
/// `LD_PRELOAD`, which ran that constructor before the worker binary's own
/// static initialisers: every compaction of a child then died of SIGSEGV
/// and ran locally.
#[test]
fn a_cpp_plugin_registering_from_a_static_constructor_works_in_both_modes() {
    let so = compile_cpp_plugin("cpp_static_plugin.cc");
    for multi in [false, true] {
        cpp_plugin_runs_remotely(&so, "farm.test.cpp_static_concat", multi);
    }
    let _ = std::fs::remove_file(so);
}

/// Compiles `tests/e2e/fixtures/<source>`, a C++ plugin, against the
/// RocksDB headers the worker was built with.
fn compile_cpp_plugin(source: &str) -> PathBuf {
    let rocksdb = PathBuf::from(env!("DEP_ROCKSDB_DIR_FOR_TESTS"));
    let stem = source.trim_end_matches(".cc").replace('_', "-");
    let so = std::env::temp_dir().join(format!("farm-{stem}-{}.so", std::process::id()));
    let status = std::process::Command::new("c++")
        .args([
            "-std=c++20",
            "-shared",
            "-fPIC",
            "-fno-rtti",
            "-O1",
            "-DNDEBUG",
            "-DOS_LINUX",
            "-DROCKSDB_PLATFORM_POSIX",
            "-I",
        ])
        .arg(rocksdb.join("include"))
        .arg("-o")
        .arg(&so)
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/e2e/fixtures")
                .join(source),
        )
        .status()
        .expect("c++ runs");
    assert!(status.success(), "the C++ plugin {source} compiles");
    so
}

/// A worker (`MULTI_PROCESS` = `multi`) with the C++ plugin `so` lists its
/// merge operator `class` and runs every compaction of a hoster that
/// merges with it: none fails on the worker, none runs locally.
fn cpp_plugin_runs_remotely(so: &Path, class: &str, multi: bool) {
    let d = dirs("db");
    let worker = start_worker(
        d.tmp.path(),
        &[
            ("PLUGINS", so.display().to_string()),
            ("MULTI_PROCESS", multi.to_string()),
        ],
    );
    eventually("the worker lists the C++ class", || {
        worker_stat(&worker)["plugins"]["classes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == class && c["version"] == 0))
    });
    let mut opts = small_options();
    opts.set_merge_operator_associative(class, append);
    let params = params(&d.root, &[worker.base_url()], serde_json::json!({}));
    let hoster = Hoster::open(
        &d.db,
        opts.clone(),
        vec![ColumnFamilyDescriptor::new("default", opts)],
        &params,
    );
    merge_and_compact(&hoster);

    let stats = hoster.farm.stats();
    let stat = worker_stat(&worker);
    let mode = if multi { "multi-process" } else { "in-process" };
    assert_eq!(failed_attempts(&stat), 0, "{mode}: {}", stat["counters"]);
    assert!(stats.remote_installed > 0, "{mode}: {stats:?}");
    assert_eq!(stats.local_total(), 0, "{mode}: {stats:?}");
    assert_merged(&hoster);
}

/// 20 merges on each of 1,000 keys over four flushes, then a full
/// compaction.
fn merge_and_compact(hoster: &Hoster) {
    let cf = hoster.db.cf_handle("default").unwrap();
    for i in 0..20_000u32 {
        hoster
            .db
            .merge_cf(cf, format!("k{:04}", i % 1_000), format!("{i}"))
            .unwrap();
        if i % 5_000 == 4_999 {
            hoster.db.flush_cf(cf).unwrap();
        }
    }
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);
}

/// Every key holds its 20 operands, in order, joined with ','.
fn assert_merged(hoster: &Hoster) {
    let cf = hoster.db.cf_handle("default").unwrap();
    for i in 0..1_000u32 {
        let v = hoster.db.get_cf(cf, format!("k{i:04}")).unwrap().unwrap();
        let expected: Vec<String> = (0..20).map(|n| (i + n * 1_000).to_string()).collect();
        assert_eq!(String::from_utf8(v).unwrap(), expected.join(","));
    }
}
