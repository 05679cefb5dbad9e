//! etcd with authentication and with TLS, both real: the worker's
//! `ETCD_USERNAME`/`ETCD_PASSWORD` and `ETCD_CA`/`ETCD_CERT`/`ETCD_KEY`, and
//! the same fields of the hoster's `etcd` object, reach an etcd that refuses
//! everyone else; with a dead endpoint listed first, requests fail over.

use crate::harness::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use farm::etcd::client::prefix_end;
use farm::etcd::local::{LocalEtcd, ServerTls};
use farm::worker::local::LocalWorker;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const ROOT: &str = "/secured";
const USER: &str = "farm";
const PASSWORD: &str = "pw-e2e-Zq8";
const TOKEN: &str = "tok-e2e-Hx5-secret";

/// Creates root and `USER` (read-write below `ROOT/` only) and turns
/// authentication on.
fn enable_auth(etcd: &LocalEtcd) {
    let call = |path: &str, body: serde_json::Value| {
        let r =
            ureq::post(&format!("{}/v3/auth/{path}", etcd.url())).send_string(&body.to_string());
        assert!(r.is_ok(), "{path}: {r:?}");
    };
    let prefix = format!("{ROOT}/");
    call("role/add", json!({"name": "root"}));
    call("user/add", json!({"name": "root", "password": "root-pw"}));
    call("user/grant", json!({"user": "root", "role": "root"}));
    call("role/add", json!({"name": "farm"}));
    call(
        "role/grant",
        json!({"name": "farm", "perm": {"permType": "READWRITE",
            "key": B64.encode(&prefix), "range_end": B64.encode(prefix_end(&prefix))}}),
    );
    call("user/add", json!({"name": USER, "password": PASSWORD}));
    call("user/grant", json!({"user": USER, "role": "farm"}));
    call("enable", json!({}));
}

/// A hoster with only etcd to find workers by compacts remotely, woken by
/// done events. `headers` are its `dcompact_http_headers`.
fn one_round_on_etcd(
    d: &Dirs,
    etcd_params: serde_json::Value,
    headers: serde_json::Value,
    worker: &LocalWorker,
) {
    let params = params(
        &d.root,
        &[],
        json!({"etcd": etcd_params, "etcd_root": ROOT, "dcompact_http_headers": headers}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    eventually("the hoster found the worker and watches", || {
        hoster
            .farm
            .workers()
            .iter()
            .any(|w| w.base_url == worker.base_url())
            && hoster.farm.watching_completions()
    });
    let mut model = Model::default();
    let spec = WorkloadSpec {
        ops: 40_000,
        key_space: 20_000,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut model, &spec);
    let stats = hoster.farm.stats();
    assert!(stats.remote_installed > 0, "{stats:?}");
    assert!(stats.done_by_watch > 0, "done events arrived: {stats:?}");
    assert_eq!(stats.local_total(), 0, "{stats:?}");
}

#[test]
fn credentials_reach_an_etcd_with_authentication() {
    let d = dirs("db");
    let etcd = LocalEtcd::start(d.tmp.path()).expect("etcd starts");
    enable_auth(&etcd);
    let anonymous = etcd.client().expect("client").list(&format!("{ROOT}/"));
    assert!(anonymous.is_err(), "etcd refuses anonymous reads");

    // Debug logs to a file, and a token: neither secret may show anywhere.
    let wdir = d.tmp.path().join("w");
    std::fs::create_dir_all(&wdir).unwrap();
    let log_path = wdir.join("worker.stderr");
    let env = [
        ("WORKER_DB_ROOT", wdir.join("worker").display().to_string()),
        ("HOSTER_ROOTS", d.root.display().to_string()),
        ("RUST_LOG", "debug".to_string()),
        ("MULTI_PROCESS", multi_process().to_string()),
        ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
        ("DEL_WORKER_TEMP_DB", "false".to_string()),
        ("WORKER_AUTH_TOKEN", TOKEN.to_string()),
        // The first endpoint is dead: requests fail over to the next.
        ("ETCD_URL", format!("127.0.0.1:1,{}", etcd.addr())),
        ("ETCD_ROOT", ROOT.into()),
        ("ETCD_USERNAME", USER.into()),
        ("ETCD_PASSWORD", PASSWORD.into()),
    ];
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker =
        LocalWorker::start_logging_to(worker_bin(), &env, log.into()).expect("worker starts");
    let farm_client = etcd.client_as(Some((USER, PASSWORD))).expect("client");
    eventually("the worker registered with its credentials", || {
        farm_client
            .list(&format!("{ROOT}/workers/"))
            .is_ok_and(|(_, kvs)| kvs.iter().any(|kv| kv.value.contains(&worker.base_url())))
    });
    one_round_on_etcd(
        &d,
        json!({"url": format!("127.0.0.1:1;{}", etcd.addr()), "username": USER,
               "password": PASSWORD, "load_balancer": "pick_first"}),
        json!({"Authorization": format!("Bearer {TOKEN}")}),
        &worker,
    );

    // Pages and metrics, the worker's log, every attempt file and the
    // hoster's RocksDB LOG: no password, no token.
    let base = worker.base_url();
    let mut seen: Vec<(String, String)> =
        ["/stat", "/stat?html=0", "/list", "/list?html=0", "/metrics"]
            .iter()
            .map(|p| {
                let body = ureq::get(&format!("{base}{p}"))
                    .call()
                    .unwrap()
                    .into_string()
                    .unwrap();
                (p.to_string(), body)
            })
            .collect();
    assert!(
        seen[1].1.contains("registered"),
        "the etcd part is shown: {}",
        seen[1].1
    );
    assert!(worker.stop(std::time::Duration::from_secs(30)));
    let mut files = vec![log_path];
    files.extend(files_where(&wdir.join("worker"), &|_| true));
    files.extend(files_where(&d.db, &|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("LOG"))
    }));
    for f in &files {
        if let Ok(text) = std::fs::read(f) {
            seen.push((
                f.display().to_string(),
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
    }
    assert!(seen.len() > 8, "attempt files were read: {files:?}");
    assert!(
        seen.iter().any(|(_, t)| t.contains("DEBUG")),
        "the worker logged at debug level"
    );
    let worker_log = &seen
        .iter()
        .find(|(what, _)| what.ends_with("worker.stderr"))
        .expect("the worker's log was read")
        .1;
    let failovers = worker_log
        .lines()
        .filter(|l| l.contains("trying the next") && l.contains("127.0.0.1:1"))
        .count();
    assert!(
        failovers > 0,
        "the dead first endpoint was tried and skipped"
    );
    println!("the worker failed over from the dead endpoint {failovers} times");
    for (what, text) in &seen {
        assert!(
            !text.contains(PASSWORD),
            "the etcd password shows in {what}"
        );
        assert!(!text.contains(TOKEN), "the token shows in {what}");
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (Debian package openssl, see scripts/setup.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate it signed for 127.0.0.1, named `<name>.pem` and
/// `<name>.key`.
pub fn issue(dir: &Path, name: &str, usage: &str) -> ServerTls {
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
    )
    .expect("extension file");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    ServerTls {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    }
}

#[test]
fn tls_with_client_certificates() {
    let d = dirs("db");
    let pki = d.tmp.path().join("pki");
    std::fs::create_dir_all(&pki).expect("pki dir");
    openssl(
        &pki,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=e2e-ca",
        ],
    );
    // etcd's JSON gateway dials etcd itself with the server certificate,
    // which therefore needs client use too.
    let server = issue(&pki, "server", "serverAuth,clientAuth");
    let client = issue(&pki, "client", "clientAuth");
    let etcd = LocalEtcd::start_with(d.tmp.path(), Some(server), Some(client.clone()))
        .expect("etcd starts with TLS");
    assert!(etcd.url().starts_with("https://"));

    let worker = start_worker(
        &d.tmp.path().join("w"),
        &[
            ("HOSTER_ROOTS", d.root.display().to_string()),
            ("ETCD_URL", etcd.url()),
            ("ETCD_ROOT", ROOT.into()),
            ("ETCD_CA", client.ca.display().to_string()),
            ("ETCD_CERT", client.cert.display().to_string()),
            ("ETCD_KEY", client.key.display().to_string()),
        ],
    );
    let tls_client = etcd.client().expect("client");
    eventually("the worker registered over TLS", || {
        tls_client
            .list(&format!("{ROOT}/workers/"))
            .is_ok_and(|(_, kvs)| kvs.iter().any(|kv| kv.value.contains(&worker.base_url())))
    });
    one_round_on_etcd(
        &d,
        json!({"url": etcd.addr(), "ca": client.ca, "cert": client.cert, "key": client.key}),
        json!({}),
        &worker,
    );
}
