//! MULTI_PROCESS fault isolation: a plugin that crashes, exits, hangs,
//! ignores SIGTERM or leaves a `setsid` grandchild behind costs one attempt
//! each, never the worker or the data (memory and orphans past a killed
//! worker: `child_cgroups`).
//!
//! The faults come from a real preloaded plugin (`fixtures/misbehave.c`,
//! compiled here), whose constructor misbehaves as `FIXTURE_BEHAVIOUR` says.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn fixture_plugin() -> &'static PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let src =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/fixtures/misbehave.c");
        let out = std::env::temp_dir().join(format!("farm-misbehave-{}.so", std::process::id()));
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("cc runs");
        assert!(status.success(), "fixture plugin compiles");
        out
    })
}

/// Processes whose environment carries an attempt marker of `instance`
/// (`DCOMPACT_ATTEMPT=<attempt name>@<worker pid>`).
pub fn attempt_processes(instance: &str) -> Vec<i32> {
    let prefix = format!("{instance}/");
    marked_processes(|marker| marker.starts_with(&prefix))
}

/// Processes whose `DCOMPACT_ATTEMPT` marker `keep` accepts.
pub fn marked_processes(keep: impl Fn(&str) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc lists processes")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0).any(|kv| {
                    kv.strip_prefix(b"DCOMPACT_ATTEMPT=")
                        .is_some_and(|m| keep(&String::from_utf8_lossy(m)))
                })
            })
        })
        .collect()
}

/// Runs a workload against a worker whose children misbehave as
/// `behaviour` says; checks that every attempt ended `outcome` with a LOG
/// that mentions `error_mentions`, and that nothing of them survives.
/// Returns the attempts' LOGs.
pub fn misbehaving_child(
    behaviour: &str,
    outcome: &str,
    error_mentions: &str,
    extra: &[(&str, String)],
) -> Vec<String> {
    let d = dirs("db");
    let instance = format!("fault-{behaviour}");
    let mut env = vec![
        ("MULTI_PROCESS", "true".to_string()),
        ("PLUGINS", fixture_plugin().display().to_string()),
        ("FIXTURE_BEHAVIOUR", behaviour.to_string()),
        ("ATTEMPT_TIMEOUT_MIN", "1s".to_string()),
        ("ATTEMPT_TIMEOUT_MAX", "2s".to_string()),
        ("CANCEL_GRACE", "500ms".to_string()),
    ];
    env.extend(extra.iter().cloned());
    let worker = start_worker(d.tmp.path(), &env);
    let hoster = Hoster::small(
        &d,
        &[worker.base_url()],
        serde_json::json!({"instance_name": instance}),
    );
    let spec = WorkloadSpec {
        ops: 30_000,
        key_space: 10_000,
        seed: 41,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);

    // Every attempt ended the way the fixture made it, and was compacted
    // locally by the hoster.
    let counters = worker_stat(&worker)["counters"].clone();
    let failed = counters["failed"][outcome].as_u64().unwrap();
    assert!(
        failed > 0,
        "{behaviour}: attempts ended {outcome}: {counters}"
    );
    assert_eq!(counters["succeeded"], 0, "{behaviour}: {counters}");
    assert_eq!(
        counters["accepted"].as_u64(),
        Some(failed),
        "{behaviour}: every attempt ended {outcome}: {counters}"
    );
    let stats = hoster.farm.stats();
    assert_eq!(
        stats.fallbacks["remote_failed"], failed,
        "{behaviour}: {stats:?}"
    );
    assert_eq!(stats.remote_installed, 0);

    // The attempt's LOG names what happened.
    let logs = attempt_logs(&d.tmp.path().join("worker").join(&instance));
    assert_eq!(logs.len() as u64, failed);
    for log in &logs {
        assert!(
            log.contains(&format!("end outcome={outcome}")),
            "{behaviour}: {log}"
        );
        assert!(
            log.contains(error_mentions),
            "{behaviour}: LOG should mention {error_mentions:?}: {log}"
        );
    }

    // The worker is still up, and nothing of any attempt is left running.
    assert_eq!(
        get_json(&format!("{}/health", worker.base_url()))["status"],
        "OK"
    );
    eventually("no process of the attempts survives", || {
        attempt_processes(&instance).is_empty()
    });
    logs
}

/// The line the supervisor writes when a child outlives `CANCEL_GRACE`.
const ESCALATION: &str = "after SIGTERM (CANCEL_GRACE): SIGKILL";

#[test]
fn plugin_segfault() {
    misbehaving_child("segfault", "killed", "SIGSEGV", &[]);
}

#[test]
fn plugin_abort() {
    misbehaving_child("abort", "killed", "SIGABRT", &[]);
}

#[test]
fn plugin_exit_code() {
    misbehaving_child("exit3", "exited", "code 3", &[]);
}

/// A child that hangs but obeys SIGTERM ends at the timeout without an
/// escalation to SIGKILL.
#[test]
fn plugin_hangs_until_the_timeout() {
    let logs = misbehaving_child("hang", "timed_out", "end outcome=timed_out", &[]);
    for log in &logs {
        assert!(!log.contains(ESCALATION), "no SIGKILL was needed: {log}");
    }
}

/// Only a child that ignores SIGTERM is SIGKILLed, after `CANCEL_GRACE`.
#[test]
fn plugin_ignores_sigterm_and_is_killed_after_the_grace() {
    let logs = misbehaving_child("ignore_sigterm", "timed_out", "end outcome=timed_out", &[]);
    for log in &logs {
        assert!(log.contains(ESCALATION), "escalated to SIGKILL: {log}");
        assert!(log.contains("500 ms after SIGTERM"), "{log}");
    }
}

/// The grandchild that left the child's process group is ended with the
/// attempt (by its cgroup).
#[test]
fn plugin_leaves_a_setsid_grandchild() {
    let logs = misbehaving_child("setsid_grandchild", "exited", "code 4", &[]);
    for log in &logs {
        assert!(
            log.contains("ended 1 process(es) of the attempt that outlived the child"),
            "{log}"
        );
    }
}

/// 20 attempts of children that each take a second, with
/// MAX_PARALLEL_COMPACTIONS=2: never more than two children alive, the
/// supervisor's high-water mark is 2, and completions plus 503s are 20.
#[test]
fn twenty_attempts_two_children_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let c = crate::admission::capture(dir.path());
    let worker = start_worker(
        dir.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("PLUGINS", fixture_plugin().display().to_string()),
            ("FIXTURE_BEHAVIOUR", "sleep1".into()),
            ("MAX_PARALLEL_COMPACTIONS", "2".into()),
            ("MAX_WAITING_COMPACTIONS", "6".into()),
        ],
    );
    let base = worker.base_url();
    const N: u32 = 20;
    let barrier = std::sync::Barrier::new(N as usize);
    let codes: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|a| {
                let body = serde_json::to_vec(&c.job("adm20", a)).unwrap();
                let (barrier, url) = (&barrier, format!("{base}/dcompact"));
                s.spawn(move || {
                    barrier.wait();
                    post(&url, &body, &[]).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = codes.iter().filter(|c| **c == 200).count() as u64;
    let busy = codes.iter().filter(|c| **c == 503).count() as u64;
    assert_eq!(accepted + busy, N as u64, "{codes:?}");

    // Watch the children until every accepted attempt has ended.
    let mut most_alive = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        most_alive = most_alive.max(attempt_processes("adm20").len());
        let c = &worker_stat(&worker)["counters"];
        let ended = c["succeeded"].as_u64().unwrap()
            + c["failed"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>();
        if ended == accepted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attempts did not end: {c}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let stat = worker_stat(&worker);
    println!(
        "accepted {accepted}, busy {busy}, most children alive {most_alive}, stat {}",
        stat["counters"]
    );
    assert_eq!(
        most_alive, 2,
        "exactly two children alive at once at the most"
    );
    assert_eq!(stat["running_high_water"], 2);
    assert_eq!(
        stat["counters"]["succeeded"].as_u64().unwrap() + busy,
        N as u64
    );
    // A 503 is a full queue, or MAX_ADMISSIONS admissions in progress.
    let rejected = &stat["counters"]["rejected"];
    assert_eq!(
        rejected["busy"].as_u64().unwrap() + rejected["admissions_full"].as_u64().unwrap(),
        busy,
        "{rejected}"
    );
}

/// SIGTERM: the worker drains: it stops accepting (503 `stopping` on
/// `/dcompact`, 412 on `/health`), lets running attempts go on until
/// `SHUTDOWN_GRACE`, then cancels them and exits by itself; no child
/// outlives it.
#[test]
fn sigterm_refuses_new_work_then_cancels_children_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let c = crate::admission::capture(dir.path());
    let grace = std::time::Duration::from_secs(3);
    let mut worker = start_worker(
        dir.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("PLUGINS", fixture_plugin().display().to_string()),
            ("FIXTURE_BEHAVIOUR", "hang".into()),
            ("SHUTDOWN_GRACE", "3s".into()),
            ("CANCEL_GRACE", "300ms".into()),
        ],
    );
    let base = worker.base_url();
    for a in 0..2 {
        let body = serde_json::to_vec(&c.job("stop", a)).unwrap();
        assert_eq!(post(&format!("{base}/dcompact"), &body, &[]).0, 200);
    }
    eventually("both children run", || attempt_processes("stop").len() == 2);

    let signalled = std::time::Instant::now();
    worker.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    eventually("health says stopping", || {
        ureq::get(&format!("{base}/health"))
            .call()
            .is_err_and(|e| matches!(e, ureq::Error::Status(412, _)))
    });
    let body = serde_json::to_vec(&c.job("stop", 9)).unwrap();
    let (code, answer) = post(&format!("{base}/dcompact"), &body, &[]);
    assert_eq!(
        (code, answer["status"].as_str()),
        (503, Some("stopping")),
        "{answer}"
    );
    assert!(answer["error"].as_str().unwrap().contains("SIGTERM"));

    // Halfway through SHUTDOWN_GRACE both children still run.
    let halfway = signalled + grace / 2;
    std::thread::sleep(halfway.saturating_duration_since(std::time::Instant::now()));
    assert_eq!(
        attempt_processes("stop").len(),
        2,
        "children survive SIGTERM until SHUTDOWN_GRACE"
    );

    // One signal was enough: the worker exits by itself.
    let status = worker.wait_exit(std::time::Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker exited by itself: {status:?}"
    );
    assert!(
        signalled.elapsed() >= grace,
        "the worker waited SHUTDOWN_GRACE before cancelling"
    );
    assert!(
        attempt_processes("stop").is_empty(),
        "no child outlived the worker"
    );
    let logs = attempt_logs(&dir.path().join("worker/stop"));
    assert_eq!(logs.len(), 2);
    for log in logs {
        assert!(log.contains("end outcome=cancelled"), "{log}");
        assert!(
            !log.contains(ESCALATION),
            "the children obeyed SIGTERM: {log}"
        );
    }
}
