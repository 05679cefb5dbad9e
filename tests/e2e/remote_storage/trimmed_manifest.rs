//! The trimmed MANIFEST of the HTTP storage mode
//! (`farm/cpp/farm_manifest_trim.cc`): a job's secondary open names only
//! the tables that can change its output. Here the old values of 40,000
//! keys lie at the bottom in many small tables, and a second workload
//! rewrites and deletes the first 4,000 keys above them: each of its
//! compactions leaves most bottom tables out of the open, and keeps its
//! tombstones, because the bottom tables under its range stay in. A
//! tombstone dropped as if its compaction were bottommost would bring an
//! old value back, which the model check at the end sees.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, DB};

#[test]
fn a_trimmed_manifest_keeps_every_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("trimmed");
    std::fs::create_dir_all(&root).unwrap();
    let worker = start_worker_for(Storage::Http, dir.path(), &[], &[]);
    let mut opts = small_options();
    // Levels fill from level 1 down, and tables are small: many of them.
    // The MANIFEST rolls now and then: its first record then names every
    // live table at once, and the trim leaves many of them out of one record.
    opts.set_level_compaction_dynamic_level_bytes(false);
    opts.set_target_file_size_base(64 << 10);
    opts.set_max_bytes_for_level_base(512 << 10);
    opts.set_max_manifest_file_size(64 << 10);
    let cfs = || vec![ColumnFamilyDescriptor::new("default", opts.clone())];
    let params = params(
        &root,
        &[worker.base_url()],
        Storage::Http.params(serde_json::json!({})),
    );
    let hoster = Hoster::open(&db_path, opts.clone(), cfs(), &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let old = WorkloadSpec {
        ops: 60_000,
        key_space: 40_000,
        delete_every: 0,
        range_delete_every: 0,
        seed: 71,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &old).expect("no write fails");
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);
    let bottom = hoster.db.live_files().unwrap().len();
    let fresh = WorkloadSpec {
        ops: 60_000,
        key_space: 4_000,
        delete_every: 4,
        range_delete_every: 1_000,
        seed: 72,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &fresh).expect("writes go on");
    hoster.db.flush_cf(cf).unwrap();
    hoster.wait_for_compactions(&["default"]);

    let remote = worker_stat(&worker)["remote"].clone();
    let stats = hoster.farm.stats();
    println!("{bottom} tables after the first workload; worker remote {remote}; hoster {stats:?}");
    assert!(bottom >= 40, "many small tables at the bottom: {bottom}");
    assert!(
        stats.remote_installed > 0,
        "compactions ran remotely: {stats:?}"
    );
    let logs = attempt_logs(dir.path());
    for line in logs
        .iter()
        .flat_map(|log| log.lines())
        .filter(|l| l.contains("MANIFEST trimmed") || l.contains("opened whole"))
        .take(5)
    {
        println!("attempt LOG: {line}");
    }
    let trims = remote["manifest_trims"].as_u64().unwrap();
    let left_out = remote["manifest_tables_left_out"].as_u64().unwrap();
    assert!(trims > 0, "some open named only part of the DB: {remote}");
    assert!(
        left_out >= trims * 20,
        "most bottom tables were left out: {remote}"
    );
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));

    // Reopened without the farm, every key is the model's.
    let Hoster { db, farm, .. } = hoster;
    drop((db, farm));
    let db = DB::open_cf_descriptors(&opts, &db_path, cfs()).unwrap();
    let cf = db.cf_handle("default").unwrap();
    assert_eq!(model.check(&db, cf), Ok(model.len() as u64));
}
