//! `/probe` with `wait_ms`: the worker holds the probe until the attempt
//! ends, so each remote job costs the hoster one probe instead of one per
//! pause; and every attempt's LOG carries its `timings` line, every mark of
//! its path present (a child's delivery of its result before its exit
//! among them).

use crate::harness::*;
use farm::worker::timings::AttemptTimings;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;

/// Runs a small churn against a fresh worker with `probe_wait` and returns
/// (remote compactions installed, probes sent, the attempts' timings).
fn churn_with(probe_wait: f64) -> (u64, u64, Vec<AttemptTimings>) {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[("DEL_WORKER_TEMP_DB", "false".into())]);
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"probe_wait": probe_wait, "http_timeout": 60}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 20_000,
        value_size: 100,
        seed: 3,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);
    let stats = hoster.farm.stats();
    assert_eq!(stats.local_total(), 0, "{stats:?}");
    let timings = attempt_logs(&d.tmp.path().join("worker"))
        .iter()
        .map(|log| {
            let line = log
                .lines()
                .find(|l| l.split(' ').nth(1) == Some("timings"))
                .unwrap_or_else(|| panic!("no timings line in {log}"));
            serde_json::from_str(line.split(' ').nth(2).unwrap()).expect("timings JSON")
        })
        .collect();
    (stats.remote_installed, stats.probes, timings)
}

#[test]
fn a_held_probe_learns_of_the_end_in_one_request() {
    // Each job of this small churn ends well within 30 s: one probe each.
    let (installed, probes, timings) = churn_with(30.0);
    assert!(installed > 0);
    assert_eq!(probes, installed, "one held probe per remote job");
    assert_eq!(timings.len() as u64, installed);
    for t in &timings {
        let marks = [
            t.received_us,
            t.admitted_us,
            t.started_us,
            t.prepared_us,
            t.compacted_us,
            t.persisted_us,
            t.ended_us,
            t.compaction_us,
        ];
        assert!(marks.iter().all(Option::is_some), "{t:?}");
        let child = [t.spawned_us, t.child_main_us, t.reaped_us];
        assert_eq!(child.iter().all(Option::is_some), multi_process(), "{t:?}");
        // A delivery seen before the child was reaped (a child that exits
        // at once may be reaped first), or as soon as an in-process run
        // returned: the hoster's probe was answered from the delivery on.
        let order = [t.persisted_us, t.delivered_us, t.reaped_us, t.ended_us];
        let seen: Vec<u64> = order.iter().flatten().copied().collect();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
        if !multi_process() {
            assert!(t.delivered_us.is_some(), "{t:?}");
        }
        // The marks follow the attempt's path, in order (the spawner's
        // answer and the child's first marks race, so `spawned_us` is left
        // out).
        let path = [
            t.received_us,
            t.admitted_us,
            t.started_us,
            t.prepared_us,
            t.compacted_us,
            t.persisted_us,
            t.ended_us,
        ];
        let seen: Vec<u64> = path.iter().flatten().copied().collect();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
    }
    let delivered = timings.iter().filter(|t| t.delivered_us.is_some()).count();
    assert!(
        delivered > 0,
        "results are answered from their delivery, before their attempt ends"
    );

    // Without the wait, the hoster paces its probes: more than one per job.
    let (installed, probes, _) = churn_with(0.0);
    assert!(installed > 0);
    assert!(
        probes > installed,
        "paced probing: {probes} probes for {installed} jobs"
    );
}
