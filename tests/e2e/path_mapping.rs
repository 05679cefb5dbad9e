//! The worker sees the hoster's files under another path
//! (`NFS_MOUNT_ROOT/<instance_name>/...`, here a symlink standing in for the
//! mount): jobs read through the mapped path, and the result's `output_path`
//! is rewritten back into the hoster's path space before RocksDB sees it.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;

#[test]
fn output_path_is_rewritten_into_the_hosters_path_space() {
    let d = dirs("db");
    let (dir, root, db_path) = (d.tmp.path(), &d.root, &d.db);
    let mount_root = dir.join("mnt");
    std::fs::create_dir_all(&mount_root).unwrap();
    // instance_name is "e2e": the worker reads <mnt>/e2e/db for <root>/db.
    std::os::unix::fs::symlink(root, mount_root.join("e2e")).unwrap();
    let worker = start_worker(dir, &[("NFS_MOUNT_ROOT", mount_root.display().to_string())]);

    let params = params(root, &[worker.base_url()], serde_json::json!({}));
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(db_path, small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 20_000,
        seed: 21,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);

    let succeeded = worker_stat(&worker)["counters"]["succeeded"]
        .as_u64()
        .unwrap();
    assert!(succeeded > 0);
    assert_eq!(hoster.farm.stats().remote_installed, succeeded);

    // The worker worked on the mapped paths...
    let worker_logs = attempt_logs(&dir.join("worker"));
    assert_eq!(worker_logs.len() as u64, succeeded);
    let mapped_db = mount_root.join("e2e/db").display().to_string();
    for log in &worker_logs {
        assert!(log.contains(&format!("start db={mapped_db} ")), "{log}");
    }
    // ...and RocksDB on the hoster received output paths in its own space.
    let hoster_log = std::fs::read_to_string(db_path.join("LOG")).unwrap();
    let received: Vec<&str> = hoster_log
        .lines()
        .filter_map(|l| {
            l.split("Received remote compaction result, output path: ")
                .nth(1)
        })
        .collect();
    assert_eq!(
        received.len() as u64,
        succeeded,
        "one received result per remote compaction"
    );
    let hoster_outputs = db_path
        .join(farm::hoster::service::OUTPUT_SUBDIR)
        .display()
        .to_string();
    for r in received {
        assert!(
            r.starts_with(&hoster_outputs),
            "output path {r} is in the hoster's space"
        );
    }
}
