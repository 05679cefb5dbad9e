//! Realistic shapes: column families with different table options and a
//! universal-compaction family. Remote outputs must carry each family's own
//! table options, which proves the worker built its override from the
//! family's options in the OPTIONS file.
//!
//! Table options are set by string, so the OPTIONS file records them in full;
//! a bloom filter set through the crate's `set_bloom_filter` is recorded
//! without its bits per key, and the worker must refuse such a job rather
//! than write outputs without filters.

use crate::harness::*;
use farm::workload::Written;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DBCompactionStyle, Options};

fn family(block_size: usize, bloom: bool, format_version: i32) -> Options {
    let filter = if bloom {
        "bloomfilter:10:false"
    } else {
        "nullptr"
    };
    small_options()
        .get_options_from_string(format!(
            "block_based_table_factory={{block_size={block_size};format_version={format_version};filter_policy={filter}}}"
        ))
        .expect("table options parse")
}

#[test]
fn remote_outputs_keep_each_familys_table_options() {
    table_shapes(Storage::Shared);
}

/// The table shapes in either storage mode.
pub fn table_shapes(storage: Storage) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("shapes");
    std::fs::create_dir_all(&root).unwrap();
    let worker = start_worker_for(storage, dir.path(), &[], &[]);
    let identity = worker_identity(&worker);

    let mut universal = small_options();
    universal.set_compaction_style(DBCompactionStyle::Universal);
    let cfs = vec![
        ColumnFamilyDescriptor::new("default", small_options()),
        ColumnFamilyDescriptor::new("bloom16k", family(16 << 10, true, 5)),
        ColumnFamilyDescriptor::new("plain4k", family(4 << 10, false, 6)),
        ColumnFamilyDescriptor::new("universal", universal),
    ];
    let params = params(
        &root,
        &[worker.base_url()],
        storage.params(serde_json::json!({})),
    );
    let hoster = Hoster::open(&db_path, small_options(), cfs, &params);
    let names = ["bloom16k", "plain4k", "universal"];
    let mut models = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let cf = hoster.db.cf_handle(name).unwrap();
        let spec = WorkloadSpec {
            ops: 60_000,
            key_space: 20_000,
            value_size: 200,
            seed: 100 + i as u64,
            ..WorkloadSpec::default()
        };
        let mut model = Model::default();
        model.write(&hoster.db, cf, &spec).expect("no write fails");
        hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        models.push(model);
    }
    hoster.wait_for_compactions(&names);

    let ssts = live_ssts(&hoster.db, &db_path);
    for name in names {
        let remote: Vec<_> = ssts
            .iter()
            .filter(|s| s.cf == name && s.props.db_host_id == identity)
            .collect();
        assert!(!remote.is_empty(), "{name} has remote output SSTs");
        for s in remote {
            let p = &s.props;
            match name {
                "bloom16k" => {
                    assert_eq!(p.filter_policy_name, "bloomfilter", "{name}");
                    assert!(p.filter_size > 0);
                    assert_eq!(p.format_version, 5);
                    assert!(
                        (12 << 10..=17 << 10).contains(&p.mean_block_size()),
                        "{name}: mean block {}",
                        p.mean_block_size()
                    );
                }
                "plain4k" => {
                    assert_eq!(p.filter_policy_name, "", "{name} has no filter");
                    assert_eq!(p.filter_size, 0);
                    assert_eq!(p.format_version, 6);
                    assert!(
                        (3 << 10..=5 << 10).contains(&p.mean_block_size()),
                        "{name}: mean block {}",
                        p.mean_block_size()
                    );
                }
                _ => assert_eq!(p.column_family_name, "universal"),
            }
        }
    }
    for (name, model) in names.iter().zip(&models) {
        let cf = hoster.db.cf_handle(name).unwrap();
        assert_eq!(
            model.check(&hoster.db, cf),
            Ok(model.len() as u64),
            "{name}"
        );
    }
}

#[test]
fn a_filter_the_options_file_cannot_carry_is_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("capi-bloom");
    std::fs::create_dir_all(&root).unwrap();
    let worker = start_worker(dir.path(), &[]);
    let mut opts = small_options();
    let mut t = BlockBasedOptions::default();
    t.set_bloom_filter(10.0, false);
    opts.set_block_based_table_factory(&t);
    let cfs = vec![ColumnFamilyDescriptor::new("default", opts.clone())];
    let params = params(&root, &[worker.base_url()], serde_json::json!({}));
    let hoster = Hoster::open(&db_path, opts, cfs, &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 40_000,
        key_space: 20_000,
        ..WorkloadSpec::default()
    };
    let w: Written = model.write(&hoster.db, cf, &spec).expect("no write fails");
    assert!(w.puts > 0);
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);

    let stats = hoster.farm.stats();
    let counters = worker_stat(&worker)["counters"].clone();
    assert!(stats.fallbacks["refused"] > 0, "{stats:?}");
    assert_eq!(stats.local_total(), stats.fallbacks["refused"], "{stats:?}");
    assert_eq!(counters["accepted"], 0, "{counters}");
    assert_eq!(
        counters["rejected"]["refused"].as_u64(),
        Some(stats.fallbacks["refused"]),
        "{counters}"
    );
    // Local outputs keep their filters, and the data is intact.
    for sst in live_ssts(&hoster.db, &db_path) {
        assert!(sst.props.filter_size > 0, "L{} has a filter", sst.level);
    }
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
}
