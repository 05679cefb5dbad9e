//! `CompactionInfo`: the `CompactionServiceJobInfo` RocksDB hands to the
//! service reaches the worker with the job (`job_info` in the job JSON, read
//! here from the jobs the proxy forwarded).

use super::setup::*;
use farm::rocks::service::JobInfo;
use rocksdb::{BottommostLevelCompaction, CompactOptions, Env};

const BOTTOM: i32 = 0;
const LOW: i32 = 1;
const LEVEL_L0_FILES_NUM: i32 = 1;
const MANUAL_COMPACTION: i32 = 9;

/// The job info of the last job the worker accepted.
fn last_info(s: &Scenario) -> JobInfo {
    let job = s.proxy.jobs().pop().expect("a job reached the worker");
    serde_json::from_value(job["job_info"].clone()).expect("the job carries its job info")
}

fn put_flushes(s: &Scenario, files: u32, stride: u32, value: &str) {
    for i in 0..files {
        for j in 0..10 {
            let id = i * stride + j;
            s.put("default", &key(id), &format!("{value}{id}"));
        }
        s.flush("default");
    }
}

#[test]
fn compaction_info() {
    // Automatic compactions: DB name, id and session, priority LOW.
    let s = Scenario::plain(current_options());
    s.generate_test_data();
    s.wait();
    assert!(s.counts().installed >= 1);
    let info = last_info(&s);
    assert_eq!(info.db_name, s.d.db.display().to_string());
    let identity = std::fs::read_to_string(s.d.db.join("IDENTITY")).expect("IDENTITY");
    assert_eq!(info.db_id, identity.trim());
    assert!(!info.db_session_id.is_empty());
    let sessions: Vec<String> = s
        .proxy
        .jobs()
        .iter()
        .map(|j| {
            j["job_info"]["db_session_id"]
                .as_str()
                .expect("session")
                .to_owned()
        })
        .collect();
    assert!(sessions.iter().all(|id| *id == info.db_session_id));
    assert_eq!(info.priority, LOW);
    drop(s);

    // Priority BOTTOM: two levels, a bottom-priority thread.
    let mut env = Env::new().expect("default env");
    env.set_bottom_priority_background_threads(1);
    let mut o = current_options();
    o.set_env(&env);
    o.set_num_levels(2);
    let s = Scenario::plain(o);
    put_flushes(&s, 20, 10, "value");
    put_flushes(&s, 4, 20, "value_new");
    s.wait();
    let info = last_info(&s);
    assert_eq!(info.compaction_reason, LEVEL_L0_FILES_NUM);
    assert!(!info.is_manual_compaction && !info.is_full_compaction);
    assert!(info.is_bottommost_level);
    assert_eq!(info.priority, BOTTOM);
    assert_eq!((info.base_input_level, info.output_level), (0, 1));
    drop(s);

    // A trivial move runs locally without asking the service.
    let mut o = current_options();
    o.set_num_levels(4);
    let s = Scenario::plain(o);
    put_flushes(&s, 4, 10, "value_new_new");
    s.wait();
    let c = s.settled_counts();
    assert_eq!(
        (c.worker_accepted, c.installed, c.local),
        (0, 0, 0),
        "{c:?}"
    );
    assert!(s.proxy.jobs().is_empty());
    drop(s);

    // A full compaction of the last level into itself.
    let mut o = current_options();
    o.set_num_levels(6);
    let s = Scenario::plain(o);
    put_flushes(&s, 20, 10, "value_new_new");
    // MoveFilesToLevel(5): the 20 disjoint files move down untouched.
    s.compact_range("default", None, None);
    assert_eq!(s.files_per_level("default"), "0,0,0,0,0,20");
    let mut force = CompactOptions::default();
    force.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    s.hoster
        .db
        .compact_range_cf_opt(s.cf("default"), None::<&[u8]>, None::<&[u8]>, &force);
    s.wait();
    let info = last_info(&s);
    assert!(info.is_manual_compaction && info.is_full_compaction);
    assert!(info.is_bottommost_level);
    assert_eq!(info.compaction_reason, MANUAL_COMPACTION);
    assert_eq!((info.base_input_level, info.output_level), (5, 5));
    assert_eq!(s.files_per_level("default"), "0,0,0,0,0,1");
    let c = s.settled_counts();
    assert_eq!(c.local, 0, "{c:?}");
}
