//! Requests that try to make the worker touch what is not its own: each is
//! refused with a 4xx JSON that names the reason, or ends the attempt
//! without harm, and the canary outside the allowed roots stays as it was.

use super::canary::{assert_unchanged, canary, snapshot};
use crate::admission::capture;
use crate::harness::*;
use crate::sandbox::{Sandbox, SandboxedWorker};
use farm::protocol::job::Job;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn start(dir: &Path, extra: &[(&str, String)]) -> SandboxedWorker {
    start_in(Sandbox::new().share(dir), dir, extra)
}

fn start_in(sandbox: Sandbox, dir: &Path, extra: &[(&str, String)]) -> SandboxedWorker {
    sandbox.start_test_worker(dir, extra)
}

/// A copy of the captured DB outside the worker's hoster roots, and a job
/// for it under `hoster_root`.
fn job_elsewhere(c: &farm::workload::capture::Captured, root: &Path, hoster_root: &str) -> Job {
    let db = root.join("db");
    copy_dir(&c.root.join("db"), &db);
    let mut job = c.job("evil", 0);
    job.hoster_root = hoster_root.to_owned();
    job.dbname = db.display().to_string();
    job.output_dir = db.join("out/evil").display().to_string();
    job
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_request_never_chooses_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[]);
    let elsewhere = dir.path().join("elsewhere");
    let job = job_elsewhere(&c, &elsewhere, "/");
    let before = snapshot(&elsewhere);
    let d = dir.path().display().to_string();
    for hoster_root in ["/", "/tmp", d.as_str(), &elsewhere.display().to_string()] {
        let mut j = job.clone();
        j.hoster_root = hoster_root.to_owned();
        let (code, answer) = submit_job(&worker, &j);
        assert_eq!(code, 412, "hoster_root {hoster_root}: {answer}");
        assert_eq!(answer["status"], "refused");
        assert!(
            answer["error"].as_str().unwrap().contains("HOSTER_ROOTS"),
            "{answer}"
        );
    }
    // Inside an allowed root, a path out of it is still refused.
    let mut j = c.job("evil", 1);
    j.output_dir = elsewhere.join("db/out").display().to_string();
    let (code, answer) = submit_job(&worker, &j);
    assert_eq!(code, 412, "{answer}");
    assert_unchanged(&elsewhere, &before);
    assert_eq!(worker_stat(&worker)["counters"]["accepted"], 0);
}

#[test]
fn input_files_are_names_in_the_db_directory() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[]);
    // The input's first file name replaced by a hostile one: RocksDB's
    // serialization writes strings hex-encoded.
    let text = String::from_utf8_lossy(&c.input[4..]).into_owned();
    let first = farm::rocks::serialized::InputInfo::parse(&c.input)
        .unwrap()
        .input_files[0]
        .clone();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02X}")).collect::<String>();
    let evil = "../../../../etc/shadow";
    let (found, replacement) = [
        (hex(&first), hex(evil)),
        (hex(&first).to_lowercase(), hex(evil).to_lowercase()),
        (first.clone(), evil.to_string()),
    ]
    .into_iter()
    .find(|(h, _)| text.contains(h.as_str()))
    .unwrap_or_else(|| panic!("the input names {first}: {text}"));
    let hostile = text.replacen(&found, &replacement, 1);
    let mut input = c.input[..4].to_vec();
    input.extend_from_slice(hostile.as_bytes());
    let parsed = farm::rocks::serialized::InputInfo::parse(&input).expect("still an input");
    assert_eq!(parsed.input_files[0], evil);
    let mut job = c.job("evil", 0);
    job.compaction_service_input = Job::encode_input(&input);
    let (code, answer) = submit_job(&worker, &job);
    assert!(code == 400 || code == 412, "{code} {answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("input file"),
        "{answer}"
    );
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["accepted"], 0, "{stat}");
    assert!(!stat.to_string().contains("shadow"), "{stat}");
}

#[test]
fn job_json_never_shows_mount_options() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[("DEL_WORKER_TEMP_DB", "false".into())]);
    let mut job = c.job("secret", 0);
    job.nfs_mnt_opt = "vers=4.1,password=hunter2".into();
    let (code, answer) = submit_job(&worker, &job);
    assert_eq!(code, 200, "{answer}");
    eventually("the attempt ended", || {
        probe_job(&worker, &job)["status"] == "done"
    });
    let name = worker_stat(&worker)["attempts"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let served = ureq::get(&format!("{}/attempts/{name}/job.json", worker.base_url()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(served.contains("nfs_mnt_opt"), "{served}");
    assert!(!served.contains("hunter2"), "{served}");
    for f in files_named(&dir.path().join("worker"), "job.json") {
        assert!(!std::fs::read_to_string(f).unwrap().contains("hunter2"));
    }
}

/// The pid of an attempt child whose attempt name starts with `prefix`.
fn child_of(prefix: &str) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let marker = format!("DCOMPACT_ATTEMPT={prefix}");
        if env
            .split(|b| *b == 0)
            .any(|v| v.starts_with(marker.as_bytes()))
        {
            return Some(pid);
        }
    }
    None
}

/// The hoster swaps an intermediate directory of a queued attempt's
/// output directory for a symlink to the canary: when the attempt runs,
/// the worker refuses to follow it, and nothing of the canary changes.
#[test]
fn a_symlink_swapped_in_while_queued_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let target = canary(dir.path());
    let before = snapshot(&target);
    // One slot; attempt 0 holds it (its child stopped), attempt 1 waits.
    // Every child sleeps a second as it starts (the fixture plugin), long
    // enough to find the first one and stop it.
    let plugin = crate::child_faults::fixture_plugin();
    let worker = start_in(
        Sandbox::new().share(dir.path()).share_read_only(plugin),
        dir.path(),
        &[
            ("MULTI_PROCESS", "true".into()),
            ("MAX_PARALLEL_COMPACTIONS", "1".into()),
            ("PLUGINS", plugin.display().to_string()),
            ("FIXTURE_BEHAVIOUR", "sleep1".into()),
        ],
    );
    let holder = c.job("swap", 0);
    let mut queued = c.job("swap", 1);
    let out_parent = c.root.join("db/out/swap-parent");
    queued.output_dir = out_parent.join("att").display().to_string();
    assert_eq!(submit_job(&worker, &holder).0, 200);
    let mut stopped = None;
    eventually("the first attempt's child runs", || {
        stopped = child_of("swap/7/db/job-");
        stopped.is_some() || probe_job(&worker, &holder)["status"] == "done"
    });
    assert_eq!(
        probe_job(&worker, &holder)["status"],
        "running",
        "{:?}",
        worker_stat(&worker)
    );
    let pid = stopped.unwrap();
    // SAFETY: signalling a process of this test's worker by pid.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let (code, answer) = submit_job(&worker, &queued);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(probe_job(&worker, &queued)["status"], "queued");
    // The swap: `swap-parent` becomes a symlink to the canary.
    std::os::unix::fs::symlink(&target, &out_parent).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    eventually("the swapped attempt ended", || {
        probe_job(&worker, &queued)["status"] == "failed"
    });
    let failed = probe_job(&worker, &queued);
    assert_eq!(failed["outcome"], "setup_failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("symlink"),
        "{failed}"
    );
    eventually("the first attempt ended", || {
        probe_job(&worker, &holder)["status"] == "done"
    });
    assert_unchanged(&target, &before);
    assert!(std::fs::symlink_metadata(&out_parent).unwrap().is_symlink());
    drop(worker);
    // And the worker never deleted anything it did not create: the
    // hoster's DB copy is whole.
    let files: Vec<PathBuf> = std::fs::read_dir(c.root.join("db"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("CURRENT")), "{files:?}");
    std::thread::sleep(Duration::from_millis(10));
}

/// Two jobs whose names collide (`/data/a_b` and `/data/a/b` both name
/// their DB `a_b`; a trailing `/` names the same DB twice): the first runs,
/// every other is refused while the first is known, and none touches the
/// first one's files.
#[test]
fn jobs_whose_names_collide_never_share_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path());
    let worker = start(dir.path(), &[]);
    let job_for = |rel: &str, dbname: String| {
        let db = c.root.join(rel);
        copy_dir(&c.root.join("db"), &db);
        let mut job = c.job("names", 0);
        job.dbname = dbname;
        job.output_dir = db.join("out").display().to_string();
        job
    };
    let first = job_for("a_b", c.root.join("a_b").display().to_string());
    let second = job_for("a/b", c.root.join("a/b").display().to_string());
    let mut trailing = first.clone();
    trailing.dbname.push('/');
    trailing.output_dir = c.root.join("a_b/out-trailing").display().to_string();

    let (code, answer) = submit_job(&worker, &first);
    assert_eq!(code, 200, "{answer}");
    let second_before = snapshot(&c.root.join("a/b"));
    for other in [&second, &trailing] {
        let (code, answer) = submit_job(&worker, other);
        assert_eq!(
            code, 412,
            "{} after {}: {answer}",
            other.dbname, first.dbname
        );
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains("in use by another job"), "{error}");
        assert!(
            !Path::new(&other.output_dir).exists(),
            "{}",
            other.output_dir
        );
    }
    eventually("the first job is done", || {
        probe_job(&worker, &first)["status"] == "done"
    });
    // Still refused once the first has ended: its result is answerable.
    let (code, _) = submit_job(&worker, &second);
    assert_eq!(code, 412);
    assert_unchanged(&c.root.join("a/b"), &second_before);
    let outputs = std::fs::read_dir(&first.output_dir).unwrap().count();
    assert!(
        outputs > 0,
        "the first job's outputs are in its own directory"
    );
    let stat = worker_stat(&worker);
    assert_eq!(stat["counters"]["accepted"], 1, "{stat}");
    assert_eq!(stat["counters"]["succeeded"], 1, "{stat}");
}
