//! The retry itself, made certain: a captured job whose DB's `CURRENT`
//! names a MANIFEST that is not there, as it is for a moment when a primary
//! has replaced its MANIFEST and deleted the old one.
//!
//! - Left that way, every open loses (`manifest_replaced`): the attempt is
//!   run exactly `1 + max_retries` times, ends `compaction_failed`, and the
//!   retries are counted in its log, on `/stat` and on `/metrics`.
//! - Put right after the first lost open (as a primary's next `CURRENT`
//!   would), the attempt succeeds on a retry; its log shows that the retry
//!   began on an empty output directory.

use super::scrape::metric;
use crate::admission::capture;
use crate::harness::*;
use farm::protocol::job::Job;
use farm::worker::local::LocalWorker;
use farm::worker::open_retry::RetryPolicy;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What an attempt's log says when its open lost the race.
const LOST: &str = "secondary open lost a race with the primary (manifest_replaced)";

/// Points the DB's `CURRENT` at a MANIFEST that does not exist; returns
/// what it held.
fn break_current(db: &Path) -> Vec<u8> {
    let current = db.join("CURRENT");
    let held = std::fs::read(&current).expect("CURRENT readable");
    replace_current(db, b"MANIFEST-999999\n");
    held
}

/// Replaces `CURRENT` as RocksDB does: a new file renamed over it.
fn replace_current(db: &Path, contents: &[u8]) {
    let tmp = db.join("999998.dbtmp");
    std::fs::write(&tmp, contents).expect("temporary CURRENT written");
    std::fs::rename(&tmp, db.join("CURRENT")).expect("CURRENT replaced");
}

/// The attempt's log: `LOG` in-process, `LOG.child` in a child.
fn attempt_log(worker_root: &Path) -> String {
    let name = if multi_process() { "LOG.child" } else { "LOG" };
    files_named(worker_root, name)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// Submits `job` and waits for its end; returns the final probe.
/// The worker's counters once its one attempt is counted: with
/// `MULTI_PROCESS` a probe answers at the child's delivery, and the
/// attempt is counted when the child has been reaped, a moment later.
fn counters_after_one_attempt(worker: &LocalWorker) -> serde_json::Value {
    // A MULTI_PROCESS attempt is counted at its delivery, its child's open
    // retries when it is reaped: wait for both.
    eventually("the worker counted and reaped the attempt", || {
        let stat = worker_stat(worker);
        stat["counters"]["succeeded"].as_u64().unwrap_or(0) + failed_attempts(&stat) == 1
            && stat["running"] == 0
    });
    worker_stat(worker)["counters"].clone()
}

fn run_to_end(worker: &LocalWorker, job: &Job) -> serde_json::Value {
    let (code, answer) = submit_job(worker, job);
    assert_eq!(code, 200, "{answer}");
    let mut last = serde_json::Value::Null;
    eventually("the attempt ended", || {
        last = probe_job(worker, job);
        last["status"] == "done" || last["status"] == "failed"
    });
    last
}

#[test]
fn an_open_that_keeps_losing_is_retried_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    break_current(&c.root.join("db"));
    let worker = start_worker(dir.path(), &[]);
    let job = c.job("lost", 0);
    let end = run_to_end(&worker, &job);
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(end["outcome"], "compaction_failed", "{end}");
    let error = end["error"].as_str().unwrap_or_default();
    assert!(error.contains("Try again"), "{error}");

    let retries = RetryPolicy::DEFAULT.max_retries as usize;
    let log = attempt_log(&dir.path().join("worker"));
    assert_eq!(log.matches(LOST).count(), retries, "{log}");
    let counters = &counters_after_one_attempt(&worker);
    assert_eq!(
        counters["open_retries"]["manifest_replaced"].as_u64(),
        Some(retries as u64),
        "{counters}"
    );
    assert_eq!(counters["open_races_unresolved"], 1, "{counters}");
    assert_eq!(failed_attempts(&worker_stat(&worker)), 1);
    assert_eq!(
        metric(
            &worker,
            "farm_worker_open_retries_total{race=\"manifest_replaced\"}"
        ),
        Some(retries as f64)
    );
    assert_eq!(
        metric(
            &worker,
            "farm_worker_open_retries_total{race=\"file_vanished\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(&worker, "farm_worker_open_races_unresolved_total"),
        Some(1.0)
    );
    // The output directory was made, and nothing was written into it: no
    // run got past the open.
    let left: Vec<PathBuf> = std::fs::read_dir(&job.output_dir)
        .expect("the worker made the output directory")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_open_that_lost_once_succeeds_on_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let db = c.root.join("db");
    let held = break_current(&db);
    let worker = start_worker(dir.path(), &[]);
    let job = c.job("won", 0);
    let worker_root = dir.path().join("worker");
    let ended = AtomicBool::new(false);
    let end = std::thread::scope(|s| {
        // The primary's next CURRENT, right after the first lost open.
        let fixer = s.spawn(|| {
            while !ended.load(Ordering::Acquire) {
                if attempt_log(&worker_root).contains(LOST) {
                    replace_current(&db, &held);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        });
        let end = run_to_end(&worker, &job);
        ended.store(true, Ordering::Release);
        assert!(fixer.join().expect("fixer"), "the open lost once");
        end
    });
    assert_eq!(end["status"], "done", "{end}");
    let log = attempt_log(&worker_root);
    let lost = log.matches(LOST).count();
    assert!(lost >= 1, "{log}");
    assert!(
        log.contains("the output directory emptied of 0 entries"),
        "the retry began before any output existed: {log}"
    );
    let counters = &counters_after_one_attempt(&worker);
    assert_eq!(counters["succeeded"], 1, "{counters}");
    assert_eq!(
        counters["open_retries"]["manifest_replaced"].as_u64(),
        Some(lost as u64),
        "{counters}"
    );
    assert_eq!(counters["open_races_unresolved"], 0, "{counters}");
    let outputs = files_where(Path::new(&job.output_dir), &|p| {
        p.extension().is_some_and(|e| e == "sst")
    });
    assert!(!outputs.is_empty(), "the retry wrote the outputs");
}
