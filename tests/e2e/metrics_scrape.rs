//! A real Prometheus server scrapes the worker's `/metrics` on loopback
//! while a hoster compacts through it; what Prometheus stored must equal
//! what the worker and the hoster counted.

use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use prometheus::Encoder;
use rocksdb::ColumnFamilyDescriptor;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Prometheus server (Debian's `prometheus`) on 127.0.0.1 scraping
/// each job's targets every 200 ms.
pub struct Prometheus {
    child: Child,
    pub url: String,
}

impl Prometheus {
    pub fn start(dir: &Path, jobs: &[(&str, &str)]) -> Prometheus {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("prometheus.yml");
        let mut yml = String::from(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n",
        );
        for (job, target) in jobs {
            yml.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        std::fs::write(&config, yml).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus starts (scripts/setup.sh installs it)");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ureq::get(&format!("{}/-/ready", p.url))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// The answer of an instant query; panics when Prometheus rejects it.
    pub fn query_all(&self, q: &str) -> Vec<Value> {
        let answer: Value = match ureq::get(&format!("{}/api/v1/query", self.url))
            .query("query", q)
            .call()
        {
            Ok(r) => r.into_json().expect("JSON answer"),
            Err(e) => panic!("prometheus refused {q}: {e}"),
        };
        assert_eq!(answer["status"], "success", "{q}: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The value of an instant query that yields one series, if it does.
    pub fn query(&self, q: &str) -> Option<f64> {
        let result = self.query_all(q);
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `q` yields `expected` (the next scrapes catch up).
    pub fn wait_for(&self, q: &str, expected: f64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.query(q);
            if got == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus: {q} = {got:?}, expected {expected}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves a registry's text format on 127.0.0.1, as an application
/// embedding the hoster would, until dropped.
struct MetricsEndpoint {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsEndpoint {
    fn serve(registry: prometheus::Registry) -> MetricsEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let mut body = Vec::new();
                prometheus::TextEncoder::new()
                    .encode(&registry.gather(), &mut body)
                    .unwrap();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(&body);
            }
        });
        MetricsEndpoint {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The Grafana dashboard's queries, made concrete for this Prometheus: those
/// of every panel, inside collapsed rows too.
fn dashboard_queries() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/compaction-farm.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
    let mut targets = Vec::new();
    panel_targets(&dashboard, &mut targets);
    let exprs = count_key(&dashboard, "expr");
    assert_eq!(
        targets.len(),
        exprs,
        "every query of the file is a panel's target"
    );
    targets
        .iter()
        .map(|t| {
            t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$job", ".*")
                .replace("$instance", ".*")
        })
        .collect()
}

/// The targets of the panels of `node`, and of the panels rows hold.
fn panel_targets(node: &Value, out: &mut Vec<Value>) {
    for panel in node["panels"].as_array().into_iter().flatten() {
        out.extend(panel["targets"].as_array().cloned().unwrap_or_default());
        panel_targets(panel, out);
    }
}

/// How often `key` appears anywhere in `v`.
fn count_key(v: &Value, key: &str) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| usize::from(k == key) + count_key(x, key))
            .sum(),
        Value::Array(a) => a.iter().map(|x| count_key(x, key)).sum(),
        _ => 0,
    }
}

#[test]
fn prometheus_scrapes_the_counts_of_the_jobs_run() {
    let d = dirs("db");
    // Retention sweeps every RESULT_RETENTION / 10: twice a second here.
    // With MULTI_PROCESS the worker also runs its zipserver, scraped too.
    let mut env = vec![("RESULT_RETENTION", "5s".to_string())];
    if multi_process() {
        env.push((
            "ZIP_SERVER_OPTIONS",
            "listening_ports=127.0.0.1:0:num_threads=2".into(),
        ));
    }
    let worker = start_worker(d.tmp.path(), &env);
    let base = worker.base_url();
    let zipserver_addr = multi_process().then(|| {
        let mut addr = None;
        eventually("the worker's zipserver serves HTTP", || {
            addr = worker_stat(&worker)["zipserver"]["sidecar"]["http_addr"]
                .as_str()
                .map(str::to_owned);
            addr.is_some()
        });
        addr.unwrap()
    });

    let params = params(
        &d.root,
        std::slice::from_ref(&base),
        serde_json::json!({"instance_name": "scraped"}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let registry = prometheus::Registry::new();
    hoster.farm.register_metrics(&registry).unwrap();
    let hoster_metrics = MetricsEndpoint::serve(registry);

    let mut jobs = vec![
        ("farm-worker", base.trim_start_matches("http://")),
        ("farm-hoster", hoster_metrics.addr.as_str()),
    ];
    if let Some(addr) = &zipserver_addr {
        jobs.push(("farm-zipserver", addr.as_str()));
    }
    let prom = Prometheus::start(&d.tmp.path().join("prometheus"), &jobs);
    for (job, _) in &jobs {
        prom.wait_for(&format!("up{{job=\"{job}\"}}"), 1.0);
    }
    let spec = WorkloadSpec {
        ops: 40_000,
        key_space: 15_000,
        seed: 8,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);
    // Three requests that are not jobs.
    for _ in 0..3 {
        let (code, _) = post(&format!("{base}/dcompact"), b"not a job", &[]);
        assert_eq!(code, 400);
    }

    // Both sides' counts of the jobs run.
    let hoster_stats = hoster.farm.stats();
    let stat = worker_stat(&worker);
    let c = &stat["counters"];
    let succeeded = c["succeeded"].as_u64().unwrap();
    assert!(succeeded > 0, "{c}");
    assert_eq!(hoster_stats.remote_installed, succeeded, "{hoster_stats:?}");
    assert_eq!(
        c["accepted"].as_u64(),
        Some(succeeded),
        "no attempt failed: {c}"
    );
    assert_eq!(
        hoster_stats.remote_bytes_read,
        c["bytes_read"].as_u64().unwrap()
    );
    assert_eq!(stat["running"], 0);

    // What Prometheus scraped.
    let n = succeeded as f64;
    prom.wait_for("farm_worker_attempts_accepted_total", n);
    prom.wait_for("farm_worker_attempts_total{outcome=\"succeeded\"}", n);
    // The hoster's side, scraped from the application.
    prom.wait_for("farm_hoster_compactions_remote_total", n);
    prom.wait_for("sum(farm_hoster_compactions_local_total)", 0.0);
    prom.wait_for("farm_hoster_remote_seconds_count", n);
    prom.wait_for("sum(farm_worker_attempts_total)", n);
    prom.wait_for(
        "farm_worker_attempt_seconds_count{outcome=\"succeeded\"}",
        n,
    );
    prom.wait_for("farm_worker_attempt_queue_seconds_count", n);
    prom.wait_for("farm_worker_rejected_total{reason=\"malformed\"}", 3.0);
    prom.wait_for("farm_worker_rejected_total{reason=\"busy\"}", 0.0);
    prom.wait_for(
        "farm_worker_read_bytes_total",
        c["bytes_read"].as_u64().unwrap() as f64,
    );
    prom.wait_for(
        "farm_worker_written_bytes_total",
        c["bytes_written"].as_u64().unwrap() as f64,
    );
    prom.wait_for("farm_worker_attempt_written_bytes_count", n);
    prom.wait_for("farm_worker_attempts_running", 0.0);
    // Every attempt's directory is kept (DEL_WORKER_TEMP_DB=false).
    prom.wait_for("farm_worker_retained_attempt_dirs", n);
    prom.wait_for("farm_worker_retention_removed_total", 0.0);
    let kept = prom.query("farm_worker_retained_attempt_bytes").unwrap();
    assert!(kept > 0.0, "retained bytes {kept}");
    prom.wait_for(
        "farm_worker_max_parallel_compactions",
        stat["max_parallel_compactions"].as_f64().unwrap(),
    );
    let spawned = if multi_process() { n } else { 0.0 };
    prom.wait_for("farm_worker_child_spawn_seconds_count", spawned);
    if multi_process() {
        // Every block went to the zipserver: what the children counted
        // sending, what the zipserver counted receiving, and what
        // Prometheus scraped from both agree.
        let z = &stat["zipserver"]["counts"];
        let sent = z["remote_bytes_in"].as_f64().unwrap();
        assert!(sent > 0.0, "{z}");
        assert_eq!(z["fallback_blocks"], 0, "{z}");
        prom.wait_for("farm_worker_zip_bytes_total{path=\"remote\"}", sent);
        prom.wait_for(
            "farm_worker_zip_blocks_total{path=\"remote\"}",
            z["remote_blocks"].as_f64().unwrap(),
        );
        prom.wait_for("farm_worker_zip_blocks_total{path=\"fallback\"}", 0.0);
        prom.wait_for("zipserver_bytes_in_total", sent);
        prom.wait_for(
            "zipserver_bytes_out_total",
            z["remote_bytes_out"].as_f64().unwrap(),
        );
        prom.wait_for("farm_worker_zipserver_up", 1.0);
    }
    // The process collector reads the worker's own /proc entry.
    let rss = prom
        .query("process_resident_memory_bytes")
        .expect("process metrics scraped");
    assert!(rss > 1e6, "resident memory {rss}");
    // Labels stay bounded: outcomes and reasons only, never attempt ids.
    let series = prom
        .query("count({__name__=~\"farm_worker_.*\", job=\"farm-worker\"})")
        .unwrap();
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(!text.contains("scraped/"), "no attempt names in labels");
    println!("{series} farm_worker series scraped");

    // Every query of the Grafana dashboard is valid, and has data here
    // unless it needs MULTI_PROCESS children (spawns, the zipserver).
    for q in dashboard_queries() {
        let result = prom.query_all(&q);
        let absent_here = (q.contains("child_spawn") || q.contains("zip")) && !multi_process();
        assert!(
            !result.is_empty() || absent_here,
            "dashboard query without data: {q}"
        );
    }
}
