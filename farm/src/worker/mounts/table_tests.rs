//! The mount table's tests: real tmpfs mounts (the tests run as root),
//! and helpers on a `PATH` of the test's own that hang or fail.

use super::super::mountinfo::{mount_points, mounts_at};
use super::*;
use std::path::Path;

fn tmpfs() -> MountSpec {
    MountSpec::unchecked("tmpfs", "farm-test", "size=1m")
}

const SETTLE: Duration = Duration::from_secs(10);

/// Lazily detaches whatever the test left mounted below `root`.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in mount_points(None).unwrap_or_default().iter().rev() {
            if p.starts_with(&self.0) {
                let _ = super::super::sys::umount(p, true);
            }
        }
    }
}

fn table(dir: &Path, capacity: usize) -> Arc<MountTable> {
    MountTable::new(dir.to_owned(), capacity, Duration::from_secs(30)).unwrap()
}

#[test]
fn leases_share_evict_idle_only_and_close_unmounts() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_owned());
    let table = table(dir.path(), 1);
    let (a, b) = (table.target("a"), table.target("b"));

    let a1 = table.acquire("a", &tmpfs()).unwrap();
    let a2 = table.acquire("a", &tmpfs()).unwrap();
    assert_eq!(mounts_at(&a).unwrap(), 1, "two jobs share one mount");
    // Another source while in use is refused; the mount stays.
    let other = MountSpec::unchecked("tmpfs", "farm-test", "size=2m");
    let e = table.acquire("a", &other).err().expect("a conflict");
    assert!(matches!(e, MountError::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("other mount options"), "{e}");
    assert!(!e.to_string().contains("size="), "options never shown: {e}");
    // Over capacity while a is in use: b is mounted beside it...
    let b1 = table.acquire("b", &tmpfs()).unwrap();
    assert_eq!(mounts_at(&a).unwrap() + mounts_at(&b).unwrap(), 2);
    drop(a1);
    assert!(table.settled(SETTLE));
    assert_eq!(mounts_at(&a).unwrap(), 1, "a still has a lease");
    // ...and a goes when its last lease ends.
    drop(a2);
    assert!(table.settled(SETTLE));
    assert_eq!(mounts_at(&a).unwrap(), 0);
    assert_eq!(mounts_at(&b).unwrap(), 1);
    drop(b1);
    assert!(table.settled(SETTLE));
    assert_eq!(mounts_at(&b).unwrap(), 1, "idle within capacity: kept");
    // a again: idle b is the one evicted.
    let a3 = table.acquire("a", &tmpfs()).unwrap();
    assert_eq!(mounts_at(&b).unwrap(), 0);
    table.remount(&a3).unwrap();
    assert_eq!(mounts_at(&a).unwrap(), 2, "the remount goes on top");
    drop(a3);
    table.close();
    assert!(table.settled(SETTLE));
    assert_eq!(mounts_at(&a).unwrap(), 0, "both layers unmounted");
    assert!(matches!(
        table.acquire("a", &tmpfs()),
        Err(MountError::Closed)
    ));
    let s = table.snapshot();
    assert_eq!(
        (s.active, s.counters.mounted, s.counters.unmounted),
        (0, 4, 4)
    );
    assert_eq!((s.counters.remounted, s.counters.failed), (1, 0));
}

#[test]
fn an_idle_mount_of_another_source_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_owned());
    let table = table(dir.path(), 4);
    drop(table.acquire("a", &tmpfs()).unwrap());
    let other = MountSpec::unchecked("tmpfs", "farm-other", "size=2m");
    let lease = table.acquire("a", &other).unwrap();
    assert_eq!(mounts_at(&table.target("a")).unwrap(), 1);
    let s = table.snapshot();
    assert_eq!((s.counters.mounted, s.counters.unmounted), (2, 1));
    assert_eq!(s.mounts[0].source, "farm-other");
    drop(lease);
}

#[test]
fn jobs_that_met_one_stale_mount_remount_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_owned());
    let table = table(dir.path(), 4);
    let (first, second) = (
        table.acquire("a", &tmpfs()).unwrap(),
        table.acquire("a", &tmpfs()).unwrap(),
    );
    table.observe(&first);
    table.observe(&second);
    // Both ran on generation 0 and met a stale handle: one remount.
    table.remount(&first).unwrap();
    table.remount(&second).unwrap();
    assert_eq!(table.snapshot().counters.remounted, 1);
    // A later attempt runs on generation 1; its stale handle remounts.
    table.observe(&second);
    table.remount(&second).unwrap();
    assert_eq!(table.snapshot().counters.remounted, 2);
    assert_eq!(mounts_at(&table.target("a")).unwrap(), 3);
}

#[test]
fn a_failed_mount_names_the_command_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_owned());
    let table = table(dir.path(), 4);
    let spec = MountSpec::unchecked("nosuchfs", "x", "secret=1");
    let e = table.acquire("a", &spec).err().expect("mount fails");
    let text = e.to_string();
    assert!(text.contains("mount -t nosuchfs -o <redacted>"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(table.snapshot().counters.failed, 1);
    assert_eq!(table.snapshot().active, 0);
    assert!(table.snapshot().mounts.is_empty());
}

/// A directory with executable `mount.<type>` helpers; each appends a
/// line to `calls` when it starts.
struct Helpers {
    dir: tempfile::TempDir,
    calls: PathBuf,
}

impl Helpers {
    fn new() -> Helpers {
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        Helpers { dir, calls }
    }

    fn add(&self, fs_type: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(format!("mount.{fs_type}"));
        let script = format!(
            "#!/bin/sh\necho \"$0 $1\" >> {}\n{body}\n",
            self.calls.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn table(&self, root: &Path, timeout: Duration) -> Arc<MountTable> {
        let path = format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            self.dir.path().display()
        );
        MountTable::with_path(root.to_owned(), 4, timeout, Some(path)).unwrap()
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(&self.calls).map_or(0, |t| t.lines().count())
    }
}

/// Polls the snapshot until `instance` is in `state`.
fn wait_for_state(table: &MountTable, instance: &str, state: &str) {
    let deadline = Instant::now() + SETTLE;
    while !table
        .snapshot()
        .mounts
        .iter()
        .any(|r| r.instance == instance && r.state == state)
    {
        assert!(Instant::now() < deadline, "{instance} never {state}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_slow_mount_holds_back_only_its_own_instance() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_owned());
    let helpers = Helpers::new();
    let gate = helpers.dir.path().join("gate");
    // Mounts once the test removes the gate file.
    helpers.add(
        "slowfs",
        &format!(
            "while [ -e {gate} ]; do sleep 0.02; done\nexec mount -t tmpfs -o size=1m farm-slow \"$2\"",
            gate = gate.display()
        ),
    );
    std::fs::write(&gate, "").unwrap();
    let table = helpers.table(dir.path(), Duration::from_secs(30));
    let slow = MountSpec::unchecked("slowfs", "farm-slow", "");
    std::thread::scope(|s| {
        let first = s.spawn(|| table.acquire("slow", &slow));
        wait_for_state(&table, "slow", "mounting");
        let second = s.spawn(|| table.acquire("slow", &slow));
        let deadline = Instant::now() + SETTLE;
        while table.snapshot().mounts[0].waiting != 1 {
            assert!(Instant::now() < deadline, "the second job never waited");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Another instance mounts, and the snapshot answers, meanwhile.
        let other = table.acquire("other", &tmpfs()).unwrap();
        let snap = table.snapshot();
        let states: Vec<(&str, &str)> = snap
            .mounts
            .iter()
            .map(|r| (r.instance.as_str(), r.state))
            .collect();
        assert_eq!(states, [("other", "mounted"), ("slow", "mounting")]);
        std::fs::remove_file(&gate).unwrap();
        let (first, second) = (first.join().unwrap(), second.join().unwrap());
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(helpers.calls(), 1, "one mount for both jobs");
        assert_eq!(mounts_at(&table.target("slow")).unwrap(), 1);
        assert_eq!(table.snapshot().mounts[1].users, 2);
        drop((first, second, other));
    });
}

#[test]
fn jobs_that_waited_for_a_mount_that_hangs_get_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_owned());
    let helpers = Helpers::new();
    helpers.add("deadfs", "sleep 30");
    let table = helpers.table(dir.path(), Duration::from_secs(1));
    let dead = MountSpec::unchecked("deadfs", "server:/gone", "");
    std::thread::scope(|s| {
        let first = s.spawn(|| table.acquire("dead", &dead));
        wait_for_state(&table, "dead", "mounting");
        let second = s.spawn(|| table.acquire("dead", &dead));
        for e in [first.join().unwrap(), second.join().unwrap()] {
            let e = e.err().expect("the mount timed out");
            assert!(e.to_string().contains("MOUNT_TIMEOUT"), "{e}");
        }
    });
    assert_eq!(helpers.calls(), 1, "the waiting job did not mount again");
    let s = table.snapshot();
    assert_eq!((s.counters.failed, s.active), (1, 0));
    assert!(
        s.mounts.is_empty(),
        "the failed slot is gone: {:?}",
        s.mounts
    );
    // The next job tries again.
    assert!(table.acquire("dead", &dead).is_err());
    assert_eq!(helpers.calls(), 2);
}
