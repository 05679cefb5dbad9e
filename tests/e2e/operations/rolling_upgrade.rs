//! A rolling upgrade under load: three workers serve a hoster that keeps
//! writing; each worker in turn is drained (one by `POST /drain`, one by
//! SIGUSR1, one by SIGTERM, as `systemctl stop` does), exits by itself and
//! is started again on the same address and root. No write fails, the data
//! equals the model, no accepted attempt is lost (every one is installed or
//! counted as a local fallback, and none ends as "not found", "failed" or
//! "cancelled"), and the hoster's remote share stays above 80%.

use super::worker_at::{log_of, post_drain, start_worker_at};
use crate::harness::*;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use nix::sys::signal::Signal;
use rocksdb::ColumnFamilyDescriptor;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How each worker in turn is drained.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Request,
    Usr1,
    Term,
}

fn begin_drain(worker: &LocalWorker, how: Trigger) {
    match how {
        Trigger::Request => {
            let (code, answer) = post_drain(worker, &[]);
            assert_eq!(code, 200, "{answer}");
        }
        Trigger::Usr1 => worker.signal(Signal::SIGUSR1).expect("SIGUSR1 sent"),
        Trigger::Term => worker.signal(Signal::SIGTERM).expect("SIGTERM sent"),
    }
}

fn accepted(worker: &LocalWorker) -> u64 {
    worker_stat(worker)["counters"]["accepted"]
        .as_u64()
        .expect("accepted counter")
}

/// Waits until the hoster has scheduled `more` jobs beyond `since`.
fn until_scheduled(farm: &farm::hoster::FarmService, since: u64, more: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while farm.stats().scheduled < since + more {
        assert!(Instant::now() < deadline, "the hoster scheduled no jobs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_workers_drained_and_restarted_in_turn_lose_no_attempt() {
    let d = dirs("db");
    let dir = d.tmp.path();
    let names = ["w0", "w1", "w2"];
    let mut workers: Vec<LocalWorker> = names
        .iter()
        .map(|n| start_worker_at(dir, n, "127.0.0.1:0", &[]))
        .collect();
    let urls: Vec<String> = workers.iter().map(LocalWorker::base_url).collect();
    let params = params(
        &d.root,
        &urls,
        json!({"worker_backoff": 1, "http_max_retry": 3}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let writing = AtomicBool::new(true);

    let model = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut model = Model::default();
            let cf = hoster.db.cf_handle("default").expect("default cf");
            let mut seed = 900;
            while writing.load(Ordering::Acquire) {
                let spec = WorkloadSpec {
                    ops: 20_000,
                    key_space: 30_000,
                    seed,
                    ..WorkloadSpec::default()
                };
                model.write(&hoster.db, cf, &spec).expect("no write fails");
                seed += 1;
            }
            model
        });
        let triggers = [Trigger::Request, Trigger::Usr1, Trigger::Term];
        for (i, how) in triggers.into_iter().enumerate() {
            until_scheduled(&hoster.farm, hoster.farm.stats().scheduled, 6);
            // Drained while it runs an attempt of the hoster's.
            let deadline = Instant::now() + Duration::from_secs(60);
            while worker_stat(&workers[i])["running"].as_u64() == Some(0) {
                assert!(Instant::now() < deadline, "{} ran nothing", names[i]);
                std::thread::sleep(Duration::from_millis(2));
            }
            let addr = workers[i].addr.clone();
            begin_drain(&workers[i], how);
            let status = workers[i].wait_exit(Duration::from_secs(120));
            assert!(
                status.is_some_and(|s| s.success()),
                "{} drained by {how:?} exits by itself: {status:?}",
                names[i]
            );
            // The upgrade: a new process on the same address and root.
            workers[i] = start_worker_at(dir, names[i], &addr, &[]);
            assert_eq!(workers[i].addr, addr);
            let restarted = &workers[i];
            let deadline = Instant::now() + Duration::from_secs(60);
            while accepted(restarted) == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the restarted {} got no job",
                    names[i]
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        until_scheduled(&hoster.farm, hoster.farm.stats().scheduled, 3);
        writing.store(false, Ordering::Release);
        writer.join().expect("the writer ran")
    });
    hoster.wait_for_compactions(&["default"]);
    let cf = hoster.db.cf_handle("default").unwrap();
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));

    let stats = hoster.farm.stats();
    let local = stats.local_total();
    let share = stats.remote_installed as f64 / (stats.remote_installed + local) as f64;
    println!(
        "rolling upgrade: scheduled {}, installed remotely {}, local fallbacks {} {:?}, remote share {:.3}",
        stats.scheduled, stats.remote_installed, local, stats.fallbacks, share
    );
    for lost in ["not_found", "remote_failed", "cancelled", "verify_failed"] {
        assert_eq!(stats.fallbacks[lost], 0, "{lost}: {stats:?}");
    }
    // Every attempt a worker accepted was installed, or is one of the
    // counted fallbacks after acceptance (a probe that timed out).
    assert!(
        stats.scheduled <= stats.remote_installed + stats.fallbacks["timeout"],
        "{stats:?}"
    );
    assert!(share > 0.8, "remote share {share:.3}: {stats:?}");
    // What each drain found to finish and hand over when it began.
    let mut in_flight = 0;
    for name in names {
        let log = std::fs::read_to_string(log_of(dir, name)).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains("draining: waiting for the accepted attempts"))
            .unwrap_or_else(|| panic!("{name}: {log}"));
        let field = |f: &str| -> u64 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(f))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{f} in {line}"))
        };
        let (attempts, uncollected) = (field("attempts="), field("uncollected="));
        println!("{name}: drain began with {attempts} attempts to finish, {uncollected} results to hand over");
        in_flight += attempts + uncollected;
        assert!(log.contains("drain begun"), "{name}: {log}");
        assert!(log.contains("drained"), "{name}: {log}");
        assert!(
            !log.contains("SHUTDOWN_GRACE passed"),
            "{name} cancelled nothing: {log}"
        );
    }
    assert!(in_flight > 0, "the drains met attempts under way");
}
