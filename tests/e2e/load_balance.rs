//! Spreading jobs over workers: `kWeight` splits by weight, deterministically;
//! estimates learned from finished compactions reach the workers.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;

#[test]
fn weights_one_and_three_split_a_quarter_and_three_quarters() {
    let d = dirs("db");
    let roots = [("HOSTER_ROOTS", d.root.display().to_string())];
    let light = start_worker(&d.tmp.path().join("light"), &roots);
    let heavy = start_worker(&d.tmp.path().join("heavy"), &roots);
    let params = params(
        &d.root,
        &[],
        serde_json::json!({
            "load_balance": "kWeight",
            "http_workers": [
                {"url": light.base_url(), "weight": 1},
                "# a commented-out worker is skipped",
                {"url": heavy.base_url(), "weight": 3},
            ],
        }),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let mut model = Model::default();
    for seed in 0..20 {
        if hoster.farm.stats().scheduled >= 40 {
            break;
        }
        let spec = WorkloadSpec {
            ops: 40_000,
            key_space: 20_000,
            seed,
            ..WorkloadSpec::default()
        };
        hoster.churn(&mut model, &spec);
    }
    let accepted = |w: &farm::worker::local::LocalWorker| {
        worker_stat(w)["counters"]["accepted"].as_u64().unwrap()
    };
    let (l, h) = (accepted(&light), accepted(&heavy));
    let total = l + h;
    println!("light {l}, heavy {h}, hoster {:?}", hoster.farm.stats());
    assert!(total >= 40, "at least 40 jobs: {total}");
    assert_eq!(
        hoster.farm.stats().local_total(),
        0,
        "every job ran remotely"
    );
    let share = l as f64 / total as f64;
    assert!(
        (0.15..=0.35).contains(&share),
        "light worker's share {share} is 25% ± 10%"
    );
    // Smooth weighted round robin is exact up to one turn.
    assert!(
        (l as i64 - (total / 4) as i64).abs() <= 1,
        "light {l} of {total}"
    );

    // Once compactions were measured, jobs carry an estimate.
    let estimates: Vec<u64> = ["light", "heavy"]
        .iter()
        .flat_map(|w| files_named(&d.tmp.path().join(w).join("worker"), "job.json"))
        .map(|f| {
            let job: serde_json::Value =
                serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
            job["estimate_time_us"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(estimates.len() as u64, total);
    assert!(
        estimates[0..].iter().any(|e| *e > 0),
        "learned estimates were sent: {estimates:?}"
    );
}
