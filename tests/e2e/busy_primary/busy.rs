//! A busy primary: the hoster replaces its MANIFEST at nearly every flush
//! and compaction (`max_manifest_file_size` of 4 KiB, no space
//! amplification allowed) and deletes obsolete SSTs as soon as compactions
//! install, while four writers keep several compactions running at once.
//! Every remote attempt opens the live DB as a secondary and races these
//! replacements; the worker retries an open that lost the race, so nearly
//! every compaction still runs remotely.
//!
//! Evidence: the MANIFEST was replaced many times during the run (CURRENT
//! polled); at least 95% of compactions ran remotely, counted on both sides,
//! and every local one is listed with its reason; the worker's open retries
//! agree on `/stat` and `/metrics`; after reopening, live SSTs carry the
//! worker's identity and the data equals the model.

use super::scrape::metric_sum;
use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The column families the writers fill, one each.
const FAMILIES: [&str; 4] = ["default", "second", "third", "fourth"];

/// At least this share of compactions must run remotely.
const REMOTE_SHARE: f64 = 0.95;

/// A primary that replaces its MANIFEST at almost every edit and has many
/// small flushes and compactions.
fn busy_options() -> Options {
    let mut o = small_options()
        .get_options_from_string("max_manifest_file_size=4096;max_manifest_space_amp_pct=0")
        .expect("manifest options parse");
    o.set_write_buffer_size(32 << 10);
    o.set_target_file_size_base(32 << 10);
    o.set_max_bytes_for_level_base(128 << 10);
    o.set_max_subcompactions(4);
    o
}

#[test]
fn a_busy_primary_replacing_its_manifest_still_compacts_remotely() {
    let d = dirs("busy");
    // Admissions beyond the default 4 at once: the four writers' jobs
    // arrive together, and a job refused as busy is not what this tests.
    let worker = start_worker(
        d.tmp.path(),
        &[
            ("MAX_PARALLEL_COMPACTIONS", "8".into()),
            ("MAX_ADMISSIONS", "16".into()),
        ],
    );
    let identity = worker_identity(&worker);
    let params = params(&d.root, &[worker.base_url()], serde_json::json!({}));
    let cfs = || {
        FAMILIES
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, busy_options()))
            .collect::<Vec<_>>()
    };
    let hoster = Hoster::open(&d.db, busy_options(), cfs(), &params);
    assert_eq!(
        farm::rocks::options::max_background_jobs(&hoster.opts),
        8,
        "the farm's tuning sets max_background_jobs"
    );

    let writing = AtomicBool::new(true);
    let (models, manifests) = std::thread::scope(|s| {
        let watcher = s.spawn(|| manifests_seen(&d.db, &writing));
        let writers: Vec<_> = FAMILIES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let hoster = &hoster;
                s.spawn(move || write_family(hoster, name, i as u64))
            })
            .collect();
        let models: Vec<Model> = writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect();
        hoster.wait_for_compactions(&FAMILIES);
        writing.store(false, Ordering::Release);
        (models, watcher.join().expect("watcher"))
    });
    let stats = hoster.farm.stats();
    let stat = worker_stat(&worker);
    let counters = &stat["counters"];
    let remote = stats.remote_installed;
    let local = stats.local_total();
    let share = remote as f64 / (remote + local).max(1) as f64;
    let retries = &counters["open_retries"];
    let retried: u64 = retries
        .as_object()
        .unwrap_or_else(|| panic!("/stat counts open retries: {counters}"))
        .values()
        .map(|n| n.as_u64().expect("a count"))
        .sum();
    let unresolved = counters["open_races_unresolved"]
        .as_u64()
        .expect("/stat counts unresolved races");
    let fallbacks: Vec<_> = stats.fallbacks.iter().filter(|(_, n)| **n > 0).collect();
    println!(
        "busy primary ({}): MANIFEST replaced {} times; {remote} remote, {local} local ({:.1}% remote); fallbacks {fallbacks:?}; last errors {:?}; open retries {retried} {retries}, unresolved {unresolved}",
        if multi_process() { "MULTI_PROCESS" } else { "in-process" },
        manifests.len().saturating_sub(1),
        share * 100.0,
        stats.last_errors,
    );
    assert!(
        manifests.len() > 50,
        "the primary replaced its MANIFEST often: {} seen",
        manifests.len()
    );
    assert!(remote > 20, "compactions ran remotely: {stats:?}");
    assert_eq!(
        counters["succeeded"].as_u64(),
        Some(remote),
        "both sides count the same remote compactions: {counters}"
    );
    assert_eq!(
        metric_sum(&worker, "farm_worker_open_retries_total"),
        retried as f64,
        "/metrics counts the retries /stat counts"
    );
    assert_eq!(
        metric_sum(&worker, "farm_worker_open_races_unresolved_total"),
        unresolved as f64
    );
    assert!(
        share >= REMOTE_SHARE,
        "{:.1}% of compactions ran remotely (fallbacks {fallbacks:?}, last errors {:?})",
        share * 100.0,
        stats.last_errors
    );

    // After reopening: the data equals the model, and every live SST was
    // written by the worker, but for the outputs of the few compactions
    // that fell back (a local compaction's output may still be live).
    let Hoster { db, opts, farm, .. } = hoster;
    drop(db);
    drop(farm);
    let db = DB::open_cf_descriptors(&opts, &d.db, cfs()).expect("db reopens");
    for (name, model) in FAMILIES.iter().zip(&models) {
        let cf = db.cf_handle(name).expect("cf");
        assert_eq!(model.check(&db, cf), Ok(model.len() as u64), "{name}");
    }
    let ssts = live_ssts(&db, &d.db);
    assert!(!ssts.is_empty());
    let foreign: Vec<_> = ssts
        .iter()
        .filter(|s| s.props.db_host_id != identity)
        .map(|s| (s.cf.as_str(), s.level, s.props.db_host_id.as_str()))
        .collect();
    assert!(
        foreign.is_empty() || (local > 0 && foreign.len() * 10 <= ssts.len()),
        "live SSTs not written by the worker ({local} local compactions, {} live SSTs): {foreign:?}",
        ssts.len()
    );
}

/// One writer: overwrites, point and range deletes into family `name`,
/// then a full manual compaction of it, concurrent with the other's.
fn write_family(hoster: &Hoster, name: &str, seed: u64) -> Model {
    let cf = hoster.db.cf_handle(name).expect("cf");
    let spec = WorkloadSpec {
        ops: 100_000,
        key_space: 20_000,
        value_size: 100,
        delete_every: 6,
        range_delete_every: 3_000,
        seed: 40 + seed,
        compressible: 0.5,
    };
    let mut model = Model::default();
    let w = model.write(&hoster.db, cf, &spec).expect("no write fails");
    assert!(w.deletes > 0 && w.range_deletes > 0);
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    model
}

/// The MANIFEST names CURRENT held, polled until `writing` clears.
fn manifests_seen(db: &Path, writing: &AtomicBool) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    while writing.load(Ordering::Acquire) {
        if let Ok(name) = std::fs::read_to_string(db.join("CURRENT")) {
            seen.insert(name.trim().to_owned());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}
