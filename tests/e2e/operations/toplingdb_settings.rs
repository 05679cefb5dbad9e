//! ToplingDB's settings as its users write them, one test each, with
//! ToplingDB's exact spelling (its README, `dcompact_etcd.cc` and
//! `dcompact_worker.cpp`): each is accepted with ToplingDB's meaning.

use super::https_front::HttpsFront;
use super::worker_at::start_worker_at;
use crate::dynamic_mount::{start_mounting_worker, Instance, MountGuard};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::harness::*;
use crate::nfs_stand_in::NfsStandIn;
use farm::etcd::keys::Registration;
use farm::etcd::local::LocalEtcd;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use serde_json::{json, Value};
use std::path::Path;

fn spec(seed: u64) -> WorkloadSpec {
    WorkloadSpec {
        ops: 40_000,
        key_space: 10_000,
        seed,
        ..WorkloadSpec::default()
    }
}

fn open(db: &Path, params: &str) -> Hoster {
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    Hoster::open(db, small_options(), cfs, params)
}

/// `ETCD_PASSWORD` without `ETCD_USERNAME`: ToplingDB ignores the
/// password (it connects without credentials); so does the worker, with a
/// warning, and it registers.
#[test]
fn etcd_password_without_etcd_username_is_ignored() {
    let d = dirs("db");
    let dir = d.tmp.path();
    let etcd = LocalEtcd::start(dir).expect("etcd starts");
    let mut worker = start_worker_at(
        dir,
        "worker",
        "127.0.0.1:0",
        &[
            ("ETCD_URL", etcd.addr()),
            ("ETCD_PASSWORD", "topling@123".into()),
        ],
    );
    eventually("the worker registered", || {
        worker_stat(&worker)["etcd"]["registered"] == true
    });
    let log = std::fs::read_to_string(dir.join("worker.log")).unwrap();
    assert!(
        log.contains("ETCD_PASSWORD is set without ETCD_USERNAME"),
        "{log}"
    );
    assert!(!log.contains("topling@123"), "the password is never logged");

    // SIGUSR1 drains it: it leaves etcd, then exits by itself.
    let client = etcd.client().unwrap();
    assert_eq!(client.list("/dcompact/workers/").unwrap().1.len(), 1);
    worker.signal(nix::sys::signal::Signal::SIGUSR1).unwrap();
    eventually("the drained worker left etcd", || {
        client.list("/dcompact/workers/").unwrap().1.is_empty()
    });
    let status = worker.wait_exit(std::time::Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// A `CompactionExecutorFactory` entry is found by its `class`, whatever
/// its name; another class is refused, naming it.
#[test]
fn compaction_executor_factory_is_found_by_class_under_any_name() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[]);
    let inner: Value = serde_json::from_str(&params(&d.root, &[worker.base_url()], json!({})))
        .expect("params are JSON");
    let config = json!({"CompactionExecutorFactory": {
        "dcompact-ssd": {"class": "DcompactEtcd", "params": inner.clone()}
    }});
    let hoster = open(&d.db, &config.to_string());
    hoster.churn(&mut Model::default(), &spec(71));
    assert!(hoster.farm.stats().remote_installed > 0);

    let wrong = json!({"CompactionExecutorFactory": {
        "dcompact": {"class": "LocalCompaction", "params": inner}
    }});
    let mut opts = small_options();
    let err = farm::hoster::enable(&mut opts, &d.db.display().to_string(), &wrong.to_string())
        .err()
        .expect("another class is refused")
        .to_string();
    assert!(
        err.contains("DcompactEtcd") && err.contains("LocalCompaction"),
        "{err}"
    );
}

/// A hoster with `nfs_mnt_src`, ToplingDB's `nfs_mnt_flags` and no
/// `nfs_type`, against a worker with `NFS_DYNAMIC_MOUNT`: `dir` holds the
/// export; returns the stand-in NFS client's calls.
fn mount_with(dir: &Path, name: &'static str, extra: Value, allowed: &str) -> Vec<Vec<String>> {
    let mnt = dir.join("mnt");
    let _guard = MountGuard(mnt.clone());
    let nfs = NfsStandIn::new(dir, dir);
    let worker = start_mounting_worker(
        dir,
        &mnt,
        &nfs,
        &[(
            "MOUNT_ALLOWED_OPTIONS",
            format!(
                "{},{allowed}",
                farm::worker::mounts::policy::DEFAULT_OPTIONS
            ),
        )],
    );
    let inst = Instance::new(dir, name);
    let mut p = json!({"instance_name": name, "nfs_mnt_src": inst.source()});
    for (k, v) in extra.as_object().into_iter().flatten() {
        p[k] = v.clone();
    }
    let hoster = open(&inst.db, &params(&inst.root, &[worker.base_url()], p));
    hoster.churn(&mut Model::default(), &spec(72));
    assert!(
        hoster.farm.stats().remote_installed > 0,
        "compacted remotely through the mount"
    );
    nfs.calls()
}

/// `nfs_type` unset: ToplingDB's default `nfs` once `nfs_mnt_src` is set.
#[test]
fn nfs_type_defaults_to_nfs_when_nfs_mnt_src_is_set() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = mount_with(tmp.path(), "deflt", json!({}), "");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0][0], "mount.nfs");
    assert_eq!(calls[0][4], "nosuid,nodev,noexec");
}

/// `nfs_mnt_flags` (ToplingDB's README: `"noatime,rdma"`): each flag
/// becomes a mount option, checked by the worker's `MOUNT_ALLOWED_OPTIONS`
/// (here extended by `rdma`) like any option.
#[test]
fn nfs_mnt_flags_become_mount_options() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = mount_with(
        tmp.path(),
        "flags",
        json!({"nfs_mnt_opt": "nolock", "nfs_mnt_flags": "noatime,rdma"}),
        "rdma",
    );
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0][0], "mount.nfs");
    assert_eq!(calls[0][4], "nolock,noatime,rdma,nosuid,nodev,noexec");
}

/// `http_workers` objects: `url` submits, `base_url` probes and cancels,
/// `web_url` is where people look (each a different address here, as
/// behind ToplingDB's reverse proxies).
#[test]
fn http_workers_url_base_url_and_web_url_each_do_their_part() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[]);
    let outputs = d.db.join("farm-output");
    let submit = FaultProxy::start(worker.base_url(), outputs.clone(), Fault::None);
    let probe = FaultProxy::start(worker.base_url(), outputs, Fault::None);
    let entry = json!({
        "url": format!("{}/dcompact", submit.url()),
        "base_url": probe.url(),
        "web_url": "https://web.page.proxy/worker-1",
        "weight": 100,
    });
    let p = params(
        &d.root,
        &[],
        json!({"http_workers": [entry, "//end_http_workers"]}),
    );
    let hoster = open(&d.db, &p);
    hoster.churn(&mut Model::default(), &spec(73));
    let stats = hoster.farm.stats();
    assert!(stats.remote_installed > 0, "{stats:?}");
    assert_eq!(
        submit.jobs().len() as u64,
        stats.scheduled,
        "jobs go to url"
    );
    assert!(submit.results().is_empty(), "no probe goes to url");
    assert!(probe.jobs().is_empty(), "no job goes to base_url");
    assert!(
        probe.results().len() as u64 >= stats.remote_installed,
        "results come from base_url"
    );
    let listed = hoster.farm.workers();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].stat_url(), "https://web.page.proxy/worker-1/stat");
}

/// An `https://` worker with ToplingDB's `ca`: verified against that CA
/// through rustls; the same worker without the `ca` fails verification and
/// the hoster compacts locally.
#[test]
fn https_workers_are_verified_against_their_ca() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[]);
    let front = HttpsFront::start(&d.tmp.path().join("pki"), &worker.addr);
    let with_ca = json!({"url": front.url(), "ca": front.ca.display().to_string()});
    let hoster = open(
        &d.db,
        &params(&d.root, &[], json!({"http_workers": [with_ca]})),
    );
    hoster.churn(&mut Model::default(), &spec(74));
    let stats = hoster.farm.stats();
    assert!(stats.remote_installed > 0, "{stats:?}");
    assert!(front.requests() > 0);
    drop(hoster);

    let d2 = dirs("db");
    let untrusted = open(
        &d2.db,
        &params(&d2.root, &[], json!({"http_workers": [front.url()]})),
    );
    untrusted.churn(&mut Model::default(), &spec(75));
    let stats = untrusted.farm.stats();
    assert_eq!(stats.remote_installed, 0, "{stats:?}");
    assert!(stats.fallbacks["connection"] > 0, "{stats:?}");
}

/// `ADVERTISE_ADDR` as ToplingDB takes it, a URL with a scheme (a
/// reverse proxy): the `addr` of `/dcompact`'s answer, the worker's
/// identity, its pages' links and its etcd registration.
#[test]
fn advertise_addr_may_be_a_url() {
    let d = dirs("db");
    let dir = d.tmp.path();
    let etcd = LocalEtcd::start(dir).expect("etcd starts");
    let proxy = "https://dcompact.example.com/worker-1";
    let worker = start_worker_at(
        dir,
        "worker",
        "127.0.0.1:0",
        &[
            ("ADVERTISE_ADDR", format!("{proxy}/")),
            ("ETCD_URL", etcd.addr()),
        ],
    );
    let c = crate::admission::capture(dir);
    let (code, answer) = submit_job(&worker, &c.job("adv", 0));
    assert_eq!(
        (code, answer["addr"].as_str()),
        (200, Some(proxy)),
        "{answer}"
    );
    assert_eq!(worker_identity(&worker), format!("dcompact-worker@{proxy}"));
    eventually("the attempt ended", || {
        worker_stat(&worker)["counters"]["succeeded"].as_u64() == Some(1)
    });
    let page = ureq::get(&format!("{}/list", worker.base_url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        page.contains(&format!("href=\"{proxy}/attempts/adv/")),
        "{page}"
    );
    eventually("registered", || {
        worker_stat(&worker)["etcd"]["registered"] == true
    });
    let client = etcd.client().unwrap();
    let (_, kvs) = client.list("/dcompact/workers/").unwrap();
    assert_eq!(kvs.len(), 1);
    assert_eq!(
        kvs[0].key,
        "/dcompact/workers/dcompact.example.com/worker-1"
    );
    let r: Registration = serde_json::from_str(&kvs[0].value).unwrap();
    assert_eq!(
        (r.url.as_str(), r.web_url.as_str()),
        (proxy, "https://dcompact.example.com/worker-1/stat")
    );
}
