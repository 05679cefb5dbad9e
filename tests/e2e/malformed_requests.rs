//! Requests a worker must turn away: each gets 400/401/412 with a JSON error
//! that names the problem, and nothing is created outside the worker's roots.

use crate::harness::*;
use serde_json::{json, Value};

fn job(root: &str, dbname: &str, output_dir: &str) -> Value {
    json!({
        "instance_name": "bad",
        "dbname": dbname,
        "hoster_root": root,
        "start_time": 1,
        "job_id": 5u64 << 32,
        "attempt": 0,
        "cf_name": "default",
        "output_level": 1,
        "output_dir": output_dir,
        "compaction_service_input": "AAAA",
    })
}

#[test]
fn malformed_and_hostile_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let db = root.join("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("CURRENT"), "MANIFEST-000001\n").unwrap();
    std::fs::create_dir_all(root.join("other")).unwrap();
    std::fs::write(root.join("other/keep.sst"), "precious").unwrap();
    let outside = dir.path().join("outside");
    let worker = start_worker(
        dir.path(),
        &[
            ("MAX_REQUEST_BYTES", "65536".into()),
            ("WORKER_AUTH_TOKEN", "s3cret".into()),
        ],
    );
    let url = format!("{}/dcompact", worker.base_url());
    let auth = [("Authorization", "Bearer s3cret")];
    let r = root.display().to_string();
    let d = db.display().to_string();

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "broken JSON",
            b"{\"instance_name\": ".to_vec(),
            400,
            "invalid job JSON",
        ),
        (
            "missing field",
            br#"{"instance_name":"x"}"#.to_vec(),
            400,
            "missing field",
        ),
        (
            "output_dir outside hoster_root",
            job(&r, &d, &outside.display().to_string())
                .to_string()
                .into_bytes(),
            412,
            "not below hoster_root",
        ),
        (
            "dot-dot in output_dir",
            job(&r, &d, &format!("{r}/../outside"))
                .to_string()
                .into_bytes(),
            412,
            "..",
        ),
        (
            "dot-dot in dbname",
            job(&r, &format!("{r}/db/../../outside"), &format!("{d}/out"))
                .to_string()
                .into_bytes(),
            412,
            "dbname",
        ),
        (
            "hostile instance name",
            {
                let mut j = job(&r, &d, &format!("{d}/out"));
                j["instance_name"] = json!("../../escape");
                j.to_string().into_bytes()
            },
            412,
            "instance_name",
        ),
        (
            "output_dir holding someone else's files",
            job(&r, &d, &format!("{r}/other")).to_string().into_bytes(),
            412,
            "already exists",
        ),
        ("huge body", vec![b' '; 200_000], 400, "MAX_REQUEST_BYTES"),
        (
            "input that is not a compaction input",
            job(&r, &d, &format!("{d}/out")).to_string().into_bytes(),
            400,
            "compaction_service_input",
        ),
    ];
    for (what, body, status, needle) in &cases {
        let (code, answer) = post(&url, body, &auth);
        assert_eq!(code, *status, "{what}: {answer}");
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error in {answer}"));
        assert!(
            error.contains(needle),
            "{what}: {error:?} should mention {needle:?}"
        );
        assert!(answer["status"].is_string(), "{what}: {answer}");
    }

    // Credentials: no token or a wrong one is 401 and changes nothing.
    let (code, answer) = post(
        &url,
        job(&r, &d, &format!("{d}/out")).to_string().as_bytes(),
        &[],
    );
    assert_eq!(code, 401, "{answer}");
    let (code, _) = post(&url, b"{}", &[("Authorization", "Bearer wrong")]);
    assert_eq!(code, 401);
    let (code, answer) = post(&format!("{}/shutdown", worker.base_url()), b"{}", &[]);
    assert_eq!(code, 401, "{answer}");

    // Probing garbage or an unknown attempt.
    let (code, _) = post(&format!("{}/probe", worker.base_url()), b"nope", &[]);
    assert_eq!(code, 400);
    let key = json!({"instance_name":"bad","start_time":1,"dbname":d,"job_id":1,"attempt":0});
    let (code, answer) = post(
        &format!("{}/probe", worker.base_url()),
        key.to_string().as_bytes(),
        &[],
    );
    assert_eq!((code, answer["status"].as_str()), (404, Some("NotFound")));

    // Nothing was created outside the roots, and no attempt was accepted.
    assert!(!outside.exists(), "nothing created outside hoster_root");
    assert!(!db.join("out").exists(), "no output dir for a refused job");
    let attempts = attempt_entries(&dir.path().join("worker"));
    assert!(attempts.is_empty(), "no attempt directories: {attempts:?}");
    let counters = &worker_stat(&worker)["counters"];
    assert_eq!(counters["accepted"], 0);
    assert_eq!(counters["rejected"]["malformed"], 4, "{counters}");
    assert_eq!(counters["rejected"]["refused"], 5, "{counters}");
    assert_eq!(
        std::fs::read_to_string(root.join("other/keep.sst")).unwrap(),
        "precious"
    );
    assert_eq!(counters["rejected"]["unauthorized"], 2, "{counters}");
}
