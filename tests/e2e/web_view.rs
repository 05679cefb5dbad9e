//! The web view: `/list` in a real browser kills a running attempt; an
//! attempt's files are served from the links the page gives, and nothing
//! outside `WORKER_DB_ROOT` can be read through it.

use crate::browser::Browser;
use crate::child_faults::{attempt_processes, fixture_plugin};
use crate::harness::*;
use farm::workload::{Model, WorkloadSpec};
use rocksdb::ColumnFamilyDescriptor;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where the tests leave their screenshots.
fn output_dir(test: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("web_view")
        .join(test)
}

/// The attempt rows of `/list?html=0`.
fn attempts(worker_url: &str) -> Vec<Value> {
    get_json(&format!("{worker_url}/list?html=0"))["attempts"]
        .as_array()
        .expect("attempt list")
        .clone()
}

fn get_text(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().expect("text answer")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().expect("text answer")),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// A hoster whose one compaction runs in a child that hangs (the fixture
/// plugin); an operator's kill without the token is refused; with the
/// token in the URL fragment the operator clicks the attempt's kill button; the attempt ends `cancelled`, its child is
/// gone, and the hoster compacts that job locally with no key lost.
#[test]
fn kill_button_in_the_browser_cancels_a_running_attempt() {
    const TOKEN: &str = "web-view-s3cret";
    let out = output_dir("kill_button");
    let d = dirs("db");
    let instance = "webkill";
    let worker = start_worker(
        d.tmp.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("PLUGINS", fixture_plugin().display().to_string()),
            ("FIXTURE_BEHAVIOUR", "hang".into()),
            // Far beyond the test: the attempt may only end by the kill.
            ("ATTEMPT_TIMEOUT_MIN", "10m".into()),
            ("ATTEMPT_TIMEOUT_MAX", "10m".into()),
            ("CANCEL_GRACE", "1s".into()),
            ("WORKER_AUTH_TOKEN", TOKEN.into()),
        ],
    );
    let base = worker.base_url();
    let params = params(
        &d.root,
        std::slice::from_ref(&base),
        serde_json::json!({
            "instance_name": instance,
            "dcompact_http_headers": {"Authorization": format!("Bearer {TOKEN}")},
        }),
    );
    // One compaction only: automatic compactions off, one manual compaction
    // of two level-0 files.
    let mut opts = small_options();
    opts.set_disable_auto_compactions(true);
    let cfs = vec![ColumnFamilyDescriptor::new("default", opts.clone())];
    let hoster = Hoster::open(&d.db, opts, cfs, &params);
    let cf = hoster.db.cf_handle("default").unwrap();
    let mut model = Model::default();
    for seed in [1, 2] {
        let spec = WorkloadSpec {
            ops: 5_000,
            key_space: 4_000,
            seed,
            ..WorkloadSpec::default()
        };
        model.write(&hoster.db, cf, &spec).expect("writes");
        hoster.db.flush_cf(cf).expect("flush");
    }

    let (name, child_pid) = std::thread::scope(|s| {
        let compaction = s.spawn(|| hoster.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>));
        eventually("the attempt's child runs", || {
            attempt_processes(instance).len() == 1
        });
        let child_pid = attempt_processes(instance)[0];
        let running: Vec<Value> = attempts(&base)
            .into_iter()
            .filter(|a| a["state"] == "running")
            .collect();
        assert_eq!(running.len(), 1, "{running:?}");
        let name = running[0]["name"].as_str().unwrap().to_owned();

        // The page never carries the token itself.
        let (_, html) = get_text(&format!("{base}/list"));
        assert!(!html.contains(TOKEN));
        assert!(html.contains(&format!("data-attempt=\"{name}\"")), "{html}");

        let mut browser = Browser::start();
        let button = format!("tr[data-attempt=\"{name}\"] button.kill");
        let label = |browser: &mut Browser| {
            browser.eval(&format!(
                "document.querySelector({}).textContent",
                serde_json::to_string(&button).unwrap()
            ))
        };
        // Without the token the worker refuses the kill.
        browser.navigate(&format!("{base}/list"));
        browser.click(&button);
        eventually("the kill without a token is refused", || {
            label(&mut browser)
                .as_str()
                .is_some_and(|l| l.starts_with("refused: missing or wrong bearer token"))
        });
        assert_eq!(attempt_processes(instance), vec![child_pid]);

        // `/stat` lists the attempts too; the token comes in the fragment,
        // which the browser never sends to the worker.
        browser.navigate(&format!("{base}/stat#token={TOKEN}"));
        browser.screenshot(&out.join("1-running.png"));
        let state = browser.eval(&format!(
            "document.querySelector('tr[data-attempt=\"{name}\"]').children[1].textContent"
        ));
        assert_eq!(state, "running");
        browser.click(&button);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let label = label(&mut browser);
            if label == "cancel sent" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kill not acknowledged: {label}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        eventually("the attempt ends", || {
            attempts(&base)
                .iter()
                .any(|a| a["name"] == name.as_str() && a["state"] == "finished")
        });
        compaction.join().expect("manual compaction returns");

        browser.navigate(&format!("{base}/list"));
        let outcome = browser.eval(&format!(
            "document.querySelector('tr[data-attempt=\"{name}\"]').children[2].textContent"
        ));
        assert_eq!(outcome, "cancelled");
        browser.screenshot(&out.join("2-cancelled.png"));
        (name, child_pid)
    });
    println!("screenshots in {}", out.display());

    // Cancelled by the operator, not timed out.
    let row = attempts(&base)
        .into_iter()
        .find(|a| a["name"] == name.as_str())
        .unwrap();
    assert_eq!(row["outcome_name"], "cancelled", "{row}");
    let counters = worker_stat(&worker)["counters"].clone();
    assert_eq!(counters["accepted"], 1, "{counters}");
    assert_eq!(counters["failed"]["cancelled"], 1, "{counters}");
    assert_eq!(counters["failed"]["timed_out"], 0, "{counters}");
    // The child is gone, and nothing else of the attempt runs.
    assert!(
        !Path::new(&format!("/proc/{child_pid}")).exists(),
        "child {child_pid} is gone"
    );
    assert!(attempt_processes(instance).is_empty());
    // The hoster compacted that job locally and lost nothing.
    let stats = hoster.farm.stats();
    assert_eq!(stats.remote_installed, 0, "{stats:?}");
    assert_eq!(stats.fallbacks["remote_failed"], 1, "{stats:?}");
    let l0 = hoster
        .db
        .property_int_value_cf(cf, "rocksdb.num-files-at-level0")
        .unwrap();
    assert_eq!(l0, Some(0), "level 0 was compacted (locally)");
    assert_eq!(model.check(&hoster.db, cf), Ok(model.len() as u64));
    // The attempt's LOG says so, served by the worker.
    let (code, log) = get_text(&format!("{base}/attempts/{name}/LOG"));
    assert_eq!(code, 200);
    assert!(log.contains("end outcome=cancelled"), "{log}");
    let (code, child_log) = get_text(&format!("{base}/attempts/{name}/LOG.child"));
    assert_eq!(code, 200);
    assert!(child_log.contains("fixture: hang"), "{child_log}");
    let (code, summary) = get_text(&format!("{base}/attempts/{name}/summary.html"));
    assert_eq!(code, 200);
    assert!(
        summary.contains("<th>outcome</th><td>cancelled</td>"),
        "{summary}"
    );
    assert!(summary.contains("<th>child spawned in</th>"), "{summary}");
}

/// Sends a raw request line, so that no client library normalizes `..`.
fn raw_get(addr: &str, target: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// After real compactions: `/list` links each attempt's `LOG` and
/// `summary.html` at the worker's advertised address, both are served with
/// the attempt's content; no request reads a file outside
/// `WORKER_DB_ROOT`, whatever its path says.
#[test]
fn attempt_files_are_served_and_confined_to_the_root() {
    let d = dirs("db");
    let worker = start_worker(d.tmp.path(), &[]);
    let base = worker.base_url();
    let params = params(
        &d.root,
        std::slice::from_ref(&base),
        serde_json::json!({"instance_name": "webfiles"}),
    );
    let cfs = vec![ColumnFamilyDescriptor::new("default", small_options())];
    let hoster = Hoster::open(&d.db, small_options(), cfs, &params);
    let spec = WorkloadSpec {
        ops: 30_000,
        key_space: 10_000,
        seed: 5,
        ..WorkloadSpec::default()
    };
    hoster.churn(&mut Model::default(), &spec);
    assert!(hoster.farm.stats().remote_installed > 0);

    let row = attempts(&base)
        .into_iter()
        .find(|a| a["outcome_name"] == "succeeded")
        .expect("a succeeded attempt");
    let name = row["name"].as_str().unwrap();
    assert!(row["input_bytes"].as_u64().unwrap() > 0, "{row}");
    assert!(row["bytes_written"].as_u64().unwrap() > 0, "{row}");

    // A bad query is named.
    let (code, answer) = get_text(&format!("{base}/list?refresh=soon"));
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("refresh: expected seconds"), "{answer}");

    // Follow the page's own links.
    let (_, html) = get_text(&format!("{base}/list?refresh=5"));
    assert!(html.contains("http-equiv=refresh content=5"));
    for file in ["LOG", "summary.html"] {
        let link = format!("href=\"{base}/attempts/{name}/{file}\"");
        assert!(html.contains(&link), "{link} in {html}");
    }
    let (code, log) = get_text(&format!("{base}/attempts/{name}/LOG"));
    assert_eq!(code, 200);
    assert!(log.contains("end outcome=succeeded"), "{log}");
    assert!(log.contains(&format!("attempt {name} running")), "{log}");
    let (code, summary) = get_text(&format!("{base}/attempts/{name}/summary.html"));
    assert_eq!(code, 200);
    assert!(
        summary.contains("<th>outcome</th><td>succeeded</td>"),
        "{summary}"
    );
    assert!(
        summary.contains(".sst</td>"),
        "inputs and outputs listed: {summary}"
    );
    assert!(summary.contains(&worker_identity(&worker)));

    // A file outside the root, and a link inside the root that leads there.
    let secret = "outside-the-worker-root";
    std::fs::write(d.tmp.path().join("LOG"), secret).unwrap();
    std::fs::create_dir_all(d.tmp.path().join("outside")).unwrap();
    std::fs::write(d.tmp.path().join("outside/LOG"), secret).unwrap();
    std::os::unix::fs::symlink(
        d.tmp.path().join("outside"),
        d.tmp.path().join("worker/escape"),
    )
    .unwrap();
    let addr = base.trim_start_matches("http://");
    for (target, expected) in [
        ("/attempts/../LOG", 400),
        ("/attempts/%2e%2e/LOG", 400),
        ("/attempts/..%2FLOG", 400),
        (
            &format!("/attempts/{name}/../../../../../../LOG") as &str,
            400,
        ),
        ("/attempts/escape/LOG", 403),
        ("/attempts/escape/../LOG", 400),
        ("/attempts//etc/LOG", 400),
        (&format!("/attempts/{name}/CURRENT") as &str, 400),
        ("/attempts/..%2F..%2F..%2F..%2F..%2Fetc/passwd", 400),
    ] {
        let (code, answer) = raw_get(addr, target);
        assert_eq!(code, expected, "{target}: {answer}");
        assert!(!answer.contains(secret), "{target} leaked: {answer}");
        assert!(!answer.contains("root:"), "{target} leaked: {answer}");
    }
}
