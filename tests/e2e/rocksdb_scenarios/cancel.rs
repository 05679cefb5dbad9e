//! Cancellation on either side. The worker's compactions run the fixture
//! filter `farm.test.slow_keep` (10 ms per key), so an attempt is still
//! running when the cancel arrives. The original's CompactRange returns
//! Incomplete; with the farm, an attempt cancelled on the worker is
//! compacted locally, and a cancel from the hoster's DB ends the wait and
//! cancels the attempt on the worker.

use super::setup::*;
use crate::fault_proxy::Fault;
use crate::harness::eventually;

/// Attempts the worker ended because of a cancel. A cancelled attempt is
/// `cancelled` even when (MULTI_PROCESS) its child needed SIGKILL after
/// the grace period; none may end as `killed`.
fn cancelled_on_worker(c: &Counts) -> u64 {
    let n = |outcome: &str| c.worker_failed[outcome].as_u64().expect("outcome count");
    assert_eq!(n("killed"), 0, "{c:?}");
    n("cancelled")
}

fn cancel_on_remote_side(fault: Fault) {
    let s = slow_scenario(fault);
    s.generate_test_data();
    s.compact_range("default", Some(15), Some(45));
    let c = s.settled_counts();
    println!("{c:?}");
    assert!(s.proxy.cancelled() >= 1, "the proxy cancelled attempts");
    assert_eq!(cancelled_on_worker(&c), s.proxy.cancelled(), "{c:?}");
    assert_eq!(c.worker_succeeded, 0);
    // Compaction number is not increased; each cancelled attempt ran locally.
    assert_eq!(c.installed, 0);
    assert_eq!(c.fallbacks["remote_failed"], s.proxy.cancelled(), "{c:?}");
    s.verify_test_data();
    s.put("default", &key(500), "after");
    assert_eq!(s.get("default", &key(500)).as_deref(), Some("after"));
}

#[test]
fn cancel_compaction_on_remote_side() {
    // At the beginning: right after the worker accepted the job.
    cancel_on_remote_side(Fault::CancelAfterSubmit);
    // In progress: when a probe reports the attempt running.
    cancel_on_remote_side(Fault::CancelWhenRunning);
}

#[test]
fn cancel_compaction_on_primary_side() {
    let s = slow_scenario(Fault::None);
    s.generate_test_data();
    std::thread::scope(|scope| {
        let compaction = scope.spawn(|| {
            s.hoster
                .db
                .compact_range_cf(s.cf("default"), Some(key(15)), Some(key(45)))
        });
        eventually("the worker runs the job", || s.proxy.running_seen() >= 1);
        // The primary DB calls CancelAllBackgroundWork() while it waits.
        s.hoster.db.cancel_all_background_work(false);
        compaction.join().expect("compaction thread");
    });
    // CancelAwaitingJobs() reached the service: the wait ended, the
    // attempt was cancelled on the worker, nothing was installed.
    eventually("the cancelled attempt ended on both sides", || {
        s.hoster.farm.in_flight() == 0 && cancelled_on_worker(&s.counts()) >= 1
    });
    let c = s.counts();
    println!("{c:?}");
    assert!(c.fallbacks["cancelled"] >= 1, "{c:?}");
    assert_eq!(c.installed, 0);
    assert_eq!(c.worker_succeeded, 0);

    // Reopened, the data is intact and the DB takes writes.
    let (db, _d) = s.close();
    verify_test_data_in(&db);
    db.put(key(500), "after").expect("the DB takes writes");
}
