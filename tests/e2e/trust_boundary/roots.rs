//! The incident: a worker started on a root that is not its own once swept
//! 1,442 of the host's directories within a second. Here the same settings
//! meet a sandboxed worker: it refuses to start, or starts and deletes
//! nothing but its own attempts.

use super::canary::{age, assert_unchanged, snapshot};
use crate::admission::capture;
use crate::harness::*;
use crate::sandbox::Sandbox;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// 1,000 directories the worker did not create, at every depth below
/// `root`, many shaped like attempts: old ones, big ones, symlinks to
/// `outside`, some with another root's owner marker.
fn foreign_tree(root: &Path, outside: &Path) -> usize {
    let mut made = 0;
    for i in 0..200 {
        let base = root.join(format!("inst{}", i % 7));
        let paths = [
            base.clone(),
            base.join(format!("{}", 1_700_000_000 + i)),
            base.join(format!("{}/db{i}", 1_700_000_000 + i)),
            base.join(format!("{}/db{i}/job-{:05}-00", 1_700_000_000 + i, i)),
            base.join(format!(
                "{}/db{i}/job-{:05}-00/att-{:02}",
                1_700_000_000 + i,
                i,
                i % 100
            )),
        ];
        for p in &paths {
            if !p.exists() {
                std::fs::create_dir_all(p).unwrap();
                made += 1;
            }
        }
        let attempt = &paths[4];
        match i % 5 {
            0 => std::fs::write(attempt.join("big.sst"), vec![7u8; 64 << 10]).unwrap(),
            1 => std::fs::write(attempt.join(".attempt-owner"), "root_id=another-root\n").unwrap(),
            2 => std::os::unix::fs::symlink(outside, attempt.join("out")).unwrap(),
            3 => std::fs::write(attempt.join("objects"), format!("pack {i}")).unwrap(),
            _ => {}
        }
        std::fs::write(paths[1].join("note.txt"), format!("user file {i}")).unwrap();
    }
    // Symlinks at attempt depth and on the way to it.
    std::os::unix::fs::symlink(outside, root.join("inst0/1700000000/db0/job-00999-00")).unwrap();
    std::os::unix::fs::symlink(outside, root.join("inst8")).unwrap();
    made += 2;
    // Off-grammar trees, as a git checkout or a toolchain would have.
    for i in 0..60 {
        let d = root.join(format!("repo{i}/.git/objects/{:02x}", i));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("pack"), vec![1u8; 1000]).unwrap();
        made += 4;
    }
    // Everything old: past any retention age.
    for entry in walk(root) {
        age(&entry, 60 * DAY);
    }
    made
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn sandbox(dir: &Path) -> Sandbox {
    Sandbox::new().share(dir)
}

/// The sandbox itself: the worker sees a tmpfs root with `/usr`, its own
/// `/proc`, and the test's directory, nothing else of the host.
#[test]
fn the_sandbox_shows_the_worker_nothing_of_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let worker = sandbox(dir.path())
        .start_worker(
            &[
                (
                    "WORKER_DB_ROOT",
                    dir.path().join("worker").display().to_string(),
                ),
                ("HOSTER_ROOTS", test_hoster_roots(dir.path())),
            ],
            Stdio::inherit(),
        )
        .expect("worker starts");
    let inner = Sandbox::inner_pid(worker.pid()).expect("the worker runs in the sandbox");
    let root = PathBuf::from(format!("/proc/{inner}/root"));
    let mut top: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["bin", "dev", "etc", "lib", "lib64", "proc", "root", "run", "sbin", "tmp", "usr", "var"],
        "the sandbox's root"
    );
    assert_eq!(std::fs::read_dir(root.join("etc")).unwrap().count(), 0);
    // Its own PID namespace: the worker is PID 1 there.
    let status = std::fs::read_to_string(format!("/proc/{inner}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    assert_eq!(
        get_json(&format!("{}/health", worker.base_url()))["status"],
        "OK"
    );
}

#[test]
fn system_directories_as_roots_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (name, value) in [
        ("WORKER_DB_ROOT", "/"),
        ("WORKER_DB_ROOT", "/usr"),
        ("WORKER_DB_ROOT", "/var/lib"),
        ("WORKER_DB_ROOT", "/home/someone"),
        ("NFS_MOUNT_ROOT", "/"),
        ("HOSTER_ROOTS", "/"),
    ] {
        let mut env = vec![
            (
                "WORKER_DB_ROOT",
                dir.path().join("worker").display().to_string(),
            ),
            ("HOSTER_ROOTS", data.display().to_string()),
        ];
        env.retain(|(k, _)| *k != name);
        env.push((name, value.to_string()));
        let (started, stderr) = sandbox(dir.path()).run_worker(&env);
        assert!(!started, "{name}={value} must not start");
        assert!(
            stderr.contains(&format!("{name}={value}"))
                || stderr.contains(&format!("{name}=\"{value}\"")),
            "{name}={value}: the refusal names the setting: {stderr}"
        );
    }
}

#[test]
fn a_foreign_root_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not-the-workers");
    let outside = super::canary::canary(dir.path());
    let made = foreign_tree(&root, &outside);
    assert!(made >= 1000, "{made} foreign directories");
    let before = snapshot(&root);
    let outside_before = snapshot(&outside);
    let (started, stderr) = sandbox(dir.path()).run_worker(&[
        ("WORKER_DB_ROOT", root.display().to_string()),
        (
            "HOSTER_ROOTS",
            dir.path().join("data").display().to_string(),
        ),
        ("ATTEMPT_RETENTION_AGE", "1s".into()),
        ("ATTEMPT_RETENTION_BYTES", "1".into()),
    ]);
    assert!(!started, "a root holding foreign files is refused");
    assert!(
        stderr.contains("WORKER_DB_ROOT") && stderr.contains("did not make"),
        "{stderr}"
    );
    assert_unchanged(&root, &before);
    assert_unchanged(&outside, &outside_before);
}

/// The worker's own root, into which foreign directories found their way
/// (an operator's copy, a mount root given by mistake inside it): the
/// sweep removes the worker's own old attempts and nothing else.
#[test]
fn an_own_root_sweeps_its_own_attempts_and_nothing_foreign() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let root = dir.path().join("worker");
    let outside = super::canary::canary(dir.path());
    let env = |age: &str| {
        vec![
            ("WORKER_DB_ROOT", root.display().to_string()),
            ("HOSTER_ROOTS", test_hoster_roots(dir.path())),
            ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
            ("MULTI_PROCESS", multi_process().to_string()),
            ("ATTEMPT_RETENTION_AGE", age.to_string()),
            ("RUST_LOG", "info".to_string()),
        ]
    };
    // Three real attempts leave the worker's own directories.
    let mut worker = sandbox(dir.path())
        .start_worker(&env("168h"), Stdio::inherit())
        .expect("worker starts on a new root");
    let base = worker.base_url();
    for a in 0..3 {
        let (code, answer) = post(
            &format!("{base}/dcompact"),
            &serde_json::to_vec(&c.job("own", a)).unwrap(),
            &[],
        );
        assert_eq!(code, 200, "{answer}");
    }
    eventually("the three attempts ended", || {
        worker_stat(&worker)["counters"]["succeeded"].as_u64() == Some(3)
    });
    worker.kill();
    let own: Vec<PathBuf> = files_named(&root, ".attempt-owner")
        .into_iter()
        .map(|m| m.parent().unwrap().to_owned())
        .collect();
    assert_eq!(own.len(), 3, "{own:?}");
    for a in &own {
        for e in walk(a) {
            age(&e, 60 * DAY);
        }
        age(a, 60 * DAY);
    }
    // Then 1,000 foreign directories beside them, just as old.
    assert!(foreign_tree(&root, &outside) >= 1000);
    // The worker's own attempts live under `own/` (their instance name);
    // the root itself changes when they go.
    let foreign_only = |rel: &Path| !rel.as_os_str().is_empty() && !rel.starts_with("own");
    let before: std::collections::BTreeMap<_, _> = snapshot(&root)
        .into_iter()
        .filter(|(rel, _)| foreign_only(rel))
        .collect();
    let outside_before = snapshot(&outside);

    let worker = sandbox(dir.path())
        .start_worker(&env("24h"), Stdio::inherit())
        .expect("worker starts on its own root");
    eventually("the worker swept its own old attempts", || {
        own.iter().all(|a| !a.exists())
    });
    // Another sweep or two, then look.
    std::thread::sleep(Duration::from_millis(500));
    let swept = worker_stat(&worker);
    drop(worker);
    let after: std::collections::BTreeMap<_, _> = snapshot(&root)
        .into_iter()
        .filter(|(rel, _)| foreign_only(rel))
        .collect();
    assert_eq!(
        after.len(),
        before.len(),
        "foreign entries removed or added"
    );
    let changed: Vec<_> = before
        .iter()
        .filter(|(rel, v)| after.get(*rel) != Some(*v))
        .map(|(rel, _)| rel.clone())
        .take(5)
        .collect();
    assert!(changed.is_empty(), "foreign entries changed: {changed:?}");
    assert!(
        !root.join("own").exists(),
        "the emptied parents of own attempts go too"
    );
    assert_unchanged(&outside, &outside_before);
    println!("after the sweep: {}", swept["counters"]);
}
