//! The worker's own log: JSON lines with `LOG_FORMAT=json`, one span per
//! attempt carrying the attempt's name, and `RUST_LOG` as the filter.

use crate::harness::*;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Runs a small workload through a worker logging to a file; returns the
/// log and the names of the attempts the worker ran.
fn run_and_read_log(dir: &Path, instance: &str, env: &[(&str, String)]) -> (String, Vec<String>) {
    let log_path = dir.join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut all = vec![
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("HOSTER_ROOTS", dir.join("data").display().to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
    ];
    all.extend(env.iter().cloned());
    let mut worker =
        LocalWorker::start_logging_to(worker_bin(), &all, Stdio::from(log)).expect("worker starts");
    let root = dir.join("data");
    let params = params(
        &root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": instance}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&root.join("db"), small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 20_000,
        key_space: 8_000,
        seed: 3,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);
    let names: Vec<String> = worker_stat(&worker)["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.is_empty());
    assert!(worker.stop(Duration::from_secs(20)));
    (std::fs::read_to_string(&log_path).unwrap(), names)
}

#[test]
fn json_lines_with_one_span_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (log, names) = run_and_read_log(
        dir.path(),
        "jsonlog",
        &[("LOG_FORMAT", "json".into()), ("RUST_LOG", "info".into())],
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    // Every attempt's end is logged inside its span, named by the attempt.
    let mut finished: Vec<String> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "finished")
        .map(|l| {
            assert_eq!(l["span"]["name"], "attempt", "{l}");
            assert!(l["fields"]["outcome"].is_string(), "{l}");
            l["span"]["attempt"]
                .as_str()
                .expect("span field attempt")
                .to_owned()
        })
        .collect();
    finished.sort();
    let mut names = names;
    names.sort();
    assert_eq!(finished, names);
}

#[test]
fn rust_log_filters_and_a_bad_log_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = run_and_read_log(dir.path(), "quietlog", &[("RUST_LOG", "warn".into())]);
    assert!(!log.contains("finished"), "info events filtered out: {log}");
    assert!(!log.contains("worker started"), "{log}");

    let bad = std::process::Command::new(worker_bin())
        .args(["--listen", "127.0.0.1:0"])
        .env("LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("LOG_FORMAT=\"yaml\": expected text or json"),
        "{err}"
    );
}
