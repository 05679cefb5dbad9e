//! `docs/PROTOCOL.md` against the code: its JSON examples against the
//! wire types, its endpoint headings against the router's list, its shapes
//! and files against a live worker.

use super::markdown::{read, repo, split_fences};
use crate::admission::capture;
use crate::harness::*;
use base64::Engine;
use farm::protocol::answers::{
    CancelAnswer, DrainAnswer, ErrorAnswer, HealthAnswer, ProbeAnswer, SubmitAnswer, DONE, FAILED,
    QUEUED, RUNNING,
};
use farm::protocol::attempt::{AttemptKey, AttemptName};
use farm::protocol::endpoints::Endpoint;
use farm::protocol::job::Job;
use farm::protocol::output_dir::done_marker;
use farm::protocol::probe::ProbeRequest;
use farm::protocol::version::PROTOCOL_VERSION;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn protocol_md() -> String {
    read(&repo().join("docs/PROTOCOL.md"))
}

/// Parses `json` as `T` and checks that writing it back gives the same
/// JSON: no field of the example is unknown to `T`, none of `T` missing.
fn round_trip<T: DeserializeOwned + Serialize>(json: &Value) -> T {
    let parsed: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{json} does not parse: {e}"));
    let again = serde_json::to_value(&parsed).expect("serializes");
    assert_eq!(&again, json, "the example and the type differ");
    parsed
}

/// The JSON examples of PROTOCOL.md by their tag (`json Job` -> `Job`).
fn examples() -> Vec<(String, Value)> {
    let (_, blocks) = split_fences(&protocol_md());
    blocks
        .into_iter()
        .filter_map(|b| {
            let mut info = b.info.split_whitespace();
            (info.next() == Some("json")).then(|| {
                let tag = info.next().unwrap_or("").to_owned();
                let value = serde_json::from_str(&b.body)
                    .unwrap_or_else(|e| panic!("`json {tag}` example is not JSON: {e}"));
                (tag, value)
            })
        })
        .collect()
}

fn example(tag: &str) -> Value {
    examples()
        .into_iter()
        .find(|(t, _)| t == tag)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no `json {tag}` example"))
        .1
}

#[test]
fn protocol_examples_parse_with_the_wire_types() {
    let mut probe_states = BTreeSet::new();
    let mut error_states = BTreeSet::new();
    let mut tags = BTreeSet::new();
    for (tag, json) in examples() {
        match tag.as_str() {
            "Job" => assert_eq!(round_trip::<Job>(&json).protocol, PROTOCOL_VERSION),
            "AttemptKey" => {
                let _: AttemptKey = round_trip(&json);
            }
            "ProbeRequest" => {
                let r: ProbeRequest = round_trip(&json);
                assert!(r.wait_ms > 0, "the example shows the optional field");
            }
            "SubmitAnswer" => {
                assert_eq!(round_trip::<SubmitAnswer>(&json).protocol, PROTOCOL_VERSION)
            }
            "HealthAnswer" => {
                assert_eq!(round_trip::<HealthAnswer>(&json).protocol, PROTOCOL_VERSION)
            }
            "CancelAnswer" => {
                let _: CancelAnswer = round_trip(&json);
            }
            "DrainAnswer" => {
                let _: DrainAnswer = round_trip(&json);
            }
            "ProbeAnswer" => {
                probe_states.insert(round_trip::<ProbeAnswer>(&json).status);
            }
            "ErrorAnswer" => {
                error_states.insert(round_trip::<ErrorAnswer>(&json).status);
            }
            "Registration" => assert_eq!(
                round_trip::<farm::etcd::keys::Registration>(&json).protocol,
                PROTOCOL_VERSION
            ),
            "StatSnapshot" => check_stat_sections(&json),
            other => panic!("`json {other}`: no type for this example tag"),
        }
        tags.insert(tag);
    }
    let all = [
        "Job",
        "AttemptKey",
        "ProbeRequest",
        "SubmitAnswer",
        "HealthAnswer",
        "CancelAnswer",
        "DrainAnswer",
        "ProbeAnswer",
        "ErrorAnswer",
        "Registration",
        "StatSnapshot",
    ];
    assert_eq!(tags, all.iter().map(|t| t.to_string()).collect());
    let states = [QUEUED, RUNNING, DONE, FAILED].map(String::from);
    assert_eq!(probe_states, states.into_iter().collect());
    let closed = [
        "malformed",
        "unauthorized",
        "refused",
        "busy",
        "stopping",
        "NotFound",
        "timeout",
        "internal",
    ];
    assert!(
        error_states.iter().all(|s| closed.contains(&s.as_str())),
        "{error_states:?}"
    );

    // The job's identity is the key example, and a job is also a valid
    // key (extra fields are ignored), as the page says.
    let job: Job = serde_json::from_value(example("Job")).expect("job parses");
    let key: AttemptKey = serde_json::from_value(example("AttemptKey")).expect("key parses");
    assert_eq!(job.key(), key);
    let as_key: AttemptKey = serde_json::from_value(example("Job")).expect("a job is a key");
    assert_eq!(as_key, key);
    // The name example follows the grammar.
    let (_, blocks) = split_fences(&protocol_md());
    let name = blocks
        .iter()
        .find(|b| b.info == "text attempt-name")
        .expect("PROTOCOL.md has a `text attempt-name` example");
    let built = AttemptName::new(&key, &job.hoster_root).expect("the example key is valid");
    assert_eq!(name.body.trim(), built.as_str());
}

/// The shape of `served` is the shape of `documented`: the same keys, the
/// same kinds of values (`null` matches anything: an optional value), every
/// element of a served list like the documented list's first. Top-level
/// keys named in `optional` may be documented without being served.
fn same_shape(documented: &Value, served: &Value, at: &str, optional: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    match (documented, served) {
        (Value::Object(d), Value::Object(s)) => {
            for k in d.keys().chain(s.keys()).collect::<BTreeSet<_>>() {
                let path = format!("{at}.{k}");
                match (d.get(k), s.get(k)) {
                    (Some(dv), Some(sv)) => problems.extend(same_shape(dv, sv, &path, &[])),
                    (Some(_), None) if optional.contains(&k.as_str()) => {}
                    (Some(_), None) => problems.push(format!("{path}: documented, not served")),
                    (None, _) => problems.push(format!("{path}: served, not documented")),
                }
            }
        }
        (Value::Array(d), Value::Array(s)) => {
            if let Some(first) = d.first() {
                for (i, sv) in s.iter().enumerate() {
                    problems.extend(same_shape(first, sv, &format!("{at}[{i}]"), &[]));
                }
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (d, s) => {
            let kind = |v: &Value| std::mem::discriminant(v);
            if kind(d) != kind(s) {
                problems.push(format!("{at}: documented {d}, served {s}"));
            }
        }
    }
    problems
}

#[test]
fn the_shape_check_sees_what_differs() {
    let documented = serde_json::json!({"a": 1, "b": {"c": "x"}, "opt": {}, "l": [{"d": true}]});
    let served = serde_json::json!({"a": "1", "b": {"c": "y", "e": 2}, "l": [{"d": false}, {}]});
    let problems = same_shape(&documented, &served, "s", &["opt"]);
    assert_eq!(
        problems,
        [
            "s.a: documented 1, served \"1\"",
            "s.b.e: served, not documented",
            "s.l[1].d: documented, not served",
        ]
    );
    assert_eq!(same_shape(&documented, &served, "s", &[]).len(), 4);
}

/// The parts of `/stat?html=0` a plain test worker does not serve (they
/// need etcd, dynamic mounts, a zipserver, plugins), against the types.
fn check_stat_sections(stat: &Value) {
    use farm::worker::mounts::stats::{MountCounters, MountRow, MountsSnapshot};
    use farm::worker::registration::RegistrationSnapshot;
    use farm::worker::zip_link::ZipLinkSnapshot;
    use zipserver::sidecar::SidecarStatus;
    let etcd = RegistrationSnapshot {
        key: "k".into(),
        registered: true,
        registrations: 1,
        done_published: 1,
        done_dropped: 0,
        last_error: Some("e".into()),
    };
    let mounts = MountsSnapshot {
        capacity: 1,
        active: 1,
        counters: MountCounters::default(),
        mounts: vec![MountRow {
            instance: "i".into(),
            source: "s".into(),
            fs_type: "nfs4".into(),
            target: "/t".into(),
            state: "mounted",
            users: 1,
            waiting: 0,
            generation: 0,
        }],
    };
    let zip = ZipLinkSnapshot {
        socket: "/s".into(),
        sidecar: Some(SidecarStatus {
            pid: Some(1),
            http_addr: Some("a".into()),
            starts: 1,
            restarts: 0,
            last_exit: Some("exit 1".into()),
        }),
        counts: Default::default(),
    };
    let class = farm::rocks::plugins::PluginClass {
        kind: "merge_operator".into(),
        name: "n".into(),
        version: 1,
    };
    let mut problems = Vec::new();
    problems.extend(same_shape(&stat["etcd"], &typed(&etcd), "etcd", &[]));
    problems.extend(same_shape(&stat["mounts"], &typed(&mounts), "mounts", &[]));
    problems.extend(same_shape(
        &stat["zipserver"],
        &typed(&zip),
        "zipserver",
        &[],
    ));
    problems.extend(same_shape(
        &stat["plugins"]["classes"][0],
        &typed(&class),
        "plugins.classes",
        &[],
    ));
    // The reverse direction for these: nothing documented that the types
    // lack (same_shape reports both ways for objects).
    assert!(problems.is_empty(), "{problems:#?}");
    let _: AttemptKey = round_trip(&stat["attempts"][0]["key"]);
}

fn typed<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

/// `### \`METHOD /path...\`` headings of PROTOCOL.md: (method, path).
fn documented_endpoints() -> Vec<(String, String)> {
    split_fences(&protocol_md())
        .0
        .into_iter()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|h| h.strip_suffix('`'))
        .filter_map(|h| h.split_once(' '))
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect()
}

/// Whether a documented path (`/attempts/<attempt name>/<file>`) is the
/// endpoint's.
fn describes(endpoint: Endpoint, method: &str, path: &str) -> bool {
    let fixed = endpoint.prefix();
    method == endpoint.method().as_str()
        && if fixed == endpoint.path() {
            path == fixed
        } else {
            path.starts_with(fixed) && path[fixed.len()..].starts_with('<')
        }
}

#[test]
fn protocol_md_describes_exactly_the_served_endpoints() {
    let documented = documented_endpoints();
    for e in Endpoint::ALL {
        let n = documented
            .iter()
            .filter(|(m, p)| describes(e, m, p))
            .count();
        assert_eq!(n, 1, "{} {} is described {n} times", e.method(), e.path());
    }
    for (m, p) in &documented {
        assert!(
            Endpoint::ALL.iter().any(|e| describes(*e, m, p)),
            "PROTOCOL.md describes {m} {p}, which the worker does not serve"
        );
    }
}

/// Sends a request and returns the status and the body.
fn request(method: &str, url: &str, body: Option<&[u8]>) -> (u16, String) {
    let req = ureq::request(method, url).set("Content-Type", "application/json");
    let answer = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    (resp.status(), resp.into_string().expect("answer readable"))
}

fn parse<T: DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn a_live_worker_answers_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start_worker(dir.path(), &[]);
    let base = worker.base_url();

    let (code, text) = request("GET", &format!("{base}/health"), None);
    assert_eq!(code, 200);
    assert_eq!(parse::<HealthAnswer>(&text).protocol, PROTOCOL_VERSION);

    let job = c.job("docs", 0);
    let body = serde_json::to_vec(&job).unwrap();
    let (code, text) = request("POST", &format!("{base}/dcompact"), Some(&body));
    assert_eq!(code, 200, "{text}");
    let submitted: SubmitAnswer = parse(&text);
    assert_eq!(
        (submitted.addr.as_str(), submitted.protocol),
        (worker.addr.as_str(), PROTOCOL_VERSION)
    );

    let key = serde_json::to_vec(&job.key()).unwrap();
    let mut done = None;
    eventually("the attempt is done", || {
        let (code, text) = request("POST", &format!("{base}/probe"), Some(&key));
        assert_eq!(code, 200, "{text}");
        let answer: ProbeAnswer = parse(&text);
        assert!(answer.status != FAILED, "{answer:?}");
        done = answer.result.filter(|_| answer.status == DONE);
        done.is_some()
    });
    let result = base64::engine::general_purpose::STANDARD
        .decode(done.expect("done with a result"))
        .expect("the result is base64");

    // The output directory holds what PROTOCOL.md says.
    let out = Path::new(&job.output_dir);
    assert_eq!(std::fs::read(out.join("rpc.results")).unwrap(), result);
    assert_eq!(
        std::fs::read(out.join("compact.done")).unwrap(),
        done_marker(&job.key())
    );
    // And so does the attempt directory.
    let name = AttemptName::new(&job.key(), &job.hoster_root).unwrap();
    let attempt_dir = dir.path().join("worker").join(name.as_str());
    let kept: Job = parse(&read(&attempt_dir.join("job.json")));
    assert_eq!(kept, job);
    let log = read(&attempt_dir.join("LOG"));
    for line in log.lines() {
        let (stamp, _) = line.split_once(' ').expect("<time> <text>");
        let (secs, millis) = stamp.split_once('.').expect("<seconds>.<milliseconds>");
        assert!(secs.parse::<u64>().is_ok() && millis.len() == 3, "{line}");
    }
    assert!(attempt_dir.join("LOG.rocksdb").is_file());
    // Written when the attempt has ended: with `MULTI_PROCESS` the probe
    // answers `done` at the child's delivery, before the child is reaped.
    eventually("summary.html is written", || {
        attempt_dir.join("summary.html").is_file()
    });

    // /stat?html=0 has the documented shape.
    let stat = get_json(&format!("{base}/stat?html=0"));
    assert_eq!(stat["attempts"][0]["name"], name.as_str());
    let problems = same_shape(
        &example("StatSnapshot"),
        &stat,
        "stat",
        &["mounts", "etcd", "zipserver", "drain"],
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        get_json(&format!("{base}/list?html=0"))["identity"],
        stat["identity"]
    );

    // The documented error answers.
    let (code, text) = request("POST", &format!("{base}/shutdown"), Some(&key));
    assert_eq!(
        (code, parse::<ErrorAnswer>(&text).status.as_str()),
        (404, "NotFound")
    );
    let mut other = job.key();
    other.attempt = 9;
    let other = serde_json::to_vec(&other).unwrap();
    let (code, text) = request("POST", &format!("{base}/probe"), Some(&other));
    assert_eq!(
        (code, parse::<ErrorAnswer>(&text).status.as_str()),
        (404, "NotFound")
    );
    let (code, text) = request("POST", &format!("{base}/dcompact"), Some(&body));
    assert_eq!(
        (code, parse::<ErrorAnswer>(&text).status.as_str()),
        (412, "refused"),
        "a key is never reused"
    );
    let (code, text) = request("GET", &format!("{base}/dcompact"), None);
    assert_eq!(
        (code, parse::<ErrorAnswer>(&text).status.as_str()),
        (405, "malformed")
    );
    let (code, text) = request("GET", &format!("{base}/stop"), None);
    let missing: ErrorAnswer = parse(&text);
    assert_eq!((code, missing.error.as_str()), (404, "no such endpoint"));

    // Every endpoint of the list is served (none falls to "no such
    // endpoint" or a wrong method); `/drain` last, as it ends the worker's
    // service (it takes no body: 200).
    let drain_last = Endpoint::ALL
        .into_iter()
        .filter(|e| *e != Endpoint::Drain)
        .chain([Endpoint::Drain]);
    for e in drain_last {
        let path = e
            .path()
            .replace("{*path}", &format!("{}/LOG", name.as_str()));
        let url = format!("{base}{path}");
        let (code, text) = match e.method().as_str() {
            "POST" => request("POST", &url, Some(b"{}")),
            _ => request("GET", &url, None),
        };
        let expected = if e.method().as_str() == "POST" && e != Endpoint::Drain {
            400
        } else {
            200
        };
        assert_eq!(code, expected, "{} {path}: {text}", e.method());
    }
}
