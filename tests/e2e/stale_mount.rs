//! A stale file handle on a dynamic mount. The instance's storage is a FUSE
//! filesystem (`fixtures/stale_fs.py`, pass-through) mounted by the
//! stand-in `mount.nfs` (`crate::nfs_stand_in`), so the worker mounts an
//! allowed type from an NFS source and cannot tell it from NFS; a count in
//! a control file makes the next mounts answer every `.sst` open with
//! ESTALE, as an NFS mount does once the server lost its handles. The
//! worker remounts once and runs the attempt again; if that mount is stale
//! too, the attempt fails and the hoster compacts locally.

use crate::dynamic_mount::{
    mounted_below, small_spec, start_mounting_worker, Instance, MountGuard,
};
use crate::harness::*;
use crate::nfs_stand_in::NfsStandIn;
use farm::worker::local::LocalWorker;
use farm::workload::Model;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct StaleSetup {
    _tmp: tempfile::TempDir,
    mnt: PathBuf,
    dir: PathBuf,
    /// How many mounts go stale, and (`.log`) which did.
    control: PathBuf,
    nfs: NfsStandIn,
}

/// Writes the stand-in NFS client, whose mount step starts the stale
/// filesystem, and the control file: `stale` mounts will go stale, in
/// `scope` (see the fixture).
fn setup(stale: u32, scope: &str) -> StaleSetup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let control = dir.join("stale.control");
    std::fs::write(&control, format!("{stale} {scope}")).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/fixtures/stale_fs.py");
    let step = format!(
        "# A remount goes on top: wait for one more mount on the target.\n\
         before=$(grep -c \" $target \" /proc/self/mountinfo)\n\
         /usr/bin/python3 {fixture} \"$local\" \"$target\" {control} >> {log} 2>&1 &\n\
         i=0\n\
         while [ \"$(grep -c \" $target \" /proc/self/mountinfo)\" -le \"$before\" ]; do\n\
         \x20 i=$((i+1)); [ \"$i\" -gt 400 ] && echo \"stalefs did not mount $target\" >&2 && exit 1\n\
         \x20 sleep 0.05\n\
         done\n",
        fixture = fixture.display(),
        control = control.display(),
        log = dir.join("stalefs.log").display(),
    );
    let nfs = NfsStandIn::with_mount_step(&dir, &dir, &step);
    let mnt = dir.join("mnt");
    StaleSetup {
        _tmp: tmp,
        mnt,
        dir,
        control,
        nfs,
    }
}

fn worker(s: &StaleSetup) -> LocalWorker {
    // One attempt at a time: the stale mounts meet one attempt.
    start_mounting_worker(
        &s.dir,
        &s.mnt,
        &s.nfs,
        &[("MAX_PARALLEL_COMPACTIONS", "1".into())],
    )
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

#[test]
fn a_stale_handle_remounts_once_and_the_attempt_succeeds() {
    let s = setup(1, "sst");
    let _guard = MountGuard(s.mnt.clone());
    let mut w = worker(&s);
    let inst = Instance::new(&s.dir, "stale-once");
    let hoster = inst.open(&w, "nfs", "hard");
    hoster.churn(&mut Model::default(), &small_spec(91));

    assert_eq!(lines(&s.control.with_extension("control.log")), 1);
    let stat = worker_stat(&w);
    let m = &stat["mounts"];
    assert_eq!(
        (
            m["mounted"].as_u64(),
            m["remounted"].as_u64(),
            m["unmounted"].as_u64(),
            m["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(0), Some(0)),
        "{m}"
    );
    let calls = s.nfs.calls();
    assert_eq!(calls.len(), 2, "the helper mounted, then remounted");
    for call in &calls {
        assert_eq!(call[1], inst.source());
        assert_eq!(call[3..], ["-o", "hard,nosuid,nodev,noexec"]);
    }
    let failed = failed_attempts(&stat);
    assert_eq!(failed, 0, "{stat}");
    let installed = hoster.farm.stats().remote_installed;
    assert!(installed > 0);
    assert_eq!(stat["counters"]["succeeded"].as_u64(), Some(installed));
    let retried: Vec<String> = attempt_logs(&s.dir.join("worker"))
        .into_iter()
        .filter(|l| l.contains("stale file handle"))
        .collect();
    assert_eq!(retried.len(), 1, "one attempt met the stale mount");
    assert!(
        retried[0].contains("end outcome=succeeded"),
        "{}",
        retried[0]
    );

    drop(hoster);
    assert!(w.stop(Duration::from_secs(30)));
    assert!(mounted_below(None, &s.mnt).is_empty());
}

#[test]
fn a_second_stale_handle_fails_the_attempt_and_the_hoster_compacts_locally() {
    let s = setup(2, "sst");
    let _guard = MountGuard(s.mnt.clone());
    let mut w = worker(&s);
    let inst = Instance::new(&s.dir, "stale-twice");
    let hoster = inst.open(&w, "nfs", "hard");
    // churn checks every key against the model after the compactions.
    hoster.churn(&mut Model::default(), &small_spec(92));

    assert_eq!(lines(&s.control.with_extension("control.log")), 2);
    let stat = worker_stat(&w);
    assert_eq!(
        stat["counters"]["failed"]["compaction_failed"].as_u64(),
        Some(1),
        "{stat}"
    );
    assert_eq!(stat["mounts"]["failed"].as_u64(), Some(0));
    let logs = attempt_logs(&s.dir.join("worker"));
    let failed: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("end outcome=compaction_failed"))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].matches("remounting").count(),
        1,
        "one remount, one retry: {}",
        failed[0]
    );
    assert!(failed[0].contains("Stale file handle"), "{}", failed[0]);
    let stats = hoster.farm.stats();
    assert_eq!(stats.fallbacks["remote_failed"], 1, "{stats:?}");
    assert!(
        stats.last_errors["remote_failed"].contains("Stale file handle"),
        "{stats:?}"
    );

    drop(hoster);
    assert!(w.stop(Duration::from_secs(30)));
    assert!(mounted_below(None, &s.mnt).is_empty());
}

#[test]
fn a_mount_found_stale_at_admission_is_remounted_and_the_job_admitted() {
    let s = setup(1, "db");
    let _guard = MountGuard(s.mnt.clone());
    let mut w = worker(&s);
    let inst = Instance::new(&s.dir, "stale-admission");
    let hoster = inst.open(&w, "nfs", "hard");
    hoster.churn(&mut Model::default(), &small_spec(93));

    assert_eq!(lines(&s.control.with_extension("control.log")), 1);
    let stat = worker_stat(&w);
    let m = &stat["mounts"];
    assert_eq!(
        (
            m["mounted"].as_u64(),
            m["remounted"].as_u64(),
            m["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{m}"
    );
    assert_eq!(
        stat["counters"]["rejected"]["refused"].as_u64(),
        Some(0),
        "{:?}",
        hoster.farm.stats()
    );
    let installed = hoster.farm.stats().remote_installed;
    assert!(installed > 0);
    assert_eq!(stat["counters"]["succeeded"].as_u64(), Some(installed));
    let stats = hoster.farm.stats();
    let children: Vec<String> = files_named(&s.dir.join("worker"), "LOG.child")
        .into_iter()
        .map(|p| std::fs::read_to_string(&p).unwrap())
        .collect();
    assert_eq!(
        stats.fallbacks["remote_failed"], 0,
        "{stats:?} {stat} {children:?}"
    );
    // The attempts never saw the stale mount: admission remounted first.
    assert!(attempt_logs(&s.dir.join("worker"))
        .iter()
        .all(|l| !l.contains("stale file handle")));

    drop(hoster);
    assert!(w.stop(Duration::from_secs(30)));
    assert!(mounted_below(None, &s.mnt).is_empty());
}
