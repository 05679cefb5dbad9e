//! Generated hostile jobs, built on a real compaction input of a real
//! RocksDB directory, fed to admission (`farm::worker::admission::admit`,
//! the code `/dcompact` runs) and to queue ordering
//! (`farm::worker::queue_order`): numbers at and beyond their bounds,
//! names and paths that climb, control and direction characters, huge
//! strings, and inputs whose own fields (input file names, level, OPTIONS
//! number) were rewritten. No case may panic; every job admitted is within
//! every bound, names only plain input files, and states the input's level;
//! every ordering of admitted jobs is a number.
//!
//! A plain generator with a fixed seed (`FARM_FUZZ_SEED`, default 22).
//! `generated_jobs_never_panic` runs 3,000 cases in the normal test run
//! (`FARM_FUZZ_CASES` asks for more); the ignored
//! `a_million_generated_jobs` runs 1,000,000 (`docs/SECURITY.md` has the
//! count and the time).

use crate::admission::capture;
use crate::harness::*;
use farm::protocol::job::Job;
use farm::protocol::limits::{self, check_job};
use farm::rocks::serialized::InputInfo;
use farm::worker::admission::{admit, AdmissionError};
use farm::worker::config::WorkerConfig;
use farm::worker::plugin_catalog::Catalog;
use farm::worker::queue_order::{priority, Waiting};
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// What a run saw.
#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    admitted: u64,
    malformed: u64,
    refused: u64,
}

/// Numbers an attacker tries for a field.
fn number(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..12) {
        0 => json!(u64::MAX),
        1 => json!(u32::MAX),
        2 => json!(i64::MIN),
        3 => json!(-1),
        4 => json!(0),
        5 => json!(limits::MAX_ATTEMPT),
        6 => json!(limits::MAX_ATTEMPT + 1),
        7 => json!(1e300),
        8 => json!("7"),
        9 => json!(rng.u64(..)),
        10 => json!(rng.u32(..100)),
        _ => json!(rng.i32(..)),
    }
}

/// Strings an attacker tries for a field, made from `plain`.
fn text(rng: &mut fastrand::Rng, plain: &str) -> Value {
    let s = match rng.u8(..14) {
        0 => format!("{plain}\nend outcome=succeeded"),
        1 => format!("{plain}\r"),
        2 => format!("{plain}\u{0}"),
        3 => format!("{plain}\u{1b}[31m"),
        4 => format!("{plain}\u{202e}"),
        5 => format!("{plain}/../../../../etc"),
        6 => "x".repeat(rng.usize(200..70_000)),
        7 => format!("{plain}{}", "é".repeat(rng.usize(100..3000))),
        8 => String::new(),
        9 => "/".into(),
        10 => format!("{plain}/.."),
        11 => format!("{plain}\u{85}"),
        _ => return json!(rng.u32(..)),
    };
    json!(s)
}

/// `input` with its text rewritten as an attacker would: an input file
/// name, the level, the OPTIONS number, or bytes flipped or cut.
fn mutate_input(rng: &mut fastrand::Rng, input: &[u8], info: &InputInfo) -> Vec<u8> {
    let text = String::from_utf8_lossy(&input[4..]).into_owned();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02X}")).collect::<String>();
    let first = hex(&info.input_files[0]);
    let evil = [
        "../../../../etc/shadow",
        "/..",
        "..",
        "a/b.sst",
        "x\n.sst",
        "",
        "/000001.sst",
    ];
    let changed = match rng.u8(..6) {
        0 if text.contains(&first) => text.replacen(&first, &hex(evil[rng.usize(..evil.len())]), 1),
        1 => text.replacen(
            &format!("output_level={};", info.output_level),
            &format!("output_level={};", rng.i32(-3..70)),
            1,
        ),
        2 => text.replacen(
            &format!("options_file_number={};", info.options_file_number),
            &format!("options_file_number={};", rng.u64(..)),
            1,
        ),
        3 => {
            let mut b = text.into_bytes();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..b.len());
                b[i] = rng.u8(..);
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        4 => text[..rng.usize(..text.len())].to_string(),
        _ => text,
    };
    let mut out = input[..4].to_vec();
    out.extend_from_slice(changed.as_bytes());
    out
}

/// One generated job: the captured job with a few fields changed.
fn generate(rng: &mut fastrand::Rng, base: &Value, input: &[u8], info: &InputInfo) -> Vec<u8> {
    let mut job = base.clone();
    let numbers = [
        "attempt",
        "start_time",
        "job_id",
        "output_level",
        "estimate_time_us",
        "protocol",
    ];
    let strings = [
        "instance_name",
        "dbname",
        "hoster_root",
        "output_dir",
        "code_version",
        "cf_name",
        "nfs_type",
        "nfs_mnt_src",
        "nfs_mnt_opt",
    ];
    for _ in 0..rng.usize(0..3) {
        let field = numbers[rng.usize(..numbers.len())];
        job[field] = number(rng);
    }
    for _ in 0..rng.usize(0..3) {
        let field = strings[rng.usize(..strings.len())];
        let plain = job[field].as_str().unwrap_or("").to_string();
        job[field] = text(rng, &plain);
    }
    if rng.u8(..3) == 0 {
        job["compaction_service_input"] = json!(Job::encode_input(&mutate_input(rng, input, info)));
    }
    if rng.u8(..10) == 0 {
        job["plugins"] = json!((0..rng.usize(0..100))
            .map(|i| json!({"name": format!("p{i}\n"), "version": number(rng)}))
            .collect::<Vec<_>>());
    }
    if rng.u8(..20) == 0 {
        job["job_info"]["db_session_id"] = text(rng, "s");
    }
    serde_json::to_vec(&job).expect("a JSON value serializes")
}

/// What an admitted job must be.
fn assert_sound(job: &Job, prepared: &farm::worker::runner::PreparedJob, body: &[u8]) {
    let shown = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    assert_eq!(check_job(job), Ok(()), "{}", shown());
    let info = InputInfo::parse(&prepared.input).expect("an admitted input parses");
    assert_eq!(info.output_level, job.output_level, "{}", shown());
    for (name, _) in &prepared.input_files {
        assert!(
            !name.is_empty() && !name.contains('/') && name != "." && name != "..",
            "{name:?}: {}",
            shown()
        );
    }
    assert!(info.options_file_number <= farm::worker::input_paths::MAX_OPTIONS_FILE_NUMBER);
}

fn run(cases: u64) -> (Tally, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let info = InputInfo::parse(&c.input).unwrap();
    std::fs::create_dir_all(dir.path().join("worker")).unwrap();
    let env = |name: &str| match name {
        "WORKER_DB_ROOT" => Some(dir.path().join("worker").display().to_string()),
        "HOSTER_ROOTS" => Some(test_hoster_roots(dir.path())),
        "OUTPUT_SPACE_MARGIN" => Some("1M".to_string()),
        _ => None,
    };
    let config = WorkerConfig::load_from(None, &env).expect("a valid config");
    let catalog = Catalog::load_here(&[]).expect("no plugins");
    let base = serde_json::to_value(c.job("fuzz", 0)).unwrap();
    let seed = std::env::var("FARM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(22);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    let mut admitted: Vec<(Job, u64, Duration)> = Vec::new();
    let started = Instant::now();
    for case in 0..cases {
        let body = generate(&mut rng, &base, &c.input, &info);
        let outcome = catch_unwind(AssertUnwindSafe(|| admit(&config, &catalog, None, &body)));
        let outcome = outcome.unwrap_or_else(|_| {
            panic!(
                "case {case} (seed {seed}) panicked admission: {}",
                String::from_utf8_lossy(&body)
            )
        });
        match outcome {
            Ok((job, _name, prepared)) => {
                assert_sound(&job, &prepared, &body);
                tally.admitted += 1;
                let waited = Duration::from_micros(rng.u64(..u64::MAX / 2));
                admitted.push((job, prepared.input_bytes, waited));
                if admitted.len() > 64 {
                    admitted.remove(0);
                }
            }
            Err(AdmissionError::Malformed(_)) => tally.malformed += 1,
            Err(AdmissionError::Refused(_)) => tally.refused += 1,
        }
        // Queue ordering over what was admitted, and over raw numbers.
        let best = admitted
            .iter()
            .map(|(job, bytes, waited)| {
                priority(Waiting {
                    waited: *waited,
                    input_bytes: *bytes,
                    hint_us: job.estimate_time_us,
                    output_level: job.output_level,
                    attempt: job.attempt,
                })
            })
            .fold(f64::MIN, f64::max);
        assert!(!best.is_nan(), "case {case}");
        let raw = priority(Waiting {
            waited: Duration::from_nanos(rng.u64(..)),
            input_bytes: rng.u64(..),
            hint_us: rng.u64(..),
            output_level: rng.i32(..),
            attempt: rng.u32(..),
        });
        assert!(!raw.is_nan(), "case {case}");
        tally.cases += 1;
    }
    (tally, started.elapsed())
}

fn cases(default: u64) -> u64 {
    std::env::var("FARM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn report(tally: &Tally, took: Duration) {
    println!(
        "{} generated jobs in {:.1} s ({:.0}/s): {} admitted, {} malformed (400), {} refused (412), no panic",
        tally.cases,
        took.as_secs_f64(),
        tally.cases as f64 / took.as_secs_f64(),
        tally.admitted,
        tally.malformed,
        tally.refused
    );
    assert!(
        tally.admitted > 0,
        "some generated jobs are valid: {tally:?}"
    );
    assert!(tally.malformed > 0 && tally.refused > 0, "{tally:?}");
}

#[test]
fn generated_jobs_never_panic() {
    let (tally, took) = run(cases(3_000));
    report(&tally, took);
}

#[test]
#[ignore = "1,000,000 cases: run on purpose (docs/SECURITY.md)"]
fn a_million_generated_jobs() {
    let asked = cases(1_000_000);
    let (tally, took) = run(asked);
    report(&tally, took);
    assert_eq!(tally.cases, asked);
}
