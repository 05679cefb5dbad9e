//! An `output_dir` holding a newline and a fake `end outcome=succeeded`
//! line was once accepted, and the attempt's `LOG` then held the forged
//! line. Now every field that can reach a log, a file name or a page is
//! refused (400) when it holds a control or direction character, and
//! nothing of the attempt is created.

use super::worker::start;
use crate::admission::capture;
use crate::harness::*;

#[test]
fn control_characters_in_any_field_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[("DEL_WORKER_TEMP_DB", "false".into())]);
    let forged = "\n2026-01-01T00:00:00Z end outcome=succeeded";
    let mut attacks: Vec<(&str, farm::protocol::job::Job)> = Vec::new();
    let mut job = c.job("forge", 0);
    job.output_dir.push_str(forged);
    attacks.push(("output_dir", job));
    let mut job = c.job("forge", 1);
    job.code_version = format!("1.0{forged}");
    attacks.push(("code_version", job));
    let mut job = c.job("forge\r", 2);
    job.output_dir = c.job("forge", 2).output_dir;
    attacks.push(("instance_name", job));
    let mut job = c.job("forge", 3);
    job.dbname.push_str("\u{1b}[2J");
    attacks.push(("dbname", job));
    let mut job = c.job("forge", 4);
    job.nfs_mnt_opt = "vers=4\u{0}".into();
    attacks.push(("nfs_mnt_opt", job));
    let mut job = c.job("forge", 5);
    job.output_dir.push_str("\u{202e}txt.exe");
    attacks.push(("output_dir", job));
    let mut job = c.job("forge", 6);
    job.job_info.as_mut().unwrap().db_session_id = "s\nend".into();
    attacks.push(("job_info.db_session_id", job));
    for (field, job) in &attacks {
        let (code, answer) = submit_job(&worker, job);
        assert_eq!(code, 400, "{field}: {answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(why.starts_with(&format!("{field} holds")), "{field}: {why}");
    }
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["accepted"], 0, "{stat}");
    assert_eq!(
        stat["counters"]["rejected"]["malformed"],
        attacks.len(),
        "{stat}"
    );
    assert!(attempt_entries(&dir.path().join("worker")).is_empty());
    assert!(attempt_logs(&dir.path().join("worker"))
        .iter()
        .all(|log| !log.contains("end outcome=succeeded")));
    // A plain job still runs and its LOG has exactly one end line.
    let plain = c.job("plain", 0);
    let (code, answer) = submit_job(&worker, &plain);
    assert_eq!(code, 200, "{answer}");
    super::worker::wait_done(&worker, &plain);
    let logs = attempt_logs(&dir.path().join("worker"));
    assert_eq!(logs.len(), 1);
    assert!(!logs[0].contains("2026-01-01T00:00:00Z"), "{}", logs[0]);
}
