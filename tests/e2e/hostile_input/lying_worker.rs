//! A worker that lies about its result: a real worker runs each compaction,
//! and a proxy between it and the hoster rewrites the result it reports
//! (one output listed twice, an output's smallest key moved below every
//! input key, the record count inflated). The hoster refuses each such
//! result with its own fallback reason, RocksDB compacts locally, the DB
//! keeps taking writes, and the data equals the model.

use crate::fault_proxy::Fault;
use crate::rocksdb_scenarios::setup::*;

fn manual_options() -> rocksdb::Options {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    o
}

/// The serialized result's text (after its 4-byte version) and version.
fn split(result: &[u8]) -> (&[u8], String) {
    (
        &result[..4],
        String::from_utf8_lossy(&result[4..]).into_owned(),
    )
}

fn join(version: &[u8], text: &str) -> Vec<u8> {
    let mut out = version.to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

/// The end (exclusive) of the brace group that opens at `open`.
fn group_end(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in the result: {text}")
}

/// The first output file's `{...}` group.
fn first_output(text: &str) -> (usize, usize) {
    let list = text
        .find("output_files={")
        .expect("the result lists outputs")
        + "output_files=".len();
    let first = list + 1;
    assert_eq!(&text[first..first + 1], "{", "{text}");
    (first, group_end(text, first))
}

/// Lists the first output file twice.
fn duplicate_output(result: &[u8]) -> Vec<u8> {
    let (version, text) = split(result);
    let (start, end) = first_output(&text);
    let dup = format!("{}:{}{}", &text[..end], &text[start..end], &text[end..]);
    join(version, &dup)
}

/// Moves the first output's smallest key below every key (a 0 byte in
/// front of its user key).
fn output_outside_inputs(result: &[u8]) -> Vec<u8> {
    let (version, text) = split(result);
    let (start, end) = first_output(&text);
    let field = "smallest_internal_key=";
    let at = start + text[start..end].find(field).expect("outputs carry keys") + field.len();
    let moved = format!("{}00{}", &text[..at], &text[at..]);
    join(version, &moved)
}

/// Multiplies every `num_output_records` by 1000.
fn inflated_totals(result: &[u8]) -> Vec<u8> {
    let (version, text) = split(result);
    let field = "num_output_records=";
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find(field) {
        let value_at = at + field.len();
        let digits = rest[value_at..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - value_at);
        let n: u64 = rest[value_at..value_at + digits].parse().expect("a count");
        out.push_str(&rest[..value_at]);
        out.push_str(&(n * 1000 + 1000).to_string());
        rest = &rest[value_at + digits..];
    }
    out.push_str(rest);
    join(version, &out)
}

/// After a fallback the DB takes writes and compacts them.
fn keeps_taking_writes(s: &Scenario) {
    for id in 0..200 {
        s.put("cf_2", &key(id), &format!("value_new{id}"));
    }
    s.flush("cf_2");
    s.compact_range("cf_2", None, None);
    for id in 0..200 {
        assert_eq!(s.get("cf_2", &key(id)), Some(format!("value_new{id}")));
    }
}

fn lie(rewrite: fn(&[u8]) -> Vec<u8>, reason: &str, says: &str) {
    let s = Scenario::start(
        manual_options(),
        &[],
        Fault::RewriteResult(rewrite),
        serde_json::json!({"http_max_retry": 1, "worker_backoff": 0}),
    );
    s.generate_test_data();
    s.compact_range("default", None, None);
    let c = s.settled_counts();
    println!("{reason}: {c:?}");
    // The lie still parses as a result: it reached the hoster's check.
    for honest in s.proxy.results() {
        assert!(honest.error.is_none());
    }
    assert!(c.worker_succeeded >= 1, "{c:?}");
    assert_eq!(c.installed, 0, "{c:?}");
    assert_eq!(c.fallbacks[reason], c.worker_succeeded, "{c:?}");
    assert_eq!(s.proxy.injected(), c.worker_succeeded);
    let why = &s.hoster.farm.stats().last_errors[reason];
    assert!(why.contains(says), "{why}");
    s.verify_test_data();
    keeps_taking_writes(&s);
}

#[test]
fn a_duplicated_output_name_is_compacted_locally() {
    lie(duplicate_output, "duplicate_output", "named twice");
}

#[test]
fn an_output_outside_the_inputs_key_range_is_compacted_locally() {
    lie(
        output_outside_inputs,
        "outside_key_range",
        "outside the inputs' key range",
    );
}

#[test]
fn inflated_totals_are_compacted_locally() {
    lie(inflated_totals, "totals_mismatch", "do not add up");
}

#[test]
fn an_honest_result_passes_every_check() {
    // The same path through the proxy, the result unchanged: the checks
    // above refuse lies, not results.
    let s = Scenario::start(
        manual_options(),
        &[],
        Fault::RewriteResult(|r| r.to_vec()),
        serde_json::json!({"http_max_retry": 1, "worker_backoff": 0}),
    );
    s.generate_test_data();
    s.compact_range("default", None, None);
    let c = s.settled_counts();
    println!("honest: {c:?}");
    assert!(c.installed >= 1, "{c:?}");
    assert_eq!(c.installed, c.worker_succeeded, "{c:?}");
    assert_eq!(c.fallbacks.values().sum::<u64>(), 0, "{c:?}");
    for r in s.proxy.results() {
        assert!(!r.output_files.is_empty());
    }
    s.verify_test_data();
}
