//! `TERMINATION_CHECK_URL`: a local HTTP server stands in for a cloud's
//! spot-termination metadata. It answers 404 while the worker serves a
//! writing hoster, then starts answering 200 mid-run: the worker drains
//! (its accepted attempts are installed) and exits by itself; the hoster
//! goes on compacting locally, and its data equals the model.

use super::worker_at::{log_of, start_worker_at};
use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The stand-in metadata server: 404 until `terminating`, then 200.
struct Metadata {
    url: String,
    terminating: Arc<AtomicBool>,
    /// Requests answered 404, and 200.
    not_yet: Arc<AtomicU64>,
    notices: Arc<AtomicU64>,
}

impl Metadata {
    fn start() -> Metadata {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/latest/meta-data/spot/instance-action",
            listener.local_addr().unwrap()
        );
        let terminating = Arc::new(AtomicBool::new(false));
        let (not_yet, notices) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (t, n, y) = (terminating.clone(), not_yet.clone(), notices.clone());
        // Ends with the test process; it holds only its listener.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let answer = if t.load(Ordering::Acquire) {
                    y.fetch_add(1, Ordering::AcqRel);
                    "HTTP/1.1 200 OK\r\ncontent-length: 49\r\nconnection: close\r\n\r\n{\"action\":\"terminate\",\"time\":\"2026-12-02T04:00Z\"}"
                } else {
                    n.fetch_add(1, Ordering::AcqRel);
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        Metadata {
            url,
            terminating,
            not_yet,
            notices,
        }
    }
}

#[test]
fn a_termination_notice_mid_run_drains_the_worker() {
    let d = dirs("db");
    let dir = d.tmp.path();
    let metadata = Metadata::start();
    let mut worker = start_worker_at(
        dir,
        "worker",
        "127.0.0.1:0",
        &[
            ("TERMINATION_CHECK_URL", metadata.url.clone()),
            ("TERMINATION_CHECK_INTERVAL", "200ms".into()),
        ],
    );
    let params = params(&d.root, &[worker.base_url()], json!({}));
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let mut model = Model::default();
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut seed = 500;
    let mut write = |model: &mut Model| {
        let spec = WorkloadSpec {
            ops: 20_000,
            key_space: 30_000,
            seed,
            ..WorkloadSpec::default()
        };
        seed += 1;
        model.write(&hoster.db, cf, &spec).expect("no write fails");
    };
    while hoster.farm.stats().remote_installed < 3 {
        write(&mut model);
    }
    assert!(metadata.not_yet.load(Ordering::Acquire) >= 2, "polled");
    assert_eq!(worker_stat(&worker)["draining"], false);

    // The notice comes mid-run.
    metadata.terminating.store(true, Ordering::Release);
    let status = std::thread::scope(|s| {
        let exited = s.spawn(|| worker.wait_exit(Duration::from_secs(60)));
        for _ in 0..3 {
            write(&mut model);
        }
        exited.join().unwrap()
    });
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker drained and exited by itself: {status:?}"
    );
    assert!(metadata.notices.load(Ordering::Acquire) >= 1);
    hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    hoster.wait_for_compactions(&["default"]);
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
    let stats = hoster.farm.stats();
    for lost in ["not_found", "remote_failed", "cancelled", "verify_failed"] {
        assert_eq!(stats.fallbacks[lost], 0, "{lost}: {stats:?}");
    }
    assert!(
        stats.local_total() > 0,
        "compacted locally after the drain: {stats:?}"
    );
    let log = std::fs::read_to_string(log_of(dir, "worker")).unwrap();
    assert!(log.contains("termination notice"), "{log}");
    assert!(log.contains("cause=TERMINATION_CHECK_URL"), "{log}");
    assert!(log.contains("drained"), "{log}");
}
