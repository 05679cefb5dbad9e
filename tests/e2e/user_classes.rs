//! A column family that names a user class the worker cannot create (here a
//! compaction filter set from Rust on the hoster, with no plugin for it on
//! the worker) is never compacted remotely: RocksDB would run the job
//! without the filter and silently keep what the hoster drops. The worker
//! refuses with 412 naming the class; the hoster compacts locally, with its
//! filter. (A missing merge operator fails loudly on the worker; it is
//! refused the same way before it gets there.)

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::compaction_filter::Decision;
use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options};

fn ends_in_7(key: &[u8]) -> bool {
    key.last() == Some(&b'7')
}

#[test]
fn an_unresolvable_compaction_filter_is_refused_and_applied_locally() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[]);
    let mut cf_opts: Options = small_options();
    cf_opts.set_compaction_filter(
        "drop_keys_ending_in_7",
        |_level, key: &[u8], _value: &[u8]| {
            if ends_in_7(key) {
                Decision::Remove
            } else {
                Decision::Keep
            }
        },
    );
    let params = params(&d.root, &[worker.base_url()], serde_json::json!({}));
    let cfs = vec![ColumnFamilyDescriptor::new("default", cf_opts.clone())];
    let hoster = Hoster::open(&d.db, cf_opts, cfs, &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 40_000,
        key_space: 20_000,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &spec).expect("no write fails");
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);

    let counters = worker_stat(&worker)["counters"].clone();
    let stats = hoster.farm.stats();
    assert_eq!(counters["accepted"], 0, "{counters}");
    assert!(stats.fallbacks["refused"] > 0, "{stats:?}");
    assert_eq!(stats.local_total(), stats.fallbacks["refused"], "{stats:?}");
    let refusal = &stats.last_errors["refused"];
    assert!(
        refusal.contains("drop_keys_ending_in_7"),
        "the 412 names the class: {refusal}"
    );

    // The filter ran (locally): no key ending in 7 is left, and every other
    // key of the model is there with its value.
    let mut kept = 0u64;
    for item in hoster.db.iterator_cf(cf, IteratorMode::Start) {
        let (k, v) = item.unwrap();
        assert!(
            !ends_in_7(&k),
            "{} survived the filter",
            String::from_utf8_lossy(&k)
        );
        assert_eq!(model.get(&k), Some(&*v), "{}", String::from_utf8_lossy(&k));
        kept += 1;
    }
    assert_eq!(kept, model.keys().filter(|k| !ends_in_7(k)).count() as u64);
}
