//! etcd end to end, with a real etcd on 127.0.0.1: workers register on
//! leases, a hoster with no static worker list finds them, spreads jobs over
//! them and wakes on their "done" events; a killed worker's lease expires
//! and the hoster stops choosing it; an etcd outage stops nothing.

use crate::harness::*;
use farm::etcd::keys::Registration;
use farm::etcd::local::LocalEtcd as EtcdServer;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use std::time::Duration;

const ROOT: &str = "/e2e";

/// A worker's settings for etcd; its hoster root is `d`'s.
fn etcd_env(etcd: &EtcdServer, lease_ttl: &str, d: &Dirs) -> Vec<(&'static str, String)> {
    vec![
        ("HOSTER_ROOTS", d.root.display().to_string()),
        ("ETCD_URL", etcd.addr()),
        ("ETCD_ROOT", ROOT.to_string()),
        ("ETCD_LEASE_TTL", lease_ttl.to_string()),
    ]
}

fn registrations(etcd: &EtcdServer) -> Vec<(String, Registration)> {
    list(etcd, &format!("{ROOT}/workers/"))
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_str(&v).expect("a registration")))
        .collect()
}

/// Keys and values below `prefix`.
fn list(etcd: &EtcdServer, prefix: &str) -> Vec<(String, String)> {
    let client = etcd.client().expect("etcd client");
    let (_, kvs) = client.list(prefix).expect("etcd answers");
    kvs.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

fn registered(etcd: &EtcdServer, w: &LocalWorker) -> bool {
    registrations(etcd)
        .iter()
        .any(|(k, r)| *k == format!("{ROOT}/workers/{}", w.addr) && r.url == w.base_url())
}

fn accepted(w: &LocalWorker) -> u64 {
    worker_stat(w)["counters"]["accepted"]
        .as_u64()
        .expect("accepted counter")
}

fn spec(seed: u64) -> WorkloadSpec {
    WorkloadSpec {
        ops: 40_000,
        key_space: 20_000,
        seed,
        ..WorkloadSpec::default()
    }
}

fn etcd_hoster(d: &Dirs, etcd: &EtcdServer) -> Hoster {
    let params = params(
        &d.root,
        &[],
        serde_json::json!({"etcd": {"url": etcd.addr()}, "etcd_root": ROOT}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    Hoster::open(&d.db, small_options(), cfs, &params)
}

#[test]
fn three_registered_workers_share_jobs_and_a_killed_one_leaves() {
    let d = dirs("db");
    let etcd = EtcdServer::start(d.tmp.path()).expect("etcd starts");
    let mut workers: Vec<LocalWorker> = ["w0", "w1", "w2"]
        .iter()
        .map(|n| start_worker(&d.tmp.path().join(n), &etcd_env(&etcd, "3s", &d)))
        .collect();
    eventually("three workers are registered", || {
        workers.iter().all(|w| registered(&etcd, w))
    });
    for (_, r) in registrations(&etcd) {
        assert!(r.capacity >= 1 && r.weight >= 1, "{r:?}");
        assert!(r.web_url.ends_with("/stat"), "{r:?}");
    }

    let hoster = etcd_hoster(&d, &etcd);
    let registry = prometheus::Registry::new();
    hoster
        .farm
        .register_metrics(&registry)
        .expect("metrics register");
    eventually("the hoster found the three workers", || {
        hoster.farm.workers().len() == 3
    });
    let mut model = Model::default();
    let mut seed = 0;
    // Registrations carry the load as it changes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busiest = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut busiest = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (_, r) in registrations(&etcd) {
                    busiest = busiest.max(r.running + r.waiting);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            busiest
        });
        while hoster.farm.stats().scheduled < 30 {
            assert!(seed < 40, "30 jobs: {:?}", hoster.farm.stats());
            hoster.churn(&mut model, &spec(seed));
            seed += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().expect("watcher thread")
    });
    assert!(busiest > 0, "a registration showed a running attempt");
    eventually("registrations show the workers idle again", || {
        registrations(&etcd)
            .iter()
            .all(|(_, r)| r.running + r.waiting == 0)
    });
    let stats = hoster.farm.stats();
    let counts: Vec<u64> = workers.iter().map(accepted).collect();
    println!("per worker {counts:?}, hoster {stats:?}");
    assert_eq!(stats.local_total(), 0, "every job ran remotely: {stats:?}");
    assert_eq!(counts.iter().sum::<u64>(), stats.scheduled);
    for c in &counts {
        assert!(
            *c * 6 >= stats.scheduled,
            "each worker has a fair share: {counts:?}"
        );
    }
    // Woken by etcd's "done" events, not by the next probe.
    assert_eq!(
        stats.done_by_watch + stats.done_by_probe,
        stats.remote_installed
    );
    assert!(
        stats.done_by_watch > stats.done_by_probe,
        "most waits were woken by etcd: {stats:?}"
    );
    let done_seen = |by: &str| -> u64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "farm_hoster_done_seen_total")
            .flat_map(|f| f.get_metric().iter())
            .filter(|m| m.get_label().iter().any(|l| l.value() == by))
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    };
    assert_eq!(done_seen("watch"), stats.done_by_watch);
    assert_eq!(done_seen("probe"), stats.done_by_probe);
    let published: u64 = workers
        .iter()
        .map(|w| {
            worker_stat(w)["etcd"]["done_published"]
                .as_u64()
                .expect("etcd in /stat")
        })
        .sum();
    assert!(
        published >= stats.remote_installed,
        "{published} done keys published"
    );
    let done_keys = list(&etcd, &format!("{ROOT}/dcompact-res/e2e/"));
    assert!(
        done_keys.len() as u64 >= stats.remote_installed
            && done_keys.iter().all(|(_, v)| v == "done"),
        "a done key per attempt: {} for {}",
        done_keys.len(),
        stats.remote_installed
    );

    // SIGKILL one worker while it runs an attempt: that attempt falls back
    // (or had just ended), nothing is lost (churn checks the data against
    // the model).
    let mut victim = workers.remove(1);
    let victim_url = victim.base_url();
    let before_kill = hoster.farm.stats();
    let killer = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while worker_stat(&victim)["running"].as_u64() == Some(0) {
            assert!(
                std::time::Instant::now() < deadline,
                "the victim never ran an attempt"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        victim.kill();
        victim
    });
    while !killer.is_finished() {
        hoster.churn(&mut model, &spec(seed));
        seed += 1;
    }
    let victim = killer.join().expect("killer thread");
    hoster.churn(&mut model, &spec(seed));
    seed += 1;
    let after_kill = hoster.farm.stats();
    println!("around the kill: {after_kill:?}");
    // The kill lands while the victim runs an attempt, or (the attempt
    // being short) just after it ended and its "done" reached the hoster:
    // then every job since was installed. Either way nothing is lost.
    let fell_back = after_kill.fallbacks["connection"] > before_kill.fallbacks["connection"];
    let all_installed = after_kill.remote_installed - before_kill.remote_installed
        == after_kill.scheduled - before_kill.scheduled;
    assert!(
        fell_back || all_installed,
        "the attempt in flight on the killed worker fell back to local: {after_kill:?}"
    );
    eventually("the killed worker's lease expired", || {
        !registered(&etcd, &victim)
    });
    eventually("the hoster dropped the killed worker", || {
        hoster
            .farm
            .workers()
            .iter()
            .all(|w| w.base_url != victim_url)
    });

    let before = hoster.farm.stats();
    let before_counts: Vec<u64> = workers.iter().map(accepted).collect();
    for _ in 0..3 {
        hoster.churn(&mut model, &spec(seed));
        seed += 1;
    }
    let after = hoster.farm.stats();
    let after_counts: Vec<u64> = workers.iter().map(accepted).collect();
    println!("after the kill: {after_counts:?} (from {before_counts:?}), hoster {after:?}");
    let remote = after.scheduled - before.scheduled;
    assert!(remote > 0, "jobs still ran remotely");
    assert_eq!(
        after_counts.iter().sum::<u64>() - before_counts.iter().sum::<u64>(),
        remote,
        "every job went to a live worker"
    );
    assert_eq!(
        after.submit_failures, before.submit_failures,
        "the hoster never tried the dead worker again"
    );
    assert_eq!(after.local_total(), before.local_total());
}

#[test]
fn workers_and_hoster_ride_out_an_etcd_outage() {
    let d = dirs("db");
    let mut etcd = EtcdServer::start(d.tmp.path()).expect("etcd starts");
    // A long lease: a key that vanishes sooner was deleted on purpose.
    let mut workers: Vec<LocalWorker> = ["w0", "w1"]
        .iter()
        .map(|n| start_worker(&d.tmp.path().join(n), &etcd_env(&etcd, "60s", &d)))
        .collect();
    eventually("two workers are registered", || {
        workers.iter().all(|w| registered(&etcd, w))
    });
    let hoster = etcd_hoster(&d, &etcd);
    eventually("the hoster found both workers", || {
        hoster.farm.workers().len() == 2
    });
    let mut model = Model::default();
    hoster.churn(&mut model, &spec(0));

    etcd.kill();
    let before = hoster.farm.stats();
    let before_counts: Vec<u64> = workers.iter().map(accepted).collect();
    for seed in 1..3 {
        hoster.churn(&mut model, &spec(seed));
    }
    let during = hoster.farm.stats();
    let during_counts: Vec<u64> = workers.iter().map(accepted).collect();
    println!("during the outage: {during_counts:?} (from {before_counts:?}), {during:?}");
    assert_eq!(hoster.farm.workers().len(), 2, "known workers are kept");
    assert!(
        during.scheduled > before.scheduled,
        "jobs still ran remotely"
    );
    assert_eq!(during.local_total(), 0, "nothing fell back: {during:?}");
    for (b, a) in before_counts.iter().zip(&during_counts) {
        assert!(a > b, "both workers served: {during_counts:?}");
    }
    assert!(!hoster.farm.watching_completions());
    for w in &workers {
        let e = &worker_stat(w)["etcd"];
        assert_eq!(e["registered"], false, "{e}");
        assert!(
            e["last_error"]
                .as_str()
                .is_some_and(|x| x.contains("unreachable")),
            "{e}"
        );
    }

    etcd.restart_empty().expect("etcd restarts");
    eventually("registrations return", || {
        workers.iter().all(|w| registered(&etcd, w))
    });
    for w in &workers {
        let e = &worker_stat(w)["etcd"];
        assert!(
            e["registrations"].as_u64() >= Some(2),
            "registered anew: {e}"
        );
    }
    eventually("the hoster watches again", || {
        hoster.farm.watching_completions()
    });
    // The emptied etcd was listed anew: the workers are back in rotation
    // once the hoster has seen their new registrations (until then a job
    // would find no worker and compact locally).
    eventually("the hoster knows both workers again", || {
        hoster.farm.workers().len() == 2
    });
    let before = hoster.farm.stats();
    hoster.churn(&mut model, &spec(3));
    let after = hoster.farm.stats();
    assert!(
        after.done_by_watch > before.done_by_watch,
        "done events arrive again: {after:?}"
    );
    assert_eq!(after.local_total(), 0, "nothing fell back: {after:?}");

    // A worker that stops gracefully deregisters at once, long before its
    // 60 s lease would end.
    let mut leaving = workers.remove(0);
    assert!(
        leaving.stop(Duration::from_secs(20)),
        "worker exits on SIGTERM"
    );
    assert!(!registered(&etcd, &leaving), "deregistered before exiting");
    eventually("the hoster dropped the stopped worker", || {
        hoster.farm.workers().len() == 1
    });
}

/// A watch stays open through quiet periods longer than its read timeout:
/// a key put after them arrives as a change, without a second listing.
#[test]
fn a_watch_outlives_quiet_periods() {
    use farm::etcd::client::{KeyValue, WatchEvent};
    use farm::etcd::follow::{Follow, Follower};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Seen {
        listings: usize,
        puts: Vec<String>,
    }
    struct Record(Arc<Mutex<Seen>>);
    impl Follow for Record {
        fn listed(&mut self, _: Vec<KeyValue>) {
            self.0.lock().unwrap().listings += 1;
        }
        fn changed(&mut self, event: WatchEvent) {
            if let WatchEvent::Put(kv) = event {
                self.0.lock().unwrap().puts.push(kv.key);
            }
        }
    }

    let d = dirs("db");
    let etcd = EtcdServer::start(d.tmp.path()).expect("etcd starts");
    let seen = Arc::new(Mutex::new(Seen::default()));
    // The client's watch reads time out after 1 s.
    let follower = Follower::start(
        "test-follower",
        etcd.client().expect("client"),
        "/quiet/".into(),
        Record(seen.clone()),
    )
    .expect("follower starts");
    eventually("the watch is open", || follower.is_live());
    std::thread::sleep(Duration::from_millis(2500));
    let writer = etcd.client().expect("client");
    writer.put("/quiet/a", "1", None).expect("put");
    eventually("the put arrives", || !seen.lock().unwrap().puts.is_empty());
    let s = seen.lock().unwrap();
    assert_eq!(s.puts, ["/quiet/a"]);
    assert_eq!(s.listings, 1, "the first stream carried it");
}
