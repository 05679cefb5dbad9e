//! MULTI_PROCESS children in cgroups of their own: a memory limit the
//! kernel enforces (`out_of_memory`), and no process of an attempt that
//! outlives it, even when the worker itself is SIGKILLed: the next worker
//! on the same root ends what the dead one left.
//!
//! These tests set `CHILD_CGROUP=required`: on a host where the worker can
//! make no cgroup they fail at the worker's start, saying why.

use crate::child_faults::{attempt_processes, fixture_plugin, misbehaving_child};
use crate::harness::*;
use farm::worker::child::spec::ATTEMPT_MARKER;
use farm::worker::process::marked::marked;
use std::path::PathBuf;

/// A plugin whose constructor allocates and touches 8 GiB, in children
/// limited to 256 MiB: the kernel kills each inside its cgroup, and the
/// attempt's outcome says so in the API, the LOG and the metrics.
#[test]
fn plugin_allocates_past_the_memory_limit_and_the_kernel_ends_it() {
    let logs = misbehaving_child(
        "memory",
        "out_of_memory",
        "child killed by the kernel's OOM handling in its cgroup (memory limit 268435456 bytes)",
        &[
            ("CHILD_MEMORY_LIMIT", "256M".to_string()),
            ("CHILD_CGROUP", "required".to_string()),
        ],
    );
    for log in &logs {
        assert!(log.contains("cgroup /sys/fs/cgroup/"), "{log}");
    }
}

/// The same child where no cgroup is made: `RLIMIT_AS` stops the
/// allocation (malloc fails and the fixture aborts).
#[test]
fn without_a_cgroup_the_memory_limit_is_an_address_space_limit() {
    let logs = misbehaving_child(
        "memory",
        "killed",
        "SIGABRT",
        &[
            ("CHILD_MEMORY_LIMIT", "1G".to_string()),
            ("CHILD_CGROUP", "off".to_string()),
        ],
    );
    for log in &logs {
        assert!(log.contains("cgroup none (resource limits)"), "{log}");
    }
}

/// The first cgroup directory named in an attempt's LOG
/// (`...; cgroup <dir>`).
fn cgroup_of(log: &str) -> PathBuf {
    let at = log.find("; cgroup /").expect("the LOG names the cgroup") + "; cgroup ".len();
    PathBuf::from(log[at..].lines().next().unwrap().trim())
}

/// A plugin's constructor forks a grandchild that leaves the child's
/// process group (`setsid`), then both hang; the worker is SIGKILLed. The
/// children die with the worker, the grandchildren would not: the next
/// worker started on the same root ends them (and removes the dead
/// worker's cgroups) as it starts, before it serves a request.
#[test]
fn the_next_worker_on_a_root_ends_what_a_killed_worker_left() {
    let dir = tempfile::tempdir().unwrap();
    let c = crate::admission::capture(dir.path());
    let mut first = start_worker(
        dir.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("PLUGINS", fixture_plugin().display().to_string()),
            ("FIXTURE_BEHAVIOUR", "setsid_grandchild_hang".into()),
            ("CHILD_CGROUP", "required".into()),
        ],
    );
    let body = serde_json::to_vec(&c.job("orphans", 0)).unwrap();
    assert_eq!(
        post(&format!("{}/dcompact", first.base_url()), &body, &[]).0,
        200
    );
    // The attempt child and its grandchild; the describing child (which
    // loads the plugin too) and its grandchild.
    let describing = format!("describe-plugins@{}", first.pid());
    let describe_processes = || marked(ATTEMPT_MARKER, &describing);
    eventually("the attempt's child and grandchild run", || {
        attempt_processes("orphans").len() == 2
    });
    eventually("the describing child and its grandchild run", || {
        describe_processes().len() == 2
    });
    let attempt_dir = dir.path().join("worker/orphans");
    let cgroup = cgroup_of(&attempt_logs(&attempt_dir)[0]);
    assert!(cgroup.is_dir(), "{}", cgroup.display());

    first.kill();
    // The children die with the worker (PR_SET_PDEATHSIG); the grandchildren
    // are orphans now, parented outside the dead worker, still running.
    eventually("only the grandchildren are left", || {
        attempt_processes("orphans").len() == 1 && describe_processes().len() == 1
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let orphans = (attempt_processes("orphans"), describe_processes());
    assert!(
        orphans.0.len() == 1 && orphans.1.len() == 1,
        "the grandchildren outlive a killed worker by themselves: {orphans:?}"
    );
    assert!(cgroup.is_dir(), "the dead worker's cgroup is still there");

    // The next worker on the same root ends them as it starts: once it
    // answers /health (it serves only after its start), they are gone, and
    // so is the dead worker's cgroup.
    let second = start_worker(
        dir.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("CHILD_CGROUP", "required".into()),
        ],
    );
    assert_eq!(
        get_json(&format!("{}/health", second.base_url()))["status"],
        "OK"
    );
    assert!(!cgroup.exists(), "{} removed", cgroup.display());
    // Killed; a process may take a moment to finish dying.
    eventually("the orphans are gone", || {
        attempt_processes("orphans").is_empty() && describe_processes().is_empty()
    });
}
