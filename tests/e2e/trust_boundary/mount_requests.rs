//! Jobs that ask a worker with `NFS_DYNAMIC_MOUNT` to mount what its
//! configuration does not allow: another filesystem type, a local source,
//! an option that re-mounts, runs programs or undoes `nosuid,nodev,noexec`.
//! Each is refused with 412 JSON that names the reason, no mount appears in
//! the sandboxed worker's mount table, no helper ran, and the canary
//! outside the roots is unchanged. And a mount that hangs holds back only
//! the jobs of its own instance: `/stat`, `/metrics`, `/probe`, `/health`
//! and other instances go on.
//!
//! The worker's `mount.nfs` is the stand-in NFS client
//! (`crate::nfs_stand_in`); every other `mount.<type>` a hostile job could
//! reach is a decoy that records its call.

use super::canary::{assert_unchanged, canary, snapshot};
use crate::harness::*;
use crate::nfs_stand_in::{NfsStandIn, NFS_HOST};
use crate::sandbox::{Sandbox, SandboxedWorker};
use farm::protocol::job::Job;
use farm::worker::local::LocalWorker;
use farm::worker::mounts::mountinfo::mount_points;
use farm::workload::capture::{capture_input, Captured};
use farm::workload::WorkloadSpec;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Types a hostile job could name, each with a decoy helper.
const DECOYS: [&str; 8] = [
    "none",
    "bind",
    "ext4",
    "tmpfs",
    "fuse",
    "fuse.sshfs",
    "sshfs",
    "cifs",
];

fn captured(dir: &Path) -> Captured {
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 30_000,
        ..WorkloadSpec::default()
    };
    capture_input(dir, small_options(), &spec).expect("input captured")
}

/// A sandboxed worker mounting through `nfs` on `dir/mnt`, logging to
/// `dir/worker.log`.
fn start(dir: &Path, nfs: &NfsStandIn, extra: &[(&str, String)]) -> SandboxedWorker {
    let mut env = sandboxed_env(dir, nfs);
    env.extend(extra.iter().cloned());
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
    Sandbox::new()
        .share(dir)
        .start_worker(&env, Stdio::from(log))
        .expect("worker starts")
}

fn sandboxed_env(dir: &Path, nfs: &NfsStandIn) -> Vec<(&'static str, String)> {
    vec![
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("NFS_MOUNT_ROOT", dir.join("mnt").display().to_string()),
        ("NFS_DYNAMIC_MOUNT", "1".to_string()),
        ("PATH", nfs.path_var()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        ("RUST_LOG", "info".to_string()),
    ]
}

/// The sandboxed worker's mount points (its own mount namespace).
fn worker_mounts(worker: &LocalWorker) -> Vec<PathBuf> {
    let inner = Sandbox::inner_pid(worker.pid()).expect("the worker runs in the sandbox");
    mount_points(Some(inner)).expect("the worker's mountinfo")
}

/// A job of instance `instance` asking for `fs_type`, `src`, `opt`.
fn asking(c: &Captured, instance: &str, fs_type: &str, src: &str, opt: &str) -> Job {
    let mut j = c.job(instance, 0);
    j.nfs_type = fs_type.into();
    j.nfs_mnt_src = src.into();
    j.nfs_mnt_opt = opt.into();
    j
}

#[test]
fn mounts_the_configuration_does_not_allow_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = captured(dir);
    let nfs = NfsStandIn::new(dir, dir);
    nfs.add_decoys(&DECOYS);
    let target = canary(dir);
    let before = snapshot(&target);
    let worker = start(dir, &nfs, &[]);
    let mounts_before = worker_mounts(&worker);
    let good = nfs.source(&c.root);

    let hostile: Vec<(&str, &str, String, &str, &str)> = vec![
        // (instance, nfs_type, nfs_mnt_src, nfs_mnt_opt, the refusal says)
        (
            "none-bind",
            "none",
            "/".into(),
            "bind",
            "MOUNT_ALLOWED_TYPES",
        ),
        (
            "none-rbind",
            "none",
            "/".into(),
            "rbind",
            "MOUNT_ALLOWED_TYPES",
        ),
        ("bind-type", "bind", "/".into(), "", "MOUNT_ALLOWED_TYPES"),
        (
            "disk",
            "ext4",
            "/dev/sda1".into(),
            "",
            "MOUNT_ALLOWED_TYPES",
        ),
        (
            "ram",
            "tmpfs",
            "farm".into(),
            "size=1m",
            "MOUNT_ALLOWED_TYPES",
        ),
        (
            "fuse-sshfs",
            "fuse.sshfs",
            "root@h:/".into(),
            "",
            "MOUNT_ALLOWED_TYPES",
        ),
        (
            "root",
            "nfs",
            "/".into(),
            "",
            "a local path is never an NFS source",
        ),
        (
            "etc",
            "nfs",
            "/etc".into(),
            "",
            "a local path is never an NFS source",
        ),
        (
            "dev",
            "nfs4",
            "/dev/sda1".into(),
            "",
            "a local path is never an NFS source",
        ),
        ("loop", "nfs4", "localhost:/".into(), "", "loopback"),
        (
            "dots",
            "nfs",
            format!("{NFS_HOST}:/copy/../../etc"),
            "",
            "normal",
        ),
        ("nfs-bind", "nfs", good.clone(), "bind", "never allowed"),
        (
            "nfs-rbind",
            "nfs",
            good.clone(),
            "vers=3,rbind",
            "never allowed",
        ),
        ("suid", "nfs", good.clone(), "hard,suid", "never allowed"),
        ("dev-opt", "nfs", good.clone(), "dev", "never allowed"),
        (
            "exec",
            "nfs4",
            good.clone(),
            "exec,vers=4.2",
            "never allowed",
        ),
        (
            "remount",
            "nfs",
            good.clone(),
            "remount,rw",
            "never allowed",
        ),
        (
            "mkdir",
            "nfs",
            good.clone(),
            "X-mount.mkdir",
            "never allowed",
        ),
        (
            "helper",
            "nfs",
            good.clone(),
            "helper=/bin/sh",
            "never allowed",
        ),
        (
            "unlisted",
            "nfs",
            good.clone(),
            "farm_test=1",
            "MOUNT_ALLOWED_OPTIONS",
        ),
    ];
    for (instance, fs_type, src, opt, says) in &hostile {
        let job = asking(&c, instance, fs_type, src, opt);
        let (code, answer) = submit_job(&worker, &job);
        assert_eq!(code, 412, "{instance}: {answer}");
        assert_eq!(answer["status"], "refused", "{instance}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{instance}: {error}");
        assert!(
            !error.contains("/bin/sh"),
            "option values are never shown: {error}"
        );
    }
    assert_eq!(nfs.calls(), Vec::<Vec<String>>::new(), "no helper ran");
    assert_eq!(worker_mounts(&worker), mounts_before, "nothing was mounted");
    let stat = worker_stat(&worker);
    assert_eq!(
        stat["counters"]["rejected"]["refused"].as_u64(),
        Some(hostile.len() as u64),
        "{stat}"
    );
    let m = &stat["mounts"];
    assert_eq!(
        (m["mounted"].as_u64(), m["failed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(m["mounts"], serde_json::json!([]), "{m}");

    // The same job with an allowed mount is admitted, mounted once with
    // nosuid,nodev,noexec last, and runs.
    let job = asking(&c, "tenant", "nfs4", &good, "vers=4.1,hard");
    let (code, answer) = submit_job(&worker, &job);
    assert_eq!(code, 200, "{answer}");
    eventually("the allowed job is done", || {
        probe_job(&worker, &job)["status"] == "done"
    });
    let mnt = dir.join("mnt");
    assert_eq!(
        nfs.calls(),
        [vec![
            "mount.nfs4".to_string(),
            good.clone(),
            mnt.join("tenant").display().to_string(),
            "-o".into(),
            "vers=4.1,hard,nosuid,nodev,noexec".into(),
        ]]
    );
    let mut expected = mounts_before.clone();
    expected.push(mnt.join("tenant"));
    assert_eq!(worker_mounts(&worker), expected);
    assert_unchanged(&target, &before);
    drop(worker);
    let log = std::fs::read_to_string(dir.join("worker.log")).unwrap();
    assert!(log.contains("-o <redacted>"), "{log}");
    assert!(!log.contains("vers=4.1"), "options never logged: {log}");
}

#[test]
fn an_operator_cannot_allow_what_cannot_be_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let nfs = NfsStandIn::new(dir, dir);
    let target = canary(dir);
    let before = snapshot(&target);
    let sandbox = Sandbox::new().share(dir);
    for (name, value, says) in [
        ("MOUNT_ALLOWED_TYPES", "nfs,none", "only nfs and nfs4"),
        (
            "MOUNT_ALLOWED_TYPES",
            "nfs4,fuse.sshfs",
            "only nfs and nfs4",
        ),
        ("MOUNT_ALLOWED_OPTIONS", "vers,hard,bind", "never allowed"),
        ("MOUNT_ALLOWED_OPTIONS", "vers,suid", "never allowed"),
        (
            "MOUNT_ALLOWED_OPTIONS",
            "vers,X-mount.mkdir",
            "never allowed",
        ),
    ] {
        let mut env = sandboxed_env(dir, &nfs);
        env.push((name, value.to_string()));
        let (ok, stderr) = sandbox.run_worker(&env);
        assert!(!ok, "{name}={value} started");
        assert!(
            stderr.contains(name) && stderr.contains(says),
            "{name}={value}: {stderr}"
        );
    }
    assert_unchanged(&target, &before);
}

/// Repeats each request until `stop`, timing every answer: the slowest,
/// and how many answered, per request.
fn poll(stop: &AtomicBool, requests: &[(&str, &dyn Fn() -> bool)]) -> Vec<(String, Duration, u32)> {
    let mut out: Vec<(String, Duration, u32)> = requests
        .iter()
        .map(|(what, _)| (what.to_string(), Duration::ZERO, 0))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        for (i, (what, request)) in requests.iter().enumerate() {
            let t = Instant::now();
            assert!(request(), "{what} answered with an error");
            let took = t.elapsed();
            out[i].1 = out[i].1.max(took);
            out[i].2 += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

/// Sets its flag when dropped (a panic unwinding included).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The processes of the sandbox still running, but the worker and the
/// spare child waiting for its next attempt (MULTI_PROCESS).
fn sandbox_processes(inner: u32) -> Vec<String> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let mine = ns(&inner.to_string());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|p| p.parse::<u32>().is_ok_and(|p| p != inner))
        .filter(|p| ns(p).is_some() && ns(p) == mine)
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let state = stat.rsplit(')').next()?.trim().chars().next()?;
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let env = std::fs::read(format!("/proc/{p}/environ")).unwrap_or_default();
            let spare = env
                .split(|b| *b == 0)
                .any(|kv| kv.starts_with(b"DCOMPACT_ATTEMPT=spare-"));
            (state != 'Z' && !spare).then(|| String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

/// The dead-mount test: the stand-in NFS client hangs (until it is killed)
/// on the export `/hang`, with `MOUNT_TIMEOUT=20s`. While it hangs, one
/// thread scrapes `/metrics` and `/stat?html=0`, another asks `/probe` and
/// `/health`; a second job of the same instance waits for the first's
/// mount, and a job of another instance is mounted and compacted. At
/// `MOUNT_TIMEOUT` the helper (with what it started) is killed and both
/// jobs of the dead instance are refused with the timeout.
#[test]
fn a_mount_that_hangs_holds_back_only_the_jobs_of_its_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = captured(dir);
    let nfs = NfsStandIn::new(dir, dir);
    let target = canary(dir);
    let before = snapshot(&target);
    let timeout = Duration::from_secs(20);
    let worker = start(dir, &nfs, &[("MOUNT_TIMEOUT", "20s".into())]);
    let inner = Sandbox::inner_pid(worker.pid()).unwrap();
    let base = worker.base_url();
    let dead = |attempt: u32| {
        let mut j = asking(&c, "dead", "nfs", &format!("{NFS_HOST}:/hang"), "hard");
        j.attempt = attempt;
        j
    };
    let alive = asking(&c, "alive", "nfs4", &nfs.source(&c.root), "");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let get = |path: &str| {
        agent
            .get(&format!("{base}{path}"))
            .call()
            .is_ok_and(|r| r.into_string().is_ok())
    };
    let key = serde_json::to_vec(&alive.key()).unwrap();
    let probe_alive = || match agent.post(&format!("{base}/probe")).send_bytes(&key) {
        Ok(r) => r.into_string().is_ok(),
        // Not submitted yet: 404 JSON, answered all the same.
        Err(ureq::Error::Status(404, r)) => r.into_string().is_ok(),
        Err(_) => false,
    };
    let stop = AtomicBool::new(false);
    let dead_rows = |stat: &Value| -> Vec<Value> {
        stat["mounts"]["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["instance"] == "dead")
            .cloned()
            .collect()
    };

    let (slowest, refusals, hung) = std::thread::scope(|s| {
        // The pollers stop when this scope ends, a failed assertion too.
        let _stop_pollers = StopOnDrop(&stop);
        let scrape = s.spawn(|| {
            poll(
                &stop,
                &[
                    ("/metrics", &|| get("/metrics")),
                    ("/stat?html=0", &|| get("/stat?html=0")),
                ],
            )
        });
        let asks = s.spawn(|| {
            poll(
                &stop,
                &[("/probe", &probe_alive), ("/health", &|| get("/health"))],
            )
        });
        let started = Instant::now();
        let first = s.spawn(|| submit_job(&worker, &dead(0)));
        eventually("the helper hangs", || {
            nfs.calls().iter().any(|c| c[1].ends_with(":/hang"))
        });
        let second = s.spawn(|| submit_job(&worker, &dead(1)));
        eventually("the second job waits for the first's mount", || {
            let rows = dead_rows(&worker_stat(&worker));
            rows.len() == 1 && rows[0]["state"] == "mounting" && rows[0]["waiting"] == 1
        });
        // Another instance is mounted, and compacts, meanwhile.
        let (code, answer) = submit_job(&worker, &alive);
        assert_eq!(code, 200, "{answer}");
        eventually("the other instance's job is done", || {
            probe_job(&worker, &alive)["status"] == "done"
        });
        assert!(
            !first.is_finished() && !second.is_finished(),
            "the dead mount still hangs"
        );
        let refusals = [first.join().unwrap(), second.join().unwrap()];
        let hung = started.elapsed();
        // A little longer: the endpoints answer after the kill as well.
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let mut slowest = scrape.join().unwrap();
        slowest.extend(asks.join().unwrap());
        (slowest, refusals, hung)
    });

    println!("dead mount hung {hung:?}; slowest answers meanwhile:");
    for (what, took, n) in &slowest {
        println!("  {what:<14} slowest {took:>10.3?} of {n} requests");
    }
    for (code, answer) in &refusals {
        assert_eq!(*code, 412, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("failed to mount") && error.contains("MOUNT_TIMEOUT"),
            "{error}"
        );
        assert!(!error.contains("hard"), "options never shown: {error}");
    }
    assert!(
        hung >= timeout,
        "refused only when the helper was killed: {hung:?}"
    );
    for (what, took, n) in &slowest {
        assert!(*n > 10, "{what} asked {n} times");
        assert!(*took < Duration::from_secs(1), "{what} took {took:?}");
    }
    // One helper call hung (the waiting job did not mount again), one
    // mounted the other instance.
    let calls = nfs.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    eventually("the killed helper left nothing running", || {
        sandbox_processes(inner).is_empty()
    });
    let m = worker_stat(&worker)["mounts"].clone();
    assert_eq!(
        (
            m["mounted"].as_u64(),
            m["failed"].as_u64(),
            m["active"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{m}"
    );
    assert!(dead_rows(&worker_stat(&worker)).is_empty(), "{m}");
    assert_eq!(
        worker_mounts(&worker)
            .into_iter()
            .filter(|p| p.starts_with(dir.join("mnt")))
            .collect::<Vec<_>>(),
        [dir.join("mnt/alive")]
    );
    assert_unchanged(&target, &before);
}
