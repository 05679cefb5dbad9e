//! MULTI_PROCESS spare children (`CHILD_SPARES`): an attempt runs in a
//! child started before it, which then carries the attempt's marker and
//! writes the attempt's `LOG.child`; a spare that died waiting is replaced
//! by a fresh child; a stopping worker ends its spares; with
//! `CHILD_SPARES=0` no child waits.

use crate::child_faults::{attempt_processes, fixture_plugin, marked_processes};
use crate::harness::*;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Pids of the spare children of the worker `worker_pid` still waiting:
/// their marker is `spare-<n>@<worker pid>`, padded with spaces.
fn spares_of(worker_pid: u32) -> Vec<i32> {
    let suffix = format!("@{worker_pid}");
    marked_processes(|m| m.starts_with("spare-") && m.trim_end().ends_with(&suffix))
}

/// The one spare child of the worker `worker_pid`, once it waits; it
/// waits in the idle class (its start took no core from anything).
fn the_waiting_spare(worker_pid: u32) -> i32 {
    let mut waiting = Vec::new();
    eventually("a spare child waits", || {
        waiting = spares_of(worker_pid);
        waiting.len() == 1
    });
    assert_eq!(policy(waiting[0]), Some(libc::SCHED_IDLE));
    waiting[0]
}

/// A MULTI_PROCESS worker below `dir` with `extra`, its log in `log`.
fn worker(dir: &Path, log: &Path, extra: &[(&str, String)]) -> LocalWorker {
    let mut env = vec![("MULTI_PROCESS", "true".to_string())];
    env.extend(extra.iter().cloned());
    let file = std::fs::File::create(log).expect("a log file in the test's directory");
    start_worker_logging_to(dir, &env, Stdio::from(file))
}

/// Writes enough to `instance`'s DB for a few compactions on `worker`;
/// returns the attempts' LOGs, all of which succeeded.
fn compact_on(d: &Dirs, worker: &LocalWorker, instance: &str) -> Vec<String> {
    let hoster = Hoster::small(
        d,
        &[worker.base_url()],
        serde_json::json!({"instance_name": instance}),
    );
    let spec = WorkloadSpec {
        ops: 20_000,
        key_space: 8_000,
        seed: 7,
        ..WorkloadSpec::default()
    };
    let mut model = Model::default();
    hoster.churn(&mut model, &spec);
    let stats = hoster.farm.stats();
    assert!(stats.remote_installed > 0, "{stats:?}");
    let counters = worker_stat(worker)["counters"].clone();
    assert_eq!(failed_attempts(&worker_stat(worker)), 0, "{counters}");
    eventually("every attempt reaped", || {
        worker_stat(worker)["running"].as_u64() == Some(0)
    });
    attempt_logs(&d.tmp.path().join("worker").join(instance))
}

/// The scheduling policy of process `pid` (`/proc/<pid>/stat`, field 41).
fn policy(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(41 - 3)?.parse().ok()
}

/// The pid an attempt LOG says its child had.
fn child_pid(log: &str) -> i32 {
    let rest = log.split("child pid=").nth(1).expect("a child line");
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn an_attempt_runs_in_the_spare_started_before_it() {
    let d = dirs("db");
    let log = d.tmp.path().join("worker.log");
    // Each child sleeps a second in a plugin's constructor: long enough to
    // be seen running.
    let plugin = fixture_plugin();
    let mut w = worker(
        d.tmp.path(),
        &log,
        &[
            ("PLUGINS", plugin.display().to_string()),
            ("FIXTURE_BEHAVIOUR", "sleep1".into()),
        ],
    );
    let pid = w.pid();
    let spare = the_waiting_spare(pid);

    let done = std::sync::atomic::AtomicBool::new(false);
    let (logs, seen) = std::thread::scope(|s| {
        let watch = s.spawn(|| {
            // Each process seen under an attempt's marker, and its class.
            let mut seen = std::collections::BTreeMap::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for p in attempt_processes("spares") {
                    if let Some(class) = policy(p) {
                        seen.insert(p, class);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        let logs = compact_on(&d, &w, "spares");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (logs, watch.join().unwrap())
    });
    assert!(!logs.is_empty());
    for l in &logs {
        assert!(l.contains(" (a spare, started "), "{l}");
    }
    // The first attempt ran in the very process that waited, and while it
    // ran that process carried the attempt's marker.
    assert!(
        logs.iter().any(|l| child_pid(l) == spare),
        "one attempt ran in spare {}",
        spare
    );
    assert!(
        seen.contains_key(&spare),
        "spare {} seen under the attempt's marker: {seen:?}",
        spare
    );
    // Running an attempt, a child is in the normal class again.
    assert!(
        seen.values().all(|c| *c == libc::SCHED_OTHER),
        "classes of the attempts' children: {seen:?}"
    );
    // Every attempt's child wrote its LOG.child there.
    let child_logs = files_named(&d.tmp.path().join("worker").join("spares"), "LOG.child");
    assert_eq!(child_logs.len(), logs.len());

    // One spare waits for the next attempt; stopping the worker ends it.
    eventually("a new spare waits", || spares_of(pid).len() == 1);
    assert!(w.stop(Duration::from_secs(30)), "the worker stops");
    eventually("no spare outlives the worker", || spares_of(pid).is_empty());
}

#[test]
fn a_spare_that_died_waiting_is_replaced_by_a_fresh_child() {
    let d = dirs("db");
    let log = d.tmp.path().join("worker.log");
    let mut w = worker(d.tmp.path(), &log, &[]);
    let pid = w.pid();
    let spare = the_waiting_spare(pid);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spare),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let logs = compact_on(&d, &w, "dead");
    let fresh = logs.iter().filter(|l| !l.contains("(a spare")).count();
    assert_eq!(fresh, 1, "one attempt started its own child: {logs:?}");
    assert!(logs.iter().all(|l| child_pid(l) != spare));
    assert!(w.stop(Duration::from_secs(30)));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("a spare child exited while waiting"),
        "the worker says so: {text}"
    );
    eventually("no spare outlives the worker", || spares_of(pid).is_empty());
}

#[test]
fn with_no_spares_every_attempt_starts_its_own_child() {
    let d = dirs("db");
    let log = d.tmp.path().join("worker.log");
    let mut w = worker(d.tmp.path(), &log, &[("CHILD_SPARES", "0".into())]);
    let logs = compact_on(&d, &w, "cold");
    assert!(!logs.is_empty());
    for l in &logs {
        assert!(l.contains("spawned in ") && !l.contains("(a spare"), "{l}");
    }
    assert!(spares_of(w.pid()).is_empty());
    assert!(w.stop(Duration::from_secs(30)));
}
