//! Twelve fast jobs with a 50 MiB `code_version` once took a worker from
//! 284 MB to 900 MB of memory and wrote 501 MB of `job.json`: a finished
//! attempt kept its whole job, and no field had a length limit. Now every
//! string field is held to a documented length at parse time, so 50 jobs
//! with oversized fields are refused (400, naming the field and its bound),
//! nothing is written for them, and the worker's memory stays where it was.

use super::worker::{metric, start, wait_done};
use crate::admission::capture;
use crate::harness::*;
use farm::protocol::job::{Job, PluginVersion};

const BIG: usize = 2 << 20;

/// The `i`-th oversized job, and the field that is too long.
fn oversized(c: &farm::workload::capture::Captured, i: usize) -> (Job, &'static str) {
    let mut job = c.job("big", i as u32);
    let big = "x".repeat(BIG);
    let field = match i % 7 {
        0 => {
            job.code_version = big;
            "code_version"
        }
        1 => {
            job.cf_name = big;
            "cf_name"
        }
        2 => {
            job.instance_name = big;
            "instance_name"
        }
        3 => {
            job.output_dir = format!("{}/{big}", job.output_dir);
            "output_dir"
        }
        4 => {
            job.nfs_mnt_opt = big;
            "nfs_mnt_opt"
        }
        5 => {
            job.plugins = vec![
                PluginVersion {
                    name: "p".into(),
                    version: 1
                };
                BIG / 32
            ];
            "plugins"
        }
        _ => {
            job.hoster_root = big;
            "hoster_root"
        }
    };
    (job, field)
}

#[test]
fn fifty_oversized_jobs_are_refused_and_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[("DEL_WORKER_TEMP_DB", "false".into())]);
    // Warm up: one normal job run, then two oversized jobs of each kind
    // refused (the allocator's per-thread arenas and the parser's buffers
    // reach their working size once per server thread that reads a body,
    // and one round did not always reach every thread under load; what
    // follows must not grow them).
    let first_rss = metric(&worker, "process_resident_memory_bytes");
    let normal = c.job("normal", 0);
    assert_eq!(submit_job(&worker, &normal).0, 200);
    wait_done(&worker, &normal);
    for i in 0..14 {
        assert_eq!(submit_job(&worker, &oversized(&c, i).0).0, 400);
    }
    let start_rss = metric(&worker, "process_resident_memory_bytes");

    for i in 0..50 {
        let (job, field) = oversized(&c, i);
        let (code, answer) = submit_job(&worker, &job);
        assert_eq!(code, 400, "{field}: {answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(why.starts_with(field), "{field}: {why}");
        assert!(why.contains("limit is"), "{why}");
    }
    let end_rss = metric(&worker, "process_resident_memory_bytes");
    println!(
        "worker RSS: {:.1} MiB at start, {:.1} MiB after warm-up, {:.1} MiB after 50 oversized jobs ({:+.1}%)",
        first_rss / 1048576.0,
        start_rss / 1048576.0,
        end_rss / 1048576.0,
        (end_rss / start_rss - 1.0) * 100.0
    );
    assert!(end_rss <= start_rss * 1.10, "{start_rss} -> {end_rss}");
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["accepted"], 1, "{stat}");
    assert_eq!(stat["counters"]["rejected"]["malformed"], 64, "{stat}");
    // Only the normal job's job.json was written, and it is small.
    let written = files_named(&dir.path().join("worker"), "job.json");
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(std::fs::metadata(&written[0]).unwrap().len() < 1 << 20);
    assert_eq!(
        metric(&worker, "farm_worker_finished_retained"),
        1.0,
        "the normal attempt is kept for probing"
    );
}
