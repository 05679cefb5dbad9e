//! The foundation: a hoster's compactions run on a worker process and come
//! back installed, with the data unchanged.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::statistics::Ticker;
use rocksdb::{ColumnFamilyDescriptor, DB};

#[test]
fn compactions_run_on_the_worker_and_data_equals_the_model() {
    main_scenario(Storage::Shared);
}

/// The foundation in either storage mode (`remote_storage` runs it with
/// the worker reading the DB over HTTP).
pub fn main_scenario(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("db");
    std::fs::create_dir_all(&root).unwrap();
    let worker = start_worker_for(
        storage,
        dir.path(),
        &[("MAX_PARALLEL_COMPACTIONS", "2".into())],
        &[],
    );
    let identity = worker_identity(&worker);
    assert_eq!(identity, format!("dcompact-worker@{}", worker.addr));

    let params = params(
        &root,
        &[worker.base_url()],
        storage.params(serde_json::json!({})),
    );
    let cfs = || vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&db_path, small_options(), cfs(), &params);
    let registry = prometheus::Registry::new();
    hoster.farm.register_metrics(&registry).unwrap();
    let cf = hoster.db.cf_handle("default").unwrap();

    // 200k operations over 60k keys: overwrites, point and range deletes;
    // level-0 triggers fire automatic compactions along the way.
    let spec = WorkloadSpec {
        ops: 200_000,
        key_space: 60_000,
        value_size: 120,
        delete_every: 7,
        range_delete_every: 2_000,
        seed: 7,
        // Half of each value compresses, so output blocks really shrink.
        compressible: 0.5,
    };
    let mut model = Model::default();
    let written = model.write(&hoster.db, cf, &spec).expect("no write fails");
    assert!(written.deletes > 0 && written.range_deletes > 0);
    hoster.wait_for_compactions(&["default"]);
    let auto = worker_stat(&worker)["counters"]["succeeded"]
        .as_u64()
        .unwrap();
    assert!(auto > 0, "automatic compactions reached the worker");

    // A manual full compaction on top.
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));

    // (a) the worker's own counters.
    let stat = worker_stat(&worker);
    let counters = &stat["counters"];
    let succeeded = counters["succeeded"].as_u64().unwrap();
    assert!(
        succeeded > auto,
        "the manual compaction ran remotely too: {counters}"
    );
    let hoster_stats = hoster.farm.stats();
    assert_eq!(
        hoster_stats.remote_installed, succeeded,
        "both sides count the same remote compactions"
    );
    remote_storage_counts(storage, &stat, hoster_stats.remote_installed);
    let remote_bytes = counters["bytes_written"].as_u64().unwrap();
    let local_bytes = hoster.opts.get_ticker_count(Ticker::CompactWriteBytes);
    println!(
        "worker counters {counters}; hoster {hoster_stats:?}; local compaction bytes {local_bytes}"
    );
    assert!(
        remote_bytes >= local_bytes,
        "at least half of compaction output came from the worker: remote {remote_bytes}, local {local_bytes}"
    );

    // The same figures on the application's Prometheus registry.
    let metric = |name: &str| -> f64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .map(|m| m.get_counter().get_value() + m.get_histogram().get_sample_count() as f64)
            .sum()
    };
    assert_eq!(
        metric("farm_hoster_compactions_remote_total"),
        hoster_stats.remote_installed as f64
    );
    assert_eq!(
        metric("farm_hoster_remote_seconds"),
        hoster_stats.remote_installed as f64
    );
    assert_eq!(
        metric("farm_hoster_compactions_local_total"),
        hoster_stats.local_total() as f64
    );
    assert_eq!(
        metric("farm_hoster_remote_written_bytes_total"),
        hoster_stats.remote_bytes_written as f64
    );

    // (b) and (c): after reopening, live SSTs carry the worker's identity
    // and every key equals the model.
    let Hoster { db, opts, farm, .. } = hoster;
    drop(db);
    drop(farm);
    let db = DB::open_cf_descriptors(&opts, &db_path, cfs()).unwrap();
    let ssts = live_ssts(&db, &db_path);
    assert!(!ssts.is_empty());
    for sst in &ssts {
        assert_eq!(
            sst.props.db_host_id, identity,
            "{} at L{} was written by the worker",
            sst.cf, sst.level
        );
    }
    let cf = db.cf_handle("default").unwrap();
    assert_eq!(model.check(&db, cf), Ok(model.len() as u64));
    let outputs = db_path.join(farm::hoster::service::OUTPUT_SUBDIR);
    let left = files_where(&outputs, &|_| true);
    assert!(
        left.is_empty(),
        "installed attempts leave nothing behind: {left:?}"
    );
    let attempt_dirs: Vec<_> = std::fs::read_dir(&outputs)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|run| {
            std::fs::read_dir(run.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect();
    assert!(
        attempt_dirs.is_empty(),
        "no output directory is left: {attempt_dirs:?}"
    );
}

/// What the worker's `/stat` says it fetched: nothing in the shared mode;
/// in the HTTP mode metadata and inputs for every job, the inputs within
/// 1.1 times what RocksDB read of them (a bound on read-ahead and
/// refetches), and every installed output pushed.
fn remote_storage_counts(storage: Storage, stat: &serde_json::Value, installed: u64) {
    let remote = &stat["remote"];
    let n = |k: &str| {
        remote[k]
            .as_u64()
            .unwrap_or_else(|| panic!("/stat remote.{k}: {remote}"))
    };
    if storage == Storage::Shared {
        assert_eq!(n("jobs"), 0, "{remote}");
        return;
    }
    let read = stat["counters"]["bytes_read"].as_u64().expect("bytes_read");
    println!("remote {remote}; RocksDB read {read} bytes");
    assert!(n("jobs") >= installed, "{remote}");
    assert!(n("metadata_bytes") > 0 && n("input_bytes") > 0, "{remote}");
    assert!(
        n("input_bytes") as f64 <= 1.1 * read as f64,
        "inputs fetched within 1.1x of the bytes compacted: {remote}, read {read}"
    );
    assert!(n("pushed_files") >= 2 * installed, "{remote}");
    assert!(n("cache_hits") > 0 && n("requests") > 0, "{remote}");
}

/// `DEL_WORKER_TEMP_DB=true`: an attempt's directory goes with the attempt.
#[test]
fn attempt_directories_are_removed_when_asked() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[("DEL_WORKER_TEMP_DB", "true".into())]);
    churn_remotely(&d, &worker);
    let left: Vec<_> = attempt_entries(&d.tmp.path().join("worker"));
    assert!(left.is_empty(), "no attempt directory is left: {left:?}");
}

/// Kept attempt directories are swept by size: with a budget of one byte,
/// every finished attempt's directory goes at the next sweep.
#[test]
fn retained_attempt_directories_are_swept_by_size() {
    let d = dirs("db");
    let worker = start_worker(
        d.tmp.path(),
        &[
            ("ATTEMPT_RETENTION_BYTES", "1".into()),
            ("RESULT_RETENTION", "1s".into()),
        ],
    );
    churn_remotely(&d, &worker);
    let root = d.tmp.path().join("worker");
    eventually("the sweeper removed the retained attempts", || {
        attempt_entries(&root).is_empty()
    });
}

/// A small workload through `worker`, of which some compactions ran there.
fn churn_remotely(d: &Dirs, worker: &farm::worker::local::LocalWorker) {
    let params = params(&d.root, &[worker.base_url()], serde_json::json!({}));
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 30_000,
        key_space: 10_000,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);
    assert!(
        worker_stat(worker)["counters"]["succeeded"]
            .as_u64()
            .unwrap()
            > 0
    );
}
