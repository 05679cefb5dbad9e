//! The zipserver: MULTI_PROCESS children send their output blocks to one
//! compression sidecar; the SSTs stay plain RocksDB files, and a zipserver
//! that dies mid-job costs CPU (in-process compression), never a job.
//!
//! Each test has its own instance name: attempt names (and so the attempt
//! markers a worker uses to end an attempt's processes) must not collide
//! between workers running at once on this host.

use crate::harness::*;
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options, DB};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `zipserver` binary (of the zipserver crate), built beside the
/// worker by `cargo build --workspace`.
fn zipserver_bin() -> PathBuf {
    worker_bin().with_file_name("zipserver")
}

fn zip_worker(dir: &Path, options: &str) -> LocalWorker {
    let worker = start_worker(
        dir,
        &[
            ("MULTI_PROCESS", "true".into()),
            ("MAX_PARALLEL_COMPACTIONS", "2".into()),
            ("ZIP_SERVER_OPTIONS", options.into()),
        ],
    );
    eventually("the worker's zipserver is up", || {
        zipserver_addr(&worker).is_some()
    });
    worker
}

/// The worker's `/stat` view of its zipserver.
fn zip_view(worker: &LocalWorker) -> Value {
    worker_stat(worker)["zipserver"].clone()
}

/// The running zipserver's HTTP address and pid, from the worker.
fn zipserver_addr(worker: &LocalWorker) -> Option<(String, u64)> {
    let s = &zip_view(worker)["sidecar"];
    Some((s["http_addr"].as_str()?.to_owned(), s["pid"].as_u64()?))
}

fn zipserver_stat(addr: &str) -> Value {
    get_json(&format!("http://{addr}/stat?html=0"))
}

fn snappy_options() -> Options {
    let mut o = small_options();
    o.set_compression_type(DBCompressionType::Snappy);
    o
}

/// Per attempt: its name and what its child counted (`zip_counts.json`).
fn child_counts(worker_root: &Path) -> Vec<(String, Value)> {
    files_named(worker_root, "zip_counts.json")
        .into_iter()
        .map(|p| {
            let name = p
                .parent()
                .unwrap()
                .strip_prefix(worker_root)
                .unwrap()
                .display()
                .to_string();
            let counts = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (name, counts)
        })
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Runs `plain-scan` (no farm code) over the DB and checks every entry
/// against the model.
fn plain_scan_equals_model(db: &Path, model: &Model) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plain-scan"))
        .arg(db)
        .output()
        .expect("plain-scan runs");
    assert!(
        out.status.success(),
        "plain-scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("farm_code=absent"));
    for (entries, line) in lines.enumerate() {
        if let Some(n) = line.strip_prefix("entries=") {
            assert_eq!(n.parse::<usize>().unwrap(), entries);
            assert_eq!(entries, model.len(), "as many entries as the model");
            return;
        }
        let mut f = line.split('\t');
        let (cf, k, v) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        assert_eq!(cf, "default");
        let key = unhex(k);
        assert_eq!(
            model.get(&key),
            Some(&unhex(v)[..]),
            "key {}",
            String::from_utf8_lossy(&key)
        );
    }
    panic!("plain-scan output ended without an entries line");
}

#[test]
fn ssts_compressed_by_the_zipserver_are_plain_rocksdb_files() {
    let d = dirs("db");
    let mut worker = zip_worker(
        d.tmp.path(),
        "listening_ports=127.0.0.1:0:num_threads=2:memory_budget=16M",
    );
    let identity = worker_stat(&worker)["identity"]
        .as_str()
        .unwrap()
        .to_owned();
    let (zip_addr, _) = zipserver_addr(&worker).unwrap();
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": "zip-plain"}),
    );
    let cfs = || vec![ColumnFamilyDescriptor::new("default", snappy_options())];
    let hoster = Hoster::open(&d.db, snappy_options(), cfs(), &params);
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 120_000,
        key_space: 40_000,
        seed: 71,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut model, &spec);
    let hoster_stats = hoster.farm.stats();
    assert!(hoster_stats.remote_installed > 0, "{hoster_stats:?}");
    drop(hoster);

    // The worker's children: every block reached FarmZipServer and went
    // to the zipserver; none was compressed in-process.
    let worker_root = d.tmp.path().join("worker");
    let view = zip_view(&worker);
    let counts = &view["counts"];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    assert!(n(counts, "remote_blocks") > 0, "{view}");
    assert_eq!(n(counts, "fallback_blocks"), 0, "{view}");
    assert_eq!(
        n(counts, "blocks_seen"),
        n(counts, "remote_blocks"),
        "every block the manager saw went remote: {view}"
    );

    // The zipserver's bytes in, per client (attempt), equal the bytes its
    // child sent; so do the totals.
    let zs = zipserver_stat(&zip_addr);
    let children = child_counts(&worker_root);
    assert!(!children.is_empty());
    for (attempt, c) in &children {
        let client = &zs["clients"][attempt];
        assert_eq!(
            n(client, "bytes_in"),
            n(c, "remote_bytes_in"),
            "{attempt}: {zs}"
        );
        assert_eq!(n(client, "requests"), n(c, "remote_blocks"), "{attempt}");
        assert_eq!(
            n(client, "bytes_out"),
            n(c, "remote_bytes_out"),
            "{attempt}"
        );
    }
    assert_eq!(n(&zs, "bytes_in"), n(counts, "remote_bytes_in"), "{zs}");
    assert!(
        n(&zs, "bytes_out") < n(&zs, "bytes_in"),
        "blocks shrank: {zs}"
    );
    assert_eq!(n(&zs, "num_threads"), 2);
    let metrics = ureq::get(&format!("http://{zip_addr}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("zipserver_bytes_in_total"), "{metrics}");
    let html = ureq::get(&format!("http://{zip_addr}/stat"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(html.contains("queue depth") && html.contains(&children[0].0));
    let worker_html = ureq::get(&format!("{}/stat", worker.base_url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(worker_html.contains("<h2>zipserver</h2>") && worker_html.contains(&zip_addr));

    // The live SSTs were written by the worker with the built-in codec:
    // format_version 7 names the manager's CompatibilityName and the types
    // used (01 = Snappy), exactly what a plain RocksDB writes, not
    // FarmZipServer.
    {
        let db = DB::open_cf_descriptors(&snappy_options(), &d.db, cfs()).unwrap();
        let ssts = live_ssts(&db, &d.db);
        assert!(!ssts.is_empty());
        for sst in &ssts {
            assert_eq!(sst.props.db_host_id, identity);
            assert_eq!(sst.props.compression_name, "BuiltinV2;01;");
        }
    }
    // A process with no farm code reads every block, checksums verified,
    // and finds exactly the model.
    plain_scan_equals_model(&d.db, &model);

    // The worker stops its zipserver when it stops.
    let (_, pid) = zipserver_addr(&worker).unwrap();
    assert!(
        worker.stop(Duration::from_secs(30)),
        "the worker exits on SIGTERM"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the zipserver {pid} ended with the worker"
    );
    assert!(
        !worker_root.join("zipserver.sock").exists(),
        "its socket is removed"
    );
}

#[test]
fn a_killed_zipserver_costs_no_job_and_comes_back() {
    let d = dirs("db");
    let worker = zip_worker(
        d.tmp.path(),
        "listening_ports=127.0.0.1:0:num_threads=1:client_timeout=500ms",
    );
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": "zip-killed"}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", snappy_options())];
    let hoster = Hoster::open(&d.db, snappy_options(), cfs, &params);
    let (_, first_pid) = zipserver_addr(&worker).unwrap();

    // While the hoster writes and compacts, kill the zipserver whenever it
    // is serving blocks, three times.
    let kills = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let mut kills = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while kills.len() < 3 && std::time::Instant::now() < deadline {
                if let Some((addr, pid)) = zipserver_addr(&worker) {
                    let busy = ureq::get(&format!("http://{addr}/stat?html=0"))
                        .call()
                        .ok()
                        .and_then(|r| r.into_json::<Value>().ok())
                        .is_some_and(|z| z["connections"].as_i64().unwrap_or(0) > 0);
                    if busy && !kills.contains(&pid) {
                        // SAFETY: SIGKILL to the worker's zipserver.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        kills.push(pid);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            kills
        });
        // Rounds until the killer is done (at least three), at most twenty.
        let mut model = Model::default();
        for seed in 0..20 {
            let spec = WorkloadSpec {
                ops: 60_000,
                key_space: 40_000,
                seed: 90 + seed,
                ..WorkloadSpec::default()
            };
            hoster.churn(&mut model, &spec);
            if seed >= 2 && killer.is_finished() {
                break;
            }
        }
        let kills = killer.join().unwrap();
        eventually("the worker restarted its zipserver", || {
            zipserver_addr(&worker).is_some_and(|(_, pid)| !kills.contains(&pid))
        });
        // A last round against the zipserver that came back.
        hoster.churn(
            &mut model,
            &WorkloadSpec {
                ops: 60_000,
                key_space: 40_000,
                seed: 200,
                ..WorkloadSpec::default()
            },
        );
        kills
    });
    assert_eq!(kills.len(), 3, "the zipserver was killed three times");
    assert_eq!(kills[0], first_pid);

    // No job failed: every attempt succeeded, every result was installed.
    let stat = worker_stat(&worker);
    let failed = failed_attempts(&stat);
    assert_eq!(failed, 0, "{}", stat["counters"]);
    let hoster_stats = hoster.farm.stats();
    assert_eq!(hoster_stats.local_total(), 0, "{hoster_stats:?}");
    assert_eq!(
        hoster_stats.remote_installed,
        stat["counters"]["succeeded"].as_u64().unwrap()
    );

    // The worker saw the deaths and restarted it; its children fell back
    // for some blocks and used the zipserver for others.
    let view = &stat["zipserver"];
    let sidecar = &view["sidecar"];
    assert!(sidecar["restarts"].as_u64().unwrap() >= 3, "{view}");
    assert_eq!(sidecar["last_exit"], "signal 9", "{view}");
    let counts = &view["counts"];
    let n = |k: &str| counts[k].as_u64().unwrap();
    assert!(n("fallback_blocks") > 0, "{view}");
    assert!(n("remote_blocks") > 0, "{view}");
    assert_eq!(n("blocks_seen"), n("remote_blocks") + n("fallback_blocks"));
    let logs = attempt_logs(&d.tmp.path().join("worker")).join("\n");
    assert!(
        logs.lines()
            .any(|l| l.contains("zip ") && !l.contains("fallback_blocks=0")),
        "an attempt LOG records its fallbacks"
    );

    // The zipserver that came back serves blocks again.
    let (addr, pid) = zipserver_addr(&worker).unwrap();
    assert!(!kills.contains(&pid));
    let zs = zipserver_stat(&addr);
    assert_eq!(zs["pid"].as_u64(), Some(pid));
    assert!(zs["requests"].as_u64().unwrap() > 0, "{zs}");
}

#[test]
fn bad_zip_server_options_are_refused_with_the_key_named() {
    let out = std::process::Command::new(zipserver_bin())
        .env(
            "ZIP_SERVER_OPTIONS",
            "listening_ports=127.0.0.1:0:num_thread=2",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key \"num_thread\""), "{err}");

    // Without MULTI_PROCESS the option has no effect: the worker starts,
    // says so in its log, and runs no zipserver.
    let d = dirs("db");
    let log_path = d.tmp.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker = LocalWorker::start_logging_to(
        worker_bin(),
        &[
            (
                "WORKER_DB_ROOT",
                d.tmp.path().join("w").display().to_string(),
            ),
            ("HOSTER_ROOTS", d.root.display().to_string()),
            ("ZIP_SERVER_OPTIONS", "num_threads=2".into()),
            ("MULTI_PROCESS", "false".into()),
            ("RUST_LOG", "warn".into()),
        ],
        log.into(),
    )
    .expect("the worker starts");
    assert!(worker_stat(&worker)["zipserver"].is_null());
    assert!(worker.stop(Duration::from_secs(10)));
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("WARN")
            && text.contains("ZIP_SERVER_OPTIONS has no effect without MULTI_PROCESS"),
        "{text}"
    );
}

#[test]
fn multi_process_runs_a_zipserver_only_when_asked() {
    // Unset: none (the figures in docs/BENCHMARKS.md do not support it by
    // default).
    let d = dirs("db");
    let mut unset = start_worker(d.tmp.path(), &[("MULTI_PROCESS", "true".into())]);
    assert!(worker_stat(&unset)["zipserver"].is_null());
    assert!(unset.stop(Duration::from_secs(30)));
    assert!(!d.tmp.path().join("worker/zipserver.log").exists());

    // `on`: the defaults, HTTP on a free loopback port.
    let d = dirs("db");
    let mut on = start_worker(
        d.tmp.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("ZIP_SERVER_OPTIONS", "on".into()),
        ],
    );
    eventually("the default zipserver is up", || {
        zipserver_addr(&on).is_some()
    });
    let (addr, _) = zipserver_addr(&on).unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let zs = zipserver_stat(&addr);
    assert_eq!(
        zs["num_threads"].as_u64(),
        std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u64),
        "the defaults: one compression thread per CPU"
    );
    assert!(on.stop(Duration::from_secs(30)));

    let d = dirs("db");
    let off = start_worker(
        d.tmp.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("ZIP_SERVER_OPTIONS", "off".into()),
        ],
    );
    assert!(worker_stat(&off)["zipserver"].is_null());
    assert!(!d.tmp.path().join("worker/zipserver.log").exists());
}

/// A zipserver someone else runs, as a child of the test.
struct External(std::process::Child);

impl Drop for External {
    fn drop(&mut self) {
        // SAFETY: SIGCONT then SIGKILL to our own child, in case a test
        // left it stopped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGCONT) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stalled_zipserver_is_waited_for_only_until_the_bound() {
    use std::io::{BufRead, BufReader};
    let d = dirs("db");
    let socket = d.tmp.path().join("zip.sock");
    let mut child = std::process::Command::new(zipserver_bin())
        .env(
            "ZIP_SERVER_OPTIONS",
            format!(
                "listening_ports=127.0.0.1:0:num_threads=1:unix_socket={}",
                socket.display()
            ),
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let zipserver = External(child);
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    // The worker uses it (ZIP_SERVER_SOCKET) and starts none of its own.
    let worker = start_worker(
        d.tmp.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("ZIP_SERVER_SOCKET", socket.display().to_string()),
            ("ZIP_SERVER_OPTIONS", "client_timeout=300ms".into()),
        ],
    );
    assert!(zip_view(&worker)["sidecar"].is_null());
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": "zip-stalled"}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", snappy_options())];
    let hoster = Hoster::open(&d.db, snappy_options(), cfs, &params);
    let mut model = Model::default();
    let spec = |seed| WorkloadSpec {
        ops: 40_000,
        key_space: 30_000,
        seed,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut model, &spec(300));
    let before = zip_view(&worker)["counts"].clone();
    assert!(before["remote_blocks"].as_u64().unwrap() > 0, "{before}");

    // Stalled (SIGSTOP): blocks wait at most client_timeout, then are
    // compressed in-process; the jobs succeed.
    let pid = zipserver.0.id() as i32;
    // SAFETY: SIGSTOP to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    hoster.churn(&mut model, &spec(301));
    let stalled = zip_view(&worker)["counts"].clone();
    let grew = |a: &Value, b: &Value, k: &str| b[k].as_u64().unwrap() - a[k].as_u64().unwrap();
    assert!(grew(&before, &stalled, "fallback_blocks") > 0, "{stalled}");
    assert_eq!(grew(&before, &stalled, "remote_blocks"), 0, "{stalled}");

    // Running again: blocks go to it again.
    // SAFETY: SIGCONT to our own child.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    hoster.churn(&mut model, &spec(302));
    let after = zip_view(&worker)["counts"].clone();
    assert!(grew(&stalled, &after, "remote_blocks") > 0, "{after}");

    let stat = worker_stat(&worker);
    let failed = failed_attempts(&stat);
    let ended: Vec<String> = attempt_logs(&d.tmp.path().join("worker"))
        .iter()
        .flat_map(|l| {
            l.lines()
                .filter(|l| l.contains("outcome="))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(failed, 0, "{} {ended:?}", stat["counters"]);
    assert_eq!(hoster.farm.stats().local_total(), 0);
    let zs = zipserver_stat(&addr);
    assert!(
        zs["bytes_in"].as_u64().unwrap() >= after["remote_bytes_in"].as_u64().unwrap(),
        "the zipserver received at least what the children counted as sent: {zs}"
    );
}

#[test]
fn blocks_beyond_the_memory_budget_are_compressed_in_process() {
    let d = dirs("db");
    // 1 KiB: no 4 KiB block (plus its output buffer) ever fits.
    let worker = zip_worker(
        d.tmp.path(),
        "listening_ports=127.0.0.1:0:num_threads=1:memory_budget=1K",
    );
    let (addr, _) = zipserver_addr(&worker).unwrap();
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": "zip-budget"}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", snappy_options())];
    let hoster = Hoster::open(&d.db, snappy_options(), cfs, &params);
    let mut model = Model::default();
    hoster.churn(
        &mut model,
        &WorkloadSpec {
            ops: 30_000,
            key_space: 20_000,
            seed: 400,
            ..WorkloadSpec::default()
        },
    );
    assert!(hoster.farm.stats().remote_installed > 0);
    assert_eq!(hoster.farm.stats().local_total(), 0);
    let counts = &zip_view(&worker)["counts"];
    assert_eq!(counts["remote_blocks"], 0, "{counts}");
    assert!(counts["fallback_blocks"].as_u64().unwrap() > 0, "{counts}");
    let zs = zipserver_stat(&addr);
    assert!(
        zs["errors"].as_u64().unwrap() > 0,
        "refused for the budget: {zs}"
    );
    assert_eq!(zs["bytes_in"], 0, "{zs}");
    assert_eq!(zs["budget_bytes"], 0, "nothing held after: {zs}");
}

#[test]
fn a_zipserver_killed_with_blocks_in_flight_loses_and_repeats_no_block() {
    let d = dirs("db");
    // One compression thread, ZSTD at level 19 and 8 blocks in flight per
    // output: blocks queue up in the children's rings. A client_timeout far
    // beyond the test: children must learn of the death from their ring's
    // connection, not wait for the bound.
    let worker = zip_worker(
        d.tmp.path(),
        "listening_ports=127.0.0.1:0:num_threads=1:client_timeout=60s:blocks_in_flight=8",
    );
    let zstd = || {
        let mut o = small_options();
        o.set_compression_type(DBCompressionType::Zstd);
        o.set_compression_options(-14, 19, 0, 0);
        o
    };
    let params = params(
        &d.root,
        &[worker.base_url()],
        serde_json::json!({"instance_name": "zip-inflight"}),
    );
    let cfs = || vec![ColumnFamilyDescriptor::new("default", zstd())];
    let hoster = Hoster::open(&d.db, zstd(), cfs(), &params);
    let mut model = Model::default();

    let kills = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let mut kills = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while kills.len() < 2 && std::time::Instant::now() < deadline {
                if let Some((addr, pid)) = zipserver_addr(&worker) {
                    let in_flight = ureq::get(&format!("http://{addr}/stat?html=0"))
                        .call()
                        .ok()
                        .and_then(|r| r.into_json::<Value>().ok())
                        .and_then(|z| z["ring_in_flight"].as_u64())
                        .unwrap_or(0);
                    if in_flight >= 2 && !kills.contains(&pid) {
                        // SAFETY: SIGKILL to the worker's zipserver.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                        kills.push(pid);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            kills
        });
        for seed in 0..20 {
            let spec = WorkloadSpec {
                ops: 40_000,
                key_space: 30_000,
                seed: 500 + seed,
                compressible: 0.5,
                ..WorkloadSpec::default()
            };
            hoster.churn(&mut model, &spec);
            if killer.is_finished() {
                break;
            }
        }
        killer.join().unwrap()
    });
    assert_eq!(
        kills.len(),
        2,
        "the zipserver was killed twice with blocks in flight"
    );
    eventually("the worker restarted its zipserver", || {
        zipserver_addr(&worker).is_some_and(|(_, pid)| !kills.contains(&pid))
    });
    hoster.churn(
        &mut model,
        &WorkloadSpec {
            ops: 40_000,
            key_space: 30_000,
            seed: 600,
            compressible: 0.5,
            ..WorkloadSpec::default()
        },
    );

    // No job failed or fell back to the hoster.
    let stat = worker_stat(&worker);
    assert_eq!(failed_attempts(&stat), 0, "{}", stat["counters"]);
    let hoster_stats = hoster.farm.stats();
    assert_eq!(hoster_stats.local_total(), 0, "{hoster_stats:?}");
    drop(hoster);

    // Every block a child handed to the zipserver got exactly one answer:
    // from the zipserver, or compressed in-process because the zipserver
    // went away (never because the time bound passed).
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let children = child_counts(&d.tmp.path().join("worker"));
    let mut released = 0;
    for (attempt, c) in &children {
        assert_eq!(
            n(c, "blocks_seen"),
            n(c, "remote_blocks") + n(c, "fallback_blocks"),
            "{attempt}: {c}"
        );
        assert_eq!(n(c, "timed_out"), 0, "{attempt}: {c}");
        released += n(c, "gone");
    }
    assert!(released > 0, "blocks in flight were released by the death");
    let counts = &stat["zipserver"]["counts"];
    assert_eq!(
        n(counts, "blocks_seen"),
        n(counts, "remote_blocks") + n(counts, "fallback_blocks")
    );
    assert!(n(counts, "ring_blocks") > 0, "{counts}");

    // The zipserver that came back counted no block twice: each client's
    // count there is at most what the child counted as answered remotely,
    // and nothing was answered after its client had stopped waiting.
    let (addr, _) = zipserver_addr(&worker).unwrap();
    let zs = zipserver_stat(&addr);
    assert_eq!(n(&zs, "abandoned"), 0, "{zs}");
    for (attempt, c) in &children {
        if let Some(client) = zs["clients"].get(attempt) {
            assert!(n(client, "requests") <= n(c, "remote_blocks"), "{attempt}");
        }
    }

    // Every SST passes RocksDB's own checksum verification of all its
    // blocks, holds the model in a process with no farm code, and the data
    // reads back through the hoster's RocksDB as the model has it.
    {
        let db = DB::open_cf_descriptors(&zstd(), &d.db, cfs()).unwrap();
        let live = db.live_files().unwrap();
        assert!(!live.is_empty());
        for f in &live {
            let path = d.db.join(f.name.trim_start_matches('/'));
            farm::rocks::sst::verify_checksums(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        for sst in live_ssts(&db, &d.db) {
            assert_eq!(sst.props.compression_name, "BuiltinV2;07;");
        }
        let cf = db.cf_handle("default").unwrap();
        assert_eq!(model.check(&db, cf), Ok(model.len() as u64));
    }
    plain_scan_equals_model(&d.db, &model);
}
