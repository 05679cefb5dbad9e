//! A busy primary in the HTTP storage mode: a MANIFEST of at most 4 KiB
//! (rolled over and over, `CURRENT` replaced each time) and compactions of
//! three column families at once. Each job's snapshot pins `CURRENT`, the
//! MANIFEST and the inputs (taken again when the MANIFEST rolls under it),
//! so at least 95% of the compactions run remotely; the fallback reasons
//! are printed.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;

#[test]
fn a_rolling_manifest_keeps_compactions_remote() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("busy");
    std::fs::create_dir_all(&root).unwrap();
    let worker = start_worker_for(
        Storage::Http,
        dir.path(),
        &[("MAX_PARALLEL_COMPACTIONS", "4".into())],
        &[],
    );
    let mut opts = small_options();
    opts.set_max_manifest_file_size(4 << 10);
    opts.set_max_background_jobs(6);
    let names = ["default", "cf1", "cf2"];
    let cfs: Vec<_> = names
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, opts.clone()))
        .collect();
    let params = params(
        &root,
        &[worker.base_url()],
        Storage::Http.params(serde_json::json!({"max_background_jobs": 6})),
    );
    let hoster = Hoster::open(&db_path, opts, cfs, &params);
    let mut models: Vec<Model> = names.iter().map(|_| Model::default()).collect();
    // The families written in turn, in slices, so that their flushes and
    // compactions overlap.
    for slice in 0..8u64 {
        for (i, name) in names.iter().enumerate() {
            let cf = hoster.db.cf_handle(name).unwrap();
            let spec = WorkloadSpec {
                ops: 15_000,
                key_space: 20_000,
                seed: slice * 10 + i as u64,
                ..WorkloadSpec::default()
            };
            models[i]
                .write(&hoster.db, cf, &spec)
                .expect("no write fails");
        }
    }
    hoster.wait_for_compactions(&names);
    let manifests = std::fs::read_to_string(db_path.join("CURRENT")).unwrap();
    let number: u64 = manifests
        .trim()
        .trim_start_matches("MANIFEST-")
        .parse()
        .unwrap();
    let stats = hoster.farm.stats();
    let total = stats.remote_installed + stats.local_total();
    println!(
        "MANIFEST now {manifests:?}; remote {} of {total}; fallbacks {:?}; last errors {:?}",
        stats.remote_installed, stats.fallbacks, stats.last_errors
    );
    assert!(number > 20, "the MANIFEST rolled many times: {manifests}");
    assert!(total >= 10, "compactions ran: {stats:?}");
    assert!(
        stats.remote_installed * 100 >= total * 95,
        "at least 95% remote: {stats:?}"
    );
    for (i, name) in names.iter().enumerate() {
        let cf = hoster.db.cf_handle(name).unwrap();
        assert_eq!(
            models[i].check(&hoster.db, cf),
            Ok(models[i].len() as u64),
            "{name}"
        );
    }
}
