//! A worker killed in the middle of an attempt: the hoster falls back to
//! local compaction for it, and no write fails.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn sigkill_while_running_falls_back_to_local() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db_path = root.join("db");
    std::fs::create_dir_all(&root).unwrap();
    let mut worker = start_worker(dir.path(), &[("MAX_PARALLEL_COMPACTIONS", "1".into())]);
    let base = worker.base_url();

    // Build up data with auto compactions off, so the one big manual
    // compaction below runs long enough to be caught running.
    let mut opts = small_options();
    opts.set_disable_auto_compactions(true);
    opts.set_write_buffer_size(8 << 20);
    let cfs = vec![ColumnFamilyDescriptor::new("default", opts.clone())];
    let params = params(&root, std::slice::from_ref(&base), serde_json::json!({}));
    let hoster = Hoster::open(&db_path, opts, cfs, &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 400_000,
        key_space: 300_000,
        value_size: 200,
        seed: 11,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &spec).expect("no write fails");
    hoster.db.flush_cf(cf).unwrap();

    let compacting = AtomicBool::new(true);
    std::thread::scope(|s| {
        s.spawn(|| {
            hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
            compacting.store(false, Ordering::SeqCst);
        });

        // Find the running attempt through /stat, confirm with /probe, kill.
        let deadline = Instant::now() + Duration::from_secs(60);
        let key = loop {
            assert!(Instant::now() < deadline, "no attempt was seen running");
            let stat = worker_stat(&worker);
            let running = stat["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["state"] == "running")
                .map(|a| a["key"].clone());
            if let Some(key) = running {
                let (code, probe) = post(&format!("{base}/probe"), key.to_string().as_bytes(), &[]);
                if code == 200 && probe["status"] == "running" {
                    break key;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        worker.kill();
        println!("killed the worker while {key} was running");

        // Writes go on while the hoster recovers from the loss.
        let more = WorkloadSpec {
            ops: 20_000,
            key_space: 300_000,
            seed: 12,
            ..WorkloadSpec::default()
        };
        model
            .write(&hoster.db, cf, &more)
            .expect("writes go on while the worker is gone");
        while compacting.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    let stats = hoster.farm.stats();
    println!("hoster stats after the kill: {stats:?}");
    assert!(
        stats.fallbacks["connection"] >= 1,
        "the attempt fell back for a lost connection: {stats:?}"
    );
    assert_eq!(
        stats.remote_installed, 0,
        "nothing from the dead worker was installed"
    );
    // The DB keeps taking writes after the loss.
    let after = WorkloadSpec {
        ops: 20_000,
        key_space: 300_000,
        seed: 13,
        ..WorkloadSpec::default()
    };
    model
        .write(&hoster.db, cf, &after)
        .expect("writes go on after the worker died");
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
}
