//! Realistic shapes: column families with different table options and a
//! universal-compaction family. Remote outputs must carry each family's own
//! table options, which proves the worker built its override from the
//! family's options in the OPTIONS file.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DBCompactionStyle, Options};

fn family(block_size: usize, bloom: bool, format_version: i32) -> Options {
    let mut o = small_options();
    let mut t = BlockBasedOptions::default();
    t.set_block_size(block_size);
    t.set_format_version(format_version);
    if bloom {
        t.set_bloom_filter(10.0, false);
    }
    o.set_block_based_table_factory(&t);
    o
}

#[test]
fn remote_outputs_keep_each_familys_table_options() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("shapes");
    std::fs::create_dir_all(&root).unwrap();
    let worker = start_worker(dir.path(), &[]);
    let identity = worker_stat(&worker)["identity"].as_str().unwrap().to_owned();

    let mut universal = small_options();
    universal.set_compaction_style(DBCompactionStyle::Universal);
    let cfs = vec![
        ColumnFamilyDescriptor::new("default", small_options()),
        ColumnFamilyDescriptor::new("bloom16k", family(16 << 10, true, 5)),
        ColumnFamilyDescriptor::new("plain4k", family(4 << 10, false, 6)),
        ColumnFamilyDescriptor::new("universal", universal),
    ];
    let params = params(&root, &[worker.base_url()], serde_json::json!({}));
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
        let remote: Vec<_> = ssts.iter().filter(|s| s.cf == name && s.props.db_host_id == identity).collect();
        assert!(!remote.is_empty(), "{name} has remote output SSTs");
        for s in remote {
            let p = &s.props;
            match name {
                "bloom16k" => {
                    assert!(p.filter_policy_name.contains("Bloom"), "{name}: filter {:?}", p.filter_policy_name);
                    assert!(p.filter_size > 0);
                    assert_eq!(p.format_version, 5);
                    assert!((12 << 10..=17 << 10).contains(&p.mean_block_size()), "{name}: mean block {}", p.mean_block_size());
                }
                "plain4k" => {
                    assert_eq!(p.filter_policy_name, "", "{name} has no filter");
                    assert_eq!(p.filter_size, 0);
                    assert_eq!(p.format_version, 6);
                    assert!((3 << 10..=5 << 10).contains(&p.mean_block_size()), "{name}: mean block {}", p.mean_block_size());
                }
                _ => assert_eq!(p.column_family_name, "universal"),
            }
        }
    }
    for (name, model) in names.iter().zip(&models) {
        let cf = hoster.db.cf_handle(name).unwrap();
        assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64), "{name}");
    }
}
