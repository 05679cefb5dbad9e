//! A worker reachable beyond loopback runs jobs for whoever reaches it, so
//! it needs `WORKER_AUTH_TOKEN`, unless the operator opts out loudly.

use crate::harness::*;
use crate::sandbox::Sandbox;
use farm::worker::local::LocalWorker;
use std::process::Stdio;

/// A worker's settings: its own root below `dir` (named after `extra`, so
/// no worker waits for a killed one's root), the test's hoster roots.
fn env(dir: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let names = std::iter::once("worker").chain(extra.iter().map(|e| e.0));
    let root = names.collect::<Vec<_>>().join("-");
    let mut env = vec![
        ("WORKER_DB_ROOT", dir.join(root).display().to_string()),
        ("HOSTER_ROOTS", test_hoster_roots(dir)),
        ("RUST_LOG", "warn".to_string()),
    ];
    for (k, v) in extra {
        let k: &'static str = match *k {
            "WORKER_AUTH_TOKEN" => "WORKER_AUTH_TOKEN",
            "WORKER_ALLOW_NO_TOKEN" => "WORKER_ALLOW_NO_TOKEN",
            other => panic!("unexpected setting {other}"),
        };
        env.push((k, v.to_string()));
    }
    env
}

#[test]
fn beyond_loopback_a_token_is_required_unless_the_operator_opts_out() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new().share(dir.path());
    let worker = sandbox.command(
        worker_bin(),
        &["--listen", "0.0.0.0:0"],
        &env(dir.path(), &[]),
    );
    let out = { worker }
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without a token: {stderr}");
    assert!(
        stderr.contains("WORKER_AUTH_TOKEN") && stderr.contains("WORKER_ALLOW_NO_TOKEN"),
        "{stderr}"
    );

    let log = dir.path().join("opt-out.log");
    let cmd = sandbox.command(
        worker_bin(),
        &["--listen", "0.0.0.0:0"],
        &env(dir.path(), &[("WORKER_ALLOW_NO_TOKEN", "true")]),
    );
    let worker = LocalWorker::start_command(cmd, std::fs::File::create(&log).unwrap().into())
        .expect("the operator opted out");
    eventually("the opt-out is logged", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("WORKER_ALLOW_NO_TOKEN=true"))
    });
    drop(worker);

    let cmd = sandbox.command(
        worker_bin(),
        &["--listen", "0.0.0.0:0"],
        &env(dir.path(), &[("WORKER_AUTH_TOKEN", "s3cret")]),
    );
    let log = dir.path().join("token.log");
    let mut worker = LocalWorker::start_command(cmd, std::fs::File::create(&log).unwrap().into())
        .expect("a token suffices");
    let port = worker.addr.rsplit(':').next().unwrap().to_owned();
    let health = ureq::get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .map(|r| r.into_json::<serde_json::Value>().expect("JSON answer"));
    let health = health.unwrap_or_else(|e| {
        // Whether the worker is still there, and what it said by then.
        let exited = worker.wait_exit(std::time::Duration::from_secs(3));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "GET /health of the worker with a token: {e}; its exit: {exited:?}; its log:\n{text}"
        )
    });
    assert_eq!(health["status"], "OK");
}
