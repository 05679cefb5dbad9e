//! A worker's output that is damaged between the worker finishing and the
//! hoster installing it is never installed: the hoster checks every output
//! file (present, exact size, the CRC32C of the whole file against the
//! checksum the worker's RocksDB computed while writing it) and compacts
//! locally instead.
//!
//! The damage is done by a proxy between hoster and worker
//! ([`crate::fault_proxy`]): when it forwards a `/probe` answer that says
//! `done`, it first corrupts, truncates or removes the SSTs in that attempt's
//! output directory.

use crate::fault_proxy::{Damage, Fault, FaultProxy};
use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, DB};

/// `caught_by`: what the hoster's last refusal names.
fn damaged_outputs_are_never_installed(damage: Damage, caught_by: &str) {
    // Probes that never time out while the proxy damages the outputs: a
    // hoster whose probe timed out collects the result from the output
    // directory itself, possibly before the damage.
    caught_with(damage, serde_json::json!({"http_timeout": 60}), caught_by);
}

/// As above, with `extra` hoster params.
fn caught_with(damage: Damage, extra: serde_json::Value, caught_by: &str) {
    let d = dirs("db");
    let (root, db_path) = (&d.root, &d.db);
    let worker = start_worker(d.tmp.path(), &[]);
    let proxy = FaultProxy::start(
        worker.base_url(),
        db_path.join(farm::hoster::service::OUTPUT_SUBDIR),
        Fault::Damage(damage),
    );
    let params = params(root, &[proxy.url()], extra);
    let cfs = || vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(db_path, small_options(), cfs(), &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 20_000,
        seed: 31,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &spec).expect("no write fails");
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);
    model
        .write(&hoster.db, cf, &WorkloadSpec { seed: 32, ..spec })
        .expect("writes go on");
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));

    // Every attempt the worker finished has been judged by the hoster.
    let succeeded = || {
        worker_stat(&worker)["counters"]["succeeded"]
            .as_u64()
            .unwrap()
    };
    eventually("the hoster judged every finished attempt", || {
        let s = hoster.farm.stats();
        s.fallbacks["verify_failed"] + s.remote_installed == succeeded()
    });
    // The proxy counts a damage once it is done, which may be after the
    // hoster judged the attempt.
    eventually("the proxy counted its damage", || {
        proxy.injected() >= succeeded()
    });
    let stats = hoster.farm.stats();
    let damaged = proxy.injected();
    let succeeded = succeeded();
    println!("{damage:?}: damaged {damaged}, worker succeeded {succeeded}, hoster {stats:?}");
    assert!(damaged > 0, "outputs were damaged");
    assert_eq!(
        damaged, succeeded,
        "every remote result was damaged before the hoster saw it"
    );
    assert_eq!(
        stats.fallbacks["verify_failed"], damaged,
        "each damaged result fell back"
    );
    assert_eq!(stats.remote_installed, 0, "nothing damaged was installed");
    let refusal = &stats.last_errors["verify_failed"];
    assert!(
        refusal.contains(caught_by),
        "{refusal:?} names {caught_by:?}"
    );

    // Reopened, every SST is sound and the data is the model's.
    let Hoster { db, opts, farm, .. } = hoster;
    drop((db, farm));
    let db = DB::open_cf_descriptors(&opts, db_path, cfs()).unwrap();
    for f in db.live_files().unwrap() {
        let path = db_path.join(f.name.trim_start_matches('/'));
        farm::rocks::sst::verify_checksums(&path).expect("installed SSTs are sound");
    }
    let cf = db.cf_handle("default").unwrap();
    assert_eq!(model.check(&db, cf), Ok(model.len() as u64));
}

#[test]
fn corrupted_output_is_not_installed() {
    damaged_outputs_are_never_installed(
        Damage::Flip {
            at_permille: 333,
            len: Some(64),
        },
        "file checksum",
    );
}

#[test]
fn truncated_output_is_not_installed() {
    damaged_outputs_are_never_installed(Damage::Truncate { keep_permille: 900 }, "size");
}

#[test]
fn missing_output_is_not_installed() {
    damaged_outputs_are_never_installed(Damage::Remove, "No such file");
}

#[test]
fn corrupted_output_is_caught_by_block_checksums_with_verify_output_blocks() {
    caught_with(
        Damage::Flip {
            at_permille: 333,
            len: Some(64),
        },
        serde_json::json!({"verify_output_blocks": true, "http_timeout": 60}),
        "checksum verification failed",
    );
}
