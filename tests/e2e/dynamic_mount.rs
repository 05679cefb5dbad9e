//! `NFS_DYNAMIC_MOUNT`: the worker mounts each hoster instance's storage on
//! `NFS_MOUNT_ROOT/<instance_name>` itself. This machine has no NFS client,
//! so the worker's `mount.nfs` and `mount.nfs4` are stand-ins
//! (`crate::nfs_stand_in`) that map `nfs.farm.test:/<export>` to a local
//! directory and bind-mount it; the worker cannot tell the difference, and
//! only ever runs the types its configuration allows.

use crate::harness::*;
use crate::nfs_stand_in::NfsStandIn;
use farm::worker::local::LocalWorker;
use farm::worker::mounts::mountinfo::mount_points;
use farm::workload::capture::capture_input;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Lazily detaches every mount below its root when dropped, so a failing
/// test or a killed worker leaves nothing mounted. Declare it after the
/// temporary directory: it must run before the directory is removed.
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let points = mount_points(None).unwrap_or_default();
        for p in points.iter().rev().filter(|p| p.starts_with(&self.0)) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(p)
                .status();
        }
    }
}

/// The mount points below `root` in process `pid`'s namespace (`None`:
/// this process).
pub fn mounted_below(pid: Option<u32>, root: &Path) -> Vec<PathBuf> {
    mount_points(pid)
        .expect("mountinfo readable")
        .into_iter()
        .filter(|p| p.starts_with(root))
        .collect()
}

/// A worker with `NFS_DYNAMIC_MOUNT` on `mount_root`, the stand-in NFS
/// client first on its `PATH`, logging at `info` to `dir/worker.log`.
pub fn start_mounting_worker(
    dir: &Path,
    mount_root: &Path,
    nfs: &NfsStandIn,
    extra: &[(&str, String)],
) -> LocalWorker {
    let mut env = vec![
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("HOSTER_ROOTS", test_hoster_roots(dir)),
        ("RUST_LOG", "info".to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("NFS_DYNAMIC_MOUNT", "1".to_string()),
        ("NFS_MOUNT_ROOT", mount_root.display().to_string()),
        ("PATH", nfs.path_var()),
    ];
    env.extend(extra.iter().cloned());
    let log = std::fs::File::create(dir.join("worker.log")).unwrap();
    LocalWorker::start_logging_to(worker_bin(), &env, Stdio::from(log)).expect("worker starts")
}

/// A hoster instance: its root (the "export") and the DB below it.
pub struct Instance {
    pub name: &'static str,
    pub root: PathBuf,
    pub db: PathBuf,
}

impl Instance {
    /// The instance's root is `dir/export-<name>`, exported by the stand-in
    /// NFS server as `/export-<name>` (its exports are `dir`).
    pub fn new(dir: &Path, name: &'static str) -> Instance {
        let root = dir.join(format!("export-{name}"));
        std::fs::create_dir_all(&root).unwrap();
        let db = root.join("db");
        Instance { name, root, db }
    }

    /// `nfs.farm.test:/export-<name>`.
    pub fn source(&self) -> String {
        let export = self.root.file_name().expect("a directory name");
        format!(
            "{}:/{}",
            crate::nfs_stand_in::NFS_HOST,
            export.to_string_lossy()
        )
    }

    /// Opens the hoster; the worker mounts its export by `nfs_type`/`opt`.
    pub fn open(&self, worker: &LocalWorker, nfs_type: &str, opt: &str) -> Hoster {
        let params = params(
            &self.root,
            &[worker.base_url()],
            json!({
                "instance_name": self.name,
                "nfs_type": nfs_type,
                "nfs_mnt_src": self.source(),
                "nfs_mnt_opt": opt,
            }),
        );
        let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
        Hoster::open(&self.db, small_options(), cfs, &params)
    }
}

pub fn small_spec(seed: u64) -> WorkloadSpec {
    WorkloadSpec {
        ops: 40_000,
        key_space: 10_000,
        seed,
        ..WorkloadSpec::default()
    }
}

fn mounts_stat(worker: &LocalWorker) -> Value {
    worker_stat(worker)["mounts"].clone()
}

#[test]
fn two_instances_each_read_through_their_own_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mnt = dir.join("mnt");
    let _guard = MountGuard(mnt.clone());
    let nfs = NfsStandIn::new(dir, dir);
    let worker = start_mounting_worker(dir, &mnt, &nfs, &[]);
    let (a, b) = (Instance::new(dir, "alpha"), Instance::new(dir, "beta"));
    // alpha over NFSv3 without options, beta over NFSv4 with some.
    let ha = a.open(&worker, "nfs", "");
    let hb = b.open(&worker, "nfs4", "vers=4.1,hard,timeo=600");
    std::thread::scope(|s| {
        s.spawn(|| ha.churn(&mut Model::default(), &small_spec(61)));
        s.spawn(|| hb.churn(&mut Model::default(), &small_spec(62)));
    });

    let (ia, ib) = (
        ha.farm.stats().remote_installed,
        hb.farm.stats().remote_installed,
    );
    assert!(ia > 0 && ib > 0, "both instances compacted remotely");
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["succeeded"].as_u64(), Some(ia + ib));
    let m = &stat["mounts"];
    assert_eq!(
        (
            m["active"].as_u64(),
            m["mounted"].as_u64(),
            m["failed"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{m}"
    );
    // The kernel agrees: one mount per instance in the worker's namespace.
    let (ta, tb) = (mnt.join("alpha"), mnt.join("beta"));
    let mut seen = mounted_below(Some(worker.pid()), &mnt);
    seen.sort();
    assert_eq!(seen, vec![ta.clone(), tb.clone()]);
    // Each instance's attempts read its DB through its own mount.
    for (inst, target, installed) in [(&a, &ta, ia), (&b, &tb, ib)] {
        let logs = attempt_logs(&dir.join("worker").join(inst.name));
        assert_eq!(logs.len() as u64, installed);
        let start = format!("start db={} ", target.join("db").display());
        assert!(logs.iter().all(|l| l.contains(&start)), "{start}");
    }
    // The helpers got the jobs' sources, targets and options exactly, and
    // the worker's nosuid,nodev,noexec last.
    let mut calls = nfs.calls();
    calls.sort();
    let call = |helper: &str, src: String, target: &Path, opts: &str| {
        vec![
            helper.to_owned(),
            src,
            target.display().to_string(),
            "-o".into(),
            opts.to_owned(),
        ]
    };
    assert_eq!(
        calls,
        [
            call("mount.nfs", a.source(), &ta, "nosuid,nodev,noexec"),
            call(
                "mount.nfs4",
                b.source(),
                &tb,
                "vers=4.1,hard,timeo=600,nosuid,nodev,noexec"
            ),
        ]
    );
    // /stat shows sources and types, never options; nor does the log.
    let rows = &m["mounts"];
    assert_eq!(rows[1]["source"], b.source());
    assert_eq!(rows[1]["type"], "nfs4");
    let page = ureq::get(&format!("{}/stat", worker.base_url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains(&b.source()), "{page}");
    for text in [stat.to_string(), page] {
        assert!(!text.contains("timeo="), "{text}");
    }

    // A clean stop unmounts everything; the mount points are empty again.
    let mut worker = worker;
    assert!(
        worker.stop(Duration::from_secs(30)),
        "worker stops by itself"
    );
    assert_eq!(mounted_below(None, &mnt), Vec::<PathBuf>::new());
    assert_eq!(std::fs::read_dir(&ta).unwrap().count(), 0);
    let log = std::fs::read_to_string(dir.join("worker.log")).unwrap();
    assert!(
        log.contains("mounting") && log.contains("-o <redacted>"),
        "{log}"
    );
    assert!(!log.contains("timeo"), "{log}");
}

#[test]
fn lru_of_one_alternates_and_never_unmounts_a_running_instance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mnt = dir.join("mnt");
    let _guard = MountGuard(mnt.clone());
    let nfs = NfsStandIn::new(dir, dir);
    let worker = start_mounting_worker(dir, &mnt, &nfs, &[("NFS_MOUNT_CACHE", "1".into())]);
    let (a, b) = (Instance::new(dir, "lru-a"), Instance::new(dir, "lru-b"));
    let (ha, hb) = (a.open(&worker, "nfs", ""), b.open(&worker, "nfs4", "hard"));
    let (mut ma, mut mb) = (Model::default(), Model::default());

    let stop = AtomicBool::new(false);
    let pid = worker.pid();
    let base = worker.base_url();
    // Samples /stat, the worker's mountinfo, /stat again: an attempt running
    // in both answers ran while the mountinfo was read.
    let sampler = || {
        let running = || -> BTreeSet<(String, String)> {
            let stat = get_json(&format!("{base}/stat?html=0"));
            stat["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["state"] == "running")
                .map(|a| {
                    let inst = a["key"]["instance_name"].as_str().unwrap().to_owned();
                    (inst, a["name"].as_str().unwrap().to_owned())
                })
                .collect()
        };
        let (mut checked, mut states) = (BTreeSet::new(), BTreeSet::new());
        while !stop.load(Ordering::Relaxed) {
            let before = running();
            let mounted = mounted_below(Some(pid), &mnt);
            let after = running();
            for (inst, attempt) in before.intersection(&after) {
                assert!(
                    mounted.contains(&mnt.join(inst)),
                    "{inst} not mounted while its attempt {attempt} ran: {mounted:?}"
                );
                checked.insert(inst.clone());
            }
            states.insert(mounted);
            std::thread::sleep(Duration::from_millis(5));
        }
        (checked, states)
    };
    let (checked, states) = std::thread::scope(|s| {
        let sampling = s.spawn(sampler);
        for round in 0..2 {
            ha.churn(&mut ma, &small_spec(70 + round));
            hb.churn(&mut mb, &small_spec(80 + round));
        }
        stop.store(true, Ordering::Relaxed);
        sampling.join().expect("sampler saw no violation")
    });

    let expected: BTreeSet<String> = ["lru-a".into(), "lru-b".into()].into();
    assert_eq!(checked, expected, "running attempts of both were sampled");
    // Each instance alone, never both at rest: the LRU of one at work.
    assert!(states.contains(&vec![mnt.join("lru-a")]), "{states:?}");
    assert!(states.contains(&vec![mnt.join("lru-b")]), "{states:?}");
    // (A mount that a lease ending left beyond the cache goes on the
    // table's evictor thread, a moment after the attempt's end.)
    let counts = |m: &Value| {
        (
            m["mounted"].as_u64(),
            m["unmounted"].as_u64(),
            m["active"].as_u64(),
        )
    };
    eventually("the evictor is done", || {
        counts(&mounts_stat(&worker)).1 == Some(3)
    });
    let m = mounts_stat(&worker);
    assert_eq!(
        counts(&m),
        (Some(4), Some(3), Some(1)),
        "each switch unmounts the other instance: {m}"
    );
    // `/metrics` reads the same table.
    let metrics = ureq::get(&format!("{}/metrics", worker.base_url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for line in [
        "farm_worker_mounts_active 1",
        "farm_worker_mounts_total{result=\"mounted\"} 4",
        "farm_worker_mounts_total{result=\"unmounted\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert_eq!(mounted_below(Some(pid), &mnt), vec![mnt.join("lru-b")]);
    let mut worker = worker;
    assert!(worker.stop(Duration::from_secs(30)));
    assert!(mounted_below(None, &mnt).is_empty());
}

#[test]
fn traversal_and_failed_mounts_are_refused_and_nothing_is_touched_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec = WorkloadSpec {
        ops: 60_000,
        key_space: 30_000,
        ..WorkloadSpec::default()
    };
    let c = capture_input(dir, small_options(), &spec).expect("input captured");
    let mnt = dir.join("mnt");
    let _guard = MountGuard(mnt.clone());
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"untouched").unwrap();
    // A symlink inside the export that leads out of it.
    std::os::unix::fs::symlink(&outside, c.root.join("escape")).unwrap();
    let nfs = NfsStandIn::new(dir, dir);
    let worker = start_mounting_worker(dir, &mnt, &nfs, &[]);
    let url = format!("{}/dcompact", worker.base_url());
    let root = c.root.display().to_string();
    let job = |attempt: u32, edit: &dyn Fn(&mut farm::protocol::job::Job)| {
        let mut j = c.job("trav", attempt);
        j.nfs_type = "nfs".into();
        j.nfs_mnt_src = nfs.source(&c.root);
        j.nfs_mnt_opt = "hard".into();
        edit(&mut j);
        serde_json::to_vec(&j).unwrap()
    };
    let refused = |body: Vec<u8>, what: &str| {
        let (code, answer) = post(&url, &body, &[]);
        assert_eq!(code, 412, "{what}: {answer}");
        answer["error"].as_str().unwrap().to_owned()
    };

    // A valid job runs through the mount.
    let (code, answer) = post(&url, &job(0, &|_| {}), &[]);
    assert_eq!(code, 200, "{answer}");
    let key = serde_json::to_vec(&c.job("trav", 0).key()).unwrap();
    eventually("the valid attempt is done", || {
        post(&format!("{}/probe", worker.base_url()), &key, &[]).1["status"] == "done"
    });

    let outside_s = outside.display().to_string();
    refused(job(1, &|j| j.dbname = format!("{root}/../outside")), "../");
    refused(
        job(2, &|j| j.output_dir = format!("{outside_s}/out")),
        "absolute elsewhere",
    );
    let e = refused(job(3, &|j| j.dbname = format!("{root}/escape")), "symlink");
    assert!(e.contains("outside"), "{e}");
    let e = refused(
        job(4, &|j| j.output_dir = format!("{root}/escape/out")),
        "symlink output",
    );
    assert!(e.contains("outside"), "{e}");
    // A mount that fails refuses the job with the mount's error.
    let e = refused(
        job(5, &|j| {
            j.instance_name = "broken".into();
            j.nfs_mnt_src = format!("{}:/denied", crate::nfs_stand_in::NFS_HOST);
        }),
        "failed mount",
    );
    assert!(
        e.contains("failed to mount") && e.contains("access denied by server"),
        "{e}"
    );
    let e = refused(job(6, &|j| j.nfs_type.clear()), "no nfs_type");
    assert!(e.contains("nfs_type"), "{e}");
    // A type the worker does not allow is refused before any command runs.
    let e = refused(
        job(7, &|j| {
            j.instance_name = "other".into();
            j.nfs_type = "nosuchfs".into();
        }),
        "type not allowed",
    );
    assert!(
        e.contains("nosuchfs") && e.contains("MOUNT_ALLOWED_TYPES"),
        "{e}"
    );
    assert_eq!(nfs.calls().len(), 2, "the valid mount and the denied one");

    let entries: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("keep")]);
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"untouched");
    let m = mounts_stat(&worker);
    assert_eq!(
        (m["mounted"].as_u64(), m["failed"].as_u64()),
        (Some(1), Some(1)),
        "{m}"
    );
    assert_eq!(
        mounted_below(Some(worker.pid()), &mnt),
        vec![mnt.join("trav")],
        "only the valid instance is mounted"
    );
}
