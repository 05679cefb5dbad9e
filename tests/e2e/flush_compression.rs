//! The hoster param `flush_compression`: flushes write its codec, and the
//! levels the workers compact into keep the DB's.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, DB};

/// The codecs a table was written with, as its properties name them
/// (format_version 7: the manager's name, then each type used).
const LZ4: &str = "BuiltinV2;04;";
const ZSTD: &str = "BuiltinV2;07;";

#[test]
fn flushes_write_the_param_s_codec_and_worker_outputs_the_db_s() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[]);
    let identity = worker_identity(&worker);
    let mut opts = small_options();
    opts.set_compression_type(DBCompressionType::Zstd);
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": "flushc", "flush_compression": "lz4"}),
    );
    let farm = farm::hoster::enable(&mut opts, &d.db.display().to_string(), &params)
        .expect("farm enabled");
    // The family's options are the ones `enable` changed.
    let cfs = vec![ColumnFamilyDescriptor::new("default", opts.clone())];
    let db = DB::open_cf_descriptors(&opts, &d.db, cfs).expect("db opens");
    let hoster = Hoster { db, farm, opts };
    let spec = WorkloadSpec {
        ops: 20_000,
        key_space: 8_000,
        seed: 5,
        ..WorkloadSpec::default()
    };
    let mut model = Model::default();
    hoster.churn(&mut model, &spec);
    // One more flush, left in level 0.
    let cf = hoster.db.cf_handle("default").unwrap();
    model
        .write(
            &hoster.db,
            cf,
            &WorkloadSpec {
                ops: 500,
                key_space: 8_000,
                seed: 6,
                ..WorkloadSpec::default()
            },
        )
        .unwrap();
    hoster.db.flush_cf(cf).unwrap();
    assert!(hoster.farm.stats().remote_installed > 0);

    let ssts = live_ssts(&hoster.db, &d.db);
    let flushed: Vec<_> = ssts.iter().filter(|s| s.level == 0).collect();
    let compacted: Vec<_> = ssts.iter().filter(|s| s.level > 0).collect();
    let shape: Vec<_> = ssts
        .iter()
        .map(|s| (s.level, s.props.compression_name.as_str()))
        .collect();
    assert!(!flushed.is_empty() && !compacted.is_empty(), "{shape:?}");
    for s in &flushed {
        assert_eq!(s.props.compression_name, LZ4, "a flush: {:?}", s.props);
        assert_ne!(s.props.db_host_id, identity, "flushed by the hoster");
    }
    for s in &compacted {
        assert_eq!(
            s.props.compression_name, ZSTD,
            "a compaction: {:?}",
            s.props
        );
        assert_eq!(s.props.db_host_id, identity, "compacted by the worker");
    }
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
}
