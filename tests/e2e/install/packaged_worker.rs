//! The worker as installed: the unpacked `dcompact-worker` with the
//! unpacked example plugins runs the demo's workload (scripts/demo.sh,
//! scaled down): random puts, overwrites, point and range deletes in the
//! default column family, merges through the `counter` plugin, sessions
//! expired by the `ttl` plugin, then a full compaction of each family.
//! The compactions ran remotely by both sides' counts, in the packaged
//! process, with the packaged plugins; every live SST carries the worker's
//! identity; data and plugin results equal their models.

use super::deb::unpack;
use crate::harness::*;
use farm::hoster::plugins::{install_compaction_filter, install_merge_operator};
use farm::workload::{Model, WorkloadSpec};
use farm_plugin_counter::Counter;
use farm_plugin_ttl::Ttl;
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, DB};
use std::collections::BTreeMap;
use std::path::Path;

/// The sessions' fixed "now" and time to live, on both sides (as the demo).
const NOW: u64 = 1_800_000_000;
const TTL: u64 = 3_600;
const FAMILIES: [&str; 3] = ["default", "counters", "sessions"];

fn families() -> Vec<ColumnFamilyDescriptor> {
    let mut counters = small_options();
    install_merge_operator(&mut counters, Counter).expect("the counter merge operator");
    let mut sessions = small_options();
    install_compaction_filter(&mut sessions, Ttl::new(TTL, Some(NOW)));
    vec![
        ColumnFamilyDescriptor::new("default", small_options()),
        ColumnFamilyDescriptor::new("counters", counters),
        ColumnFamilyDescriptor::new("sessions", sessions),
    ]
}

/// The counters' sums and the sessions' write times, as written.
struct PluginModel {
    sums: BTreeMap<String, u64>,
    stamps: BTreeMap<String, u64>,
}

fn write_plugin_data(db: &DB, ops: u64) -> PluginModel {
    let counters = db.cf_handle("counters").expect("counters");
    let sessions = db.cf_handle("sessions").expect("sessions");
    let mut model = PluginModel {
        sums: BTreeMap::new(),
        stamps: BTreeMap::new(),
    };
    for i in 0..ops {
        let key = format!("counter{:05}", i % 2_000);
        let add = i % 5 + 1;
        db.merge_cf(counters, &key, add.to_le_bytes())
            .expect("merge");
        *model.sums.entry(key).or_default() += add;
        let key = format!("session{:06}", i % 10_000);
        let stamp = NOW - (i * 7_919) % (2 * TTL);
        let value = [stamp.to_le_bytes().as_slice(), &[b's'; 64]].concat();
        db.put_cf(sessions, &key, value).expect("put");
        model.stamps.insert(key, stamp);
    }
    model
}

fn check_plugin_data(db: &DB, model: &PluginModel) {
    let counters = db.cf_handle("counters").expect("counters");
    for (key, sum) in &model.sums {
        let v = db
            .get_cf(counters, key)
            .expect("get")
            .expect("counter present");
        let got = u64::from_le_bytes(v.as_slice().try_into().expect("8 bytes"));
        assert_eq!(got, *sum, "{key}");
    }
    let sessions = db.cf_handle("sessions").expect("sessions");
    let left: Vec<String> = db
        .iterator_cf(sessions, IteratorMode::Start)
        .map(|kv| String::from_utf8_lossy(&kv.expect("scan").0).into_owned())
        .collect();
    let live: Vec<&String> = model
        .stamps
        .iter()
        .filter(|(_, s)| NOW - **s <= TTL)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        left.iter().collect::<Vec<_>>(),
        live,
        "exactly the unexpired sessions"
    );
}

#[test]
fn the_packaged_worker_and_plugins_run_the_demo_workload_remotely() {
    let unpacked = unpack();
    let dir = unpacked.tmp.path();
    let root = dir.join("data");
    let db_path = root.join("db");
    std::fs::create_dir_all(&root).expect("hoster root");
    let worker = farm::worker::local::LocalWorker::start(
        &unpacked.worker(),
        &[
            ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
            ("HOSTER_ROOTS", root.display().to_string()),
            ("PLUGINS", unpacked.plugins()),
            ("FARM_TTL_SECONDS", TTL.to_string()),
            ("FARM_TTL_NOW", NOW.to_string()),
            ("MULTI_PROCESS", multi_process().to_string()),
            ("MAX_PARALLEL_COMPACTIONS", "2".into()),
            ("OUTPUT_SPACE_MARGIN", "1M".into()),
            ("RUST_LOG", "warn".into()),
        ],
    )
    .expect("the packaged worker starts");
    let exe = std::fs::read_link(format!("/proc/{}/exe", worker.pid())).expect("its executable");
    assert_eq!(
        exe,
        unpacked.worker(),
        "the process runs the packaged binary"
    );
    let identity = worker_identity(&worker);

    let params = params(&root, &[worker.base_url()], serde_json::json!({}));
    let hoster = Hoster::open(&db_path, small_options(), families(), &params);
    let spec = WorkloadSpec {
        ops: 150_000,
        key_space: 50_000,
        value_size: 100,
        delete_every: 10,
        range_delete_every: 10_000,
        seed: 42,
        compressible: 0.0,
    };
    let mut model = Model::default();
    let cf = hoster.db.cf_handle("default").expect("default");
    let written = model.write(&hoster.db, cf, &spec).expect("no write fails");
    assert!(written.deletes > 0 && written.range_deletes > 0);
    let plugin_model = write_plugin_data(&hoster.db, 30_000);
    for name in FAMILIES {
        let cf = hoster.db.cf_handle(name).expect("family");
        hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }
    hoster.wait_for_compactions(&FAMILIES);
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
    check_plugin_data(&hoster.db, &plugin_model);

    let stat = worker_stat(&worker);
    let succeeded = stat["counters"]["succeeded"]
        .as_u64()
        .expect("succeeded count");
    let stats = hoster.farm.stats();
    println!(
        "worker counters {}; plugins {}; hoster {stats:?}",
        stat["counters"], stat["plugins"]["counts"]
    );
    assert!(succeeded > 0, "compactions reached the packaged worker");
    assert_eq!(
        stats.remote_installed, succeeded,
        "both sides count the same remote compactions"
    );
    let counts = &stat["plugins"]["counts"];
    assert!(
        counts["merges"].as_u64() > Some(0),
        "the packaged counter plugin merged: {counts}"
    );
    assert!(
        counts["dropped"].as_u64() > Some(0),
        "the packaged ttl plugin dropped: {counts}"
    );
    assert_eq!(failed_attempts(&stat), 0, "no attempt failed: {stat}");

    // After reopening: the worker wrote every live SST; the data is intact.
    let Hoster { db, opts, farm, .. } = hoster;
    drop(db);
    drop(farm);
    let db = DB::open_cf_descriptors(&opts, &db_path, families()).expect("db reopens");
    let ssts = live_ssts(&db, Path::new(&db_path));
    assert!(ssts.iter().any(|s| s.cf == "counters") && ssts.iter().any(|s| s.cf == "sessions"));
    for sst in &ssts {
        assert_eq!(
            sst.props.db_host_id, identity,
            "{} at L{} was written by the worker",
            sst.cf, sst.level
        );
    }
    let cf = db.cf_handle("default").expect("default");
    assert_eq!(model.check(&db, cf), Ok(model.len() as u64));
    check_plugin_data(&db, &plugin_model);
}
