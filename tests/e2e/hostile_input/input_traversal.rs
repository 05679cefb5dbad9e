//! Input file names from the compaction input once reached the host's
//! files: `../../../../etc/shadow` made the worker, as root, report that
//! file's size in `/stat` and `summary.html`. Now every path from the
//! input is a plain name beneath the mapped DB directory, or a 412 naming
//! the field, and no size of an outside file shows anywhere.

use super::worker::start;
use crate::admission::capture;
use crate::harness::*;
use farm::protocol::job::Job;
use farm::rocks::serialized::InputInfo;
use std::path::Path;

/// A file outside every root, of a size no other file here has.
const SECRET_SIZE: usize = 9_876_543;

/// `input` with the first occurrence of `from` replaced by `to`, in the
/// spelling RocksDB's serialization used (hex upper or lower case, or
/// plain).
fn rewrite_input(input: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(&input[4..]).into_owned();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02X}")).collect::<String>();
    let (found, replacement) = [
        (hex(from), hex(to)),
        (hex(from).to_lowercase(), hex(to).to_lowercase()),
        (from.to_string(), to.to_string()),
    ]
    .into_iter()
    .find(|(h, _)| text.contains(h.as_str()))
    .unwrap_or_else(|| panic!("the input holds {from}: {text}"));
    let mut out = input[..4].to_vec();
    out.extend_from_slice(text.replacen(&found, &replacement, 1).as_bytes());
    out
}

/// Everything the worker shows or wrote: `/stat`, `/list` (JSON and
/// HTML) and every file below its root.
fn everything_shown(worker: &crate::sandbox::SandboxedWorker, root: &Path) -> String {
    let base = worker.base_url();
    let mut all = String::new();
    for page in ["/stat?html=0", "/stat", "/list?html=0", "/list"] {
        all.push_str(
            &ureq::get(&format!("{base}{page}"))
                .call()
                .unwrap()
                .into_string()
                .unwrap(),
        );
    }
    for f in files_where(root, &|_| true) {
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(f).unwrap_or_default(),
        ));
    }
    all
}

#[test]
fn paths_from_the_input_stay_in_the_db_directory() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), vec![b's'; SECRET_SIZE]).unwrap();
    let worker = start(dir.path(), &[("DEL_WORKER_TEMP_DB", "false".into())]);
    let first = InputInfo::parse(&c.input).unwrap().input_files[0].clone();
    let db = c.root.join("db");
    let climb = format!(
        "{}{}",
        "../".repeat(db.components().count()),
        outside
            .join("secret")
            .display()
            .to_string()
            .trim_start_matches('/')
    );
    for evil in [
        "../../outside/secret".to_string(),
        climb,
        "/../../../../etc/shadow".to_string(),
        format!("sub/{}", first.trim_start_matches('/')),
        "..".to_string(),
    ] {
        let mut job = c.job("evil", 0);
        let input = rewrite_input(&c.input, &first, &evil);
        assert_eq!(InputInfo::parse(&input).unwrap().input_files[0], evil);
        job.compaction_service_input = Job::encode_input(&input);
        let (code, answer) = submit_job(&worker, &job);
        assert_eq!(code, 412, "{evil}: {answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(why.starts_with("input_files:"), "{why}");
    }
    // The OPTIONS file number is held to its bound too.
    let number = InputInfo::parse(&c.input).unwrap().options_file_number;
    let text = String::from_utf8_lossy(&c.input[4..]).into_owned();
    let field = format!("options_file_number={number};");
    assert!(text.contains(&field), "{text}");
    let mut input = c.input[..4].to_vec();
    input.extend_from_slice(
        text.replacen(&field, &format!("options_file_number={};", u64::MAX), 1)
            .as_bytes(),
    );
    let mut job = c.job("evil", 1);
    job.compaction_service_input = Job::encode_input(&input);
    let (code, answer) = submit_job(&worker, &job);
    assert_eq!(code, 412, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("options_file_number:"),
        "{answer}"
    );

    // A normal job runs beside them, and nothing anywhere tells the
    // outside file's size or name.
    let normal = c.job("normal", 0);
    let (code, answer) = submit_job(&worker, &normal);
    assert_eq!(code, 200, "{answer}");
    super::worker::wait_done(&worker, &normal);
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["accepted"], 1, "{stat}");
    assert_eq!(stat["counters"]["rejected"]["refused"], 6, "{stat}");
    let shown = everything_shown(&worker, &dir.path().join("worker"));
    assert!(
        shown.contains("summary") || shown.contains("normal"),
        "the pages were read"
    );
    for secret in [
        SECRET_SIZE.to_string(),
        "secret".to_string(),
        "shadow".to_string(),
    ] {
        assert!(!shown.contains(&secret), "{secret} shows");
    }
}
