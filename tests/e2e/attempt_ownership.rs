//! One attempt, one owner: a hoster installs from disk only a result whose
//! `compact.done` names its own attempt, so a worker still running an
//! attempt of an earlier run of the hoster (RocksDB numbers jobs from 1
//! again after every open) can never hand it another compaction's output.

use crate::admission::capture;
use crate::fault_proxy::{Fault, FaultProxy};
use crate::harness::*;
use farm::protocol::attempt::AttemptKey;
use farm::protocol::output_dir::{done_by, done_marker, COMPACT_DONE};
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use std::path::{Path, PathBuf};

/// Runs `job` of a captured input to its end on `worker`; returns its
/// output directory, complete with `rpc.results` and `compact.done`.
fn finished_elsewhere(dir: &Path) -> PathBuf {
    let c = capture(dir);
    let worker = start_worker(dir, &[]);
    let job = c.job("old-run", 0);
    let (code, answer) = post(
        &format!("{}/dcompact", worker.base_url()),
        &serde_json::to_vec(&job).unwrap(),
        &[],
    );
    assert_eq!(code, 200, "{answer}");
    let key = serde_json::to_vec(&job.key()).unwrap();
    eventually("the old run's attempt finished", || {
        post(&format!("{}/probe", worker.base_url()), &key, &[]).1["status"] == "done"
    });
    PathBuf::from(&job.output_dir)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A hoster restarted on its DB: the output directory it waits on holds a
/// complete, valid result of another attempt (as a worker still running an
/// attempt of the earlier run could have left there), and its probe then
/// fails. The result is not installed; the compaction runs locally; no key
/// is lost.
#[test]
fn a_result_on_disk_for_another_attempt_is_never_installed() {
    let d = dirs("db");
    let old_output = finished_elsewhere(d.tmp.path());
    assert!(done_by(&std::fs::read(old_output.join(COMPACT_DONE)).unwrap()).is_some());

    let worker = start_worker(d.tmp.path(), &[]);
    let outputs = d.db.join(farm::hoster::service::OUTPUT_SUBDIR);
    let proxy = FaultProxy::start(worker.base_url(), outputs.clone(), Fault::HoldSubmit);
    let mut opts = small_options();
    opts.set_disable_auto_compactions(true);
    let cfs = vec![ColumnFamilyDescriptor::new("default", opts.clone())];
    let params = params(
        &d.root,
        &[proxy.url()],
        serde_json::json!({"http_max_retry": 1}),
    );
    let hoster = Hoster::open(&d.db, opts, cfs, &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 40_000,
        ..WorkloadSpec::default()
    };
    model.write(&hoster.db, cf, &spec).expect("no write fails");
    hoster.db.flush_cf(cf).unwrap();

    std::thread::scope(|s| {
        s.spawn(|| hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>));
        eventually("the hoster submitted", || !proxy.held().is_empty());
        let held = proxy.held()[0].clone();
        let waiting_on = PathBuf::from(held["output_dir"].as_str().unwrap());
        assert!(
            waiting_on.starts_with(&outputs) && waiting_on.parent() != Some(outputs.as_path()),
            "output directories are per run of the hoster: {}",
            waiting_on.display()
        );
        // The earlier run's attempt of the same job, attempt number and
        // instance, finished into this directory.
        let mut planted_key: AttemptKey = serde_json::from_value(held.clone()).unwrap();
        planted_key.start_time -= 1;
        copy_dir(&old_output, &waiting_on);
        std::fs::write(waiting_on.join(COMPACT_DONE), done_marker(&planted_key)).unwrap();
        // The worker "accepts" and has lost the attempt: every probe of it
        // answers 404, and the hoster looks on disk.
        proxy.set_fault(Fault::AcceptUnforwarded);
    });
    hoster.wait_for_compactions(&["default"]);
    let stats = hoster.farm.stats();
    println!("{stats:?}");
    assert_eq!(
        stats.remote_installed, 0,
        "the other attempt's result was installed"
    );
    assert!(stats.fallbacks["not_found"] >= 1, "{stats:?}");
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
    drop(hoster);
    let cf_opts = small_options();
    let db = rocksdb::DB::open_cf(&cf_opts, &d.db, ["default"]).unwrap();
    let cf = db.cf_handle("default").unwrap();
    assert_eq!(model.check(&db, cf), Ok(model.len() as u64), "after reopen");
}
