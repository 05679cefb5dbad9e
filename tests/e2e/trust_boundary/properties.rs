//! Generated hostile jobs against the job parser, the attempt name and
//! the path mapper: every job they accept has its paths inside the roots
//! the worker was given, and an attempt name that is five plain path
//! components. 100,000 jobs with a fixed seed; `FARM_PROPTEST_CASES`
//! asks for more (`FARM_PROPTEST_SEED` for another seed).

use farm::protocol::attempt::AttemptName;
use farm::protocol::job::Job;
use farm::worker::paths::{Mapped, PathMap};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::{Component, Path, PathBuf};

/// Path components an attacker would try.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("db".to_string()),
        2 => Just("out".to_string()),
        2 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just("%2e%2e".to_string()),
        1 => Just("%2F".to_string()),
        1 => Just(String::new()),
        2 => Just("link_out".to_string()),
        2 => Just("link_in".to_string()),
        1 => Just("file".to_string()),
        1 => Just("a\0b".to_string()),
        1 => Just("x\u{202e}y\u{301}é".to_string()),
        1 => Just("a".repeat(300)),
        1 => Just("-rf".to_string()),
        1 => Just("a\nb".to_string()),
        2 => "[a-z_./\\\\]{1,6}",
    ]
}

/// A path made of components, absolute under `root` or not.
fn path(root: String) -> impl Strategy<Value = String> {
    let roots = prop_oneof![
        6 => Just(root.clone()),
        1 => Just("/".to_string()),
        1 => Just(format!("{root}/")),
        1 => Just(format!("{root}//")),
        1 => Just(String::new()),
        1 => Just("/etc".to_string()),
        1 => Just(format!("{root}/../{}", Path::new(&root).file_name().unwrap().to_string_lossy())),
    ];
    (roots, prop::collection::vec(component(), 0..5)).prop_map(|(r, parts)| {
        let mut p = r;
        for c in parts {
            if !p.ends_with('/') {
                p.push('/');
            }
            p.push_str(&c);
        }
        p
    })
}

fn instance() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("app".to_string()),
        1 => Just("..".to_string()),
        1 => Just("a/b".to_string()),
        1 => Just(String::new()),
        1 => Just("x".repeat(200)),
        1 => "[a-zA-Z0-9._/-]{1,8}",
    ]
}

fn job_json(root: String) -> impl Strategy<Value = String> {
    (
        instance(),
        path(root.clone()),
        path(root.clone()),
        path(root),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(
            |(inst, hoster_root, dbname, output_dir, start, job_id, attempt)| {
                serde_json::json!({
                    "instance_name": inst,
                    "dbname": dbname,
                    "hoster_root": hoster_root,
                    "start_time": start,
                    "job_id": job_id,
                    "attempt": attempt,
                    "cf_name": "default",
                    "output_level": 1,
                    "output_dir": output_dir,
                    "compaction_service_input": "",
                })
                .to_string()
            },
        )
}

/// `root/` with a DB, a file, a symlink out and a symlink in.
fn tree(dir: &Path) -> PathBuf {
    let root = dir.join("hosters");
    std::fs::create_dir_all(root.join("db/out")).unwrap();
    std::fs::create_dir_all(dir.join("outside/db")).unwrap();
    std::fs::write(root.join("file"), "x").unwrap();
    std::os::unix::fs::symlink(dir.join("outside"), root.join("link_out")).unwrap();
    std::os::unix::fs::symlink(root.join("db"), root.join("link_in")).unwrap();
    root
}

/// The mapped path stays inside `base` lexically and on the filesystem.
fn assert_inside(m: &Mapped, base: &Path, what: &str) {
    assert_eq!(m.base, base, "{what}: base");
    assert!(
        m.rel
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "{what}: {m:?}"
    );
    let full = m.path();
    let mut existing = full.as_path();
    while !existing.exists() {
        existing = existing.parent().expect("the base exists");
    }
    let real = existing.canonicalize().unwrap();
    assert!(
        real.starts_with(base.canonicalize().unwrap()),
        "{what}: {} resolves to {}",
        full.display(),
        real.display()
    );
}

fn cases() -> u32 {
    std::env::var("FARM_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn runner() -> TestRunner {
    let seed: u64 = std::env::var("FARM_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

#[test]
fn every_accepted_job_stays_inside_its_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = tree(dir.path());
    let mount_root = dir.path().join("mnt");
    std::fs::create_dir_all(mount_root.join("app/db")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside"), mount_root.join("app/link_out"))
        .unwrap();
    let roots = [root.clone()];
    let accepted = std::cell::Cell::new([0u64; 3]);
    let r = root.display().to_string();
    runner()
        .run(&job_json(r), |text| {
            let Ok(job) = serde_json::from_str::<Job>(&text) else {
                return Ok(());
            };
            let Ok(name) = AttemptName::new(&job.key(), &job.hoster_root) else {
                return Ok(());
            };
            let parts: Vec<_> = Path::new(name.as_str()).components().collect();
            prop_assert_eq!(parts.len(), 5, "{}", name);
            prop_assert!(
                parts.iter().all(|c| matches!(c, Component::Normal(_))),
                "{}",
                name
            );
            let mut n = accepted.get();
            n[0] += 1;
            for (mount, base) in [
                (None, root.clone()),
                (
                    Some(mount_root.as_path()),
                    mount_root.join(&job.instance_name),
                ),
            ] {
                let Ok(map) = PathMap::new(mount, &roots, &job.instance_name, &job.hoster_root)
                else {
                    continue;
                };
                if let Ok(db) = map.map(&job.dbname, "dbname") {
                    assert_inside(&db, &base, &text);
                    n[1] += 1;
                }
                if let Ok(out) = map.map(&job.output_dir, "output_dir") {
                    assert_inside(&out, &base, &text);
                    n[2] += 1;
                }
            }
            accepted.set(n);
            Ok(())
        })
        .unwrap();
    let [names, dbs, outs] = accepted.get();
    println!(
        "{} jobs: {names} named, {dbs} dbname and {outs} output_dir mappings accepted",
        cases()
    );
    // The generator must reach the accepting paths, or the property says
    // nothing.
    assert!(
        names > 1000 && dbs > 1000 && outs > 1000,
        "{names} {dbs} {outs}"
    );
    assert!(
        std::fs::read_dir(dir.path().join("outside"))
            .unwrap()
            .count()
            == 1
    );
}
