//! `CompactionOutputFileIOError`: writing the output fails on the worker.
//! The fault is real: the attempt's child process runs under a file size
//! limit (`CHILD_FILE_SIZE_LIMIT`, `RLIMIT_FSIZE`) smaller than the output,
//! so its write past the limit ends it with SIGXFSZ. The original's
//! CompactRange fails with the I/O error; with the farm the hoster compacts
//! locally and the DB keeps taking writes.

use super::setup::*;
use crate::fault_proxy::Fault;

#[test]
fn compaction_output_file_io_error() {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    let s = Scenario::start(
        o,
        &[
            ("MULTI_PROCESS", "true".to_string()),
            ("CHILD_FILE_SIZE_LIMIT", "256K".to_string()),
        ],
        Fault::None,
        serde_json::json!({}),
    );
    s.generate_test_data();
    // Large incompressible values between Key(15) and Key(45): 1 MiB of output in
    // the compacted range, four times the limit.
    let mut rng = fastrand::Rng::with_seed(9);
    for j in 0..256 {
        let value: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
        let k = format!("{}_pad{j:03}", key(20));
        s.hoster.db.put_cf(s.cf("default"), k, value).expect("put");
    }
    s.flush("default");
    s.compact_range("default", Some(15), Some(45));
    let c = s.settled_counts();
    println!("{c:?}");
    // The attempt failed on the worker with the write fault.
    let killed = c.worker_failed["killed"].as_u64().expect("killed count");
    assert!(killed >= 1, "{c:?}");
    assert_eq!(c.worker_succeeded, 0);
    assert_eq!(c.installed, 0);
    assert_eq!(c.fallbacks["remote_failed"], killed, "{c:?}");
    let why = &s.hoster.farm.stats().last_errors["remote_failed"];
    assert!(why.contains("SIGXFSZ"), "{why}");
    // The write past the limit was the output's: the attempt's logs stayed
    // below it.
    let logs = crate::harness::attempt_logs(&s.d.tmp.path().join("worker"));
    assert!(!logs.is_empty());
    assert!(logs.iter().all(|l| l.len() < 256 << 10));
    s.verify_test_data();
    for j in 0..256 {
        let k = format!("{}_pad{j:03}", key(20));
        let v = s.hoster.db.get_cf(s.cf("default"), k).expect("read");
        assert_eq!(v.map(|v| v.len()), Some(4096));
    }
    s.put("default", &key(500), "after");
    assert_eq!(s.get("default", &key(500)).as_deref(), Some("after"));
}
