//! The table of dynamic mounts: one per hoster instance, shared by all of
//! its jobs, least recently used evicted beyond `NFS_MOUNT_CACHE`.
//!
//! A job holds a [`MountLease`] from admission until its attempt has ended
//! (a queued attempt holds it too). A mount with a lease is never
//! unmounted: eviction takes only idle mounts, and when every mount is in
//! use a new instance is mounted beyond the capacity, the table shrinking
//! back as leases end. Mount and unmount run under the table's lock, so two
//! jobs never race to mount one instance; a helper that hangs is killed
//! after `MOUNT_TIMEOUT`.

use super::mounter::{self, MountError};
use super::mountinfo::mount_points;
use super::spec::MountSpec;
use super::stats::{MountCounters, MountRow, MountsSnapshot};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub struct MountTable {
    /// `NFS_MOUNT_ROOT`: instance `i` is mounted on `<root>/<i>`.
    root: PathBuf,
    /// `NFS_MOUNT_CACHE`: idle mounts kept at most.
    capacity: usize,
    timeout: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Ticks on every lease, for least-recently-used order; also gives each
    /// slot a unique id.
    clock: u64,
    counters: MountCounters,
    /// After shutdown's unmount: no new mounts.
    closed: bool,
}

struct Slot {
    id: u64,
    spec: MountSpec,
    target: PathBuf,
    /// Leases held.
    users: usize,
    last_used: u64,
    /// Bumped on every remount, so concurrent jobs that all met a stale
    /// handle remount once.
    generation: u64,
}

/// A job's hold on its instance's mount; dropping it releases the mount.
pub struct MountLease {
    table: Arc<MountTable>,
    instance: String,
    slot_id: u64,
    generation: Mutex<u64>,
}

impl MountLease {
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

impl Drop for MountLease {
    fn drop(&mut self) {
        self.table.release(&self.instance, self.slot_id);
    }
}

impl MountTable {
    pub fn new(root: PathBuf, capacity: usize, timeout: Duration) -> Arc<Self> {
        // Left by a worker that did not stop cleanly (or by another worker
        // given the same root): not this table's to unmount.
        let leftovers: Vec<PathBuf> = mount_points(None)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.starts_with(&root) && *p != root)
            .collect();
        if !leftovers.is_empty() {
            tracing::warn!(root = %root.display(), ?leftovers, "NFS_MOUNT_ROOT already holds mounts; new mounts go on top of them");
        }
        Arc::new(MountTable {
            root,
            capacity: capacity.max(1),
            timeout,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn target(&self, instance: &str) -> PathBuf {
        self.root.join(instance)
    }

    /// The instance's mount, mounted now when it is not yet: `instance` is
    /// one checked path component.
    pub fn acquire(
        self: &Arc<Self>,
        instance: &str,
        spec: &MountSpec,
    ) -> Result<MountLease, MountError> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(MountError::Closed);
        }
        inner.clock += 1;
        let now = inner.clock;
        if let Some(slot) = inner.slots.get_mut(instance) {
            if slot.spec == *spec {
                slot.users += 1;
                slot.last_used = now;
                return Ok(self.lease(instance, slot.id, slot.generation));
            }
            if slot.users > 0 {
                return Err(MountError::Conflict {
                    instance: instance.to_owned(),
                    mounted: slot.spec.to_string(),
                    asked: spec.to_string(),
                });
            }
            // The hoster now names another source: the idle mount goes.
            self.unmount_slot(&mut inner, instance);
        }
        self.evict_idle(&mut inner, self.capacity - 1);
        let target = self.target(instance);
        if let Err(e) = mounter::mount(spec, &target, self.timeout) {
            inner.counters.failed += 1;
            tracing::warn!(instance, error = %e, "mount failed");
            return Err(e);
        }
        inner.counters.mounted += 1;
        tracing::info!(instance, source = %spec, target = %target.display(), "mounted");
        inner.slots.insert(
            instance.to_owned(),
            Slot {
                id: now,
                spec: spec.clone(),
                target,
                users: 1,
                last_used: now,
                generation: 0,
            },
        );
        Ok(self.lease(instance, now, 0))
    }

    fn lease(self: &Arc<Self>, instance: &str, slot_id: u64, generation: u64) -> MountLease {
        MountLease {
            table: self.clone(),
            instance: instance.to_owned(),
            slot_id,
            generation: Mutex::new(generation),
        }
    }

    /// Notes the mount generation an attempt is about to run on: a stale
    /// handle it meets is a handle of this generation.
    pub fn observe(&self, lease: &MountLease) {
        let inner = self.lock();
        if let Some(slot) = inner
            .slots
            .get(&lease.instance)
            .filter(|s| s.id == lease.slot_id)
        {
            *lease.generation.lock().unwrap_or_else(|p| p.into_inner()) = slot.generation;
        }
    }

    /// After a stale file handle: mounts the source again, on top of the
    /// stale mount, unless another job of the instance already did since
    /// this lease last looked. On top, because unmounting first would leave
    /// the bare mount point visible for a moment, and a job of the instance
    /// admitted or running then would read (or write) the worker's own
    /// disk. The stale layers beneath are unreachable by path and are
    /// unmounted with the top one.
    pub fn remount(&self, lease: &MountLease) -> Result<(), MountError> {
        let mut inner = self.lock();
        let mut seen = lease.generation.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *inner;
        let Some(slot) = inner
            .slots
            .get_mut(&lease.instance)
            .filter(|s| s.id == lease.slot_id)
        else {
            return Err(MountError::Gone(lease.instance.clone()));
        };
        if slot.generation != *seen {
            *seen = slot.generation;
            return Ok(());
        }
        match mounter::mount(&slot.spec, &slot.target, self.timeout) {
            Ok(()) => {
                inner.counters.mounted += 1;
                inner.counters.remounted += 1;
                slot.generation += 1;
                *seen = slot.generation;
                tracing::info!(instance = %lease.instance, "remounted after a stale file handle");
                Ok(())
            }
            Err(e) => {
                inner.counters.failed += 1;
                // The stale mount is not one to share any more.
                let instance = lease.instance.clone();
                self.unmount_slot(inner, &instance);
                Err(e)
            }
        }
    }

    fn release(&self, instance: &str, slot_id: u64) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slots.get_mut(instance).filter(|s| s.id == slot_id) {
            slot.users = slot.users.saturating_sub(1);
        }
        let keep = if inner.closed { 0 } else { self.capacity };
        self.evict_idle(&mut inner, keep);
    }

    /// Unmounts idle mounts, least recently used first, until at most
    /// `keep` mounts remain or only mounts in use are left.
    fn evict_idle(&self, inner: &mut Inner, keep: usize) {
        while inner.slots.len() > keep {
            let victim = inner
                .slots
                .iter()
                .filter(|(_, s)| s.users == 0)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(name, _)| name.clone());
            let Some(victim) = victim else { break };
            self.unmount_slot(inner, &victim);
        }
    }

    fn unmount_slot(&self, inner: &mut Inner, instance: &str) {
        let Some(slot) = inner.slots.remove(instance) else {
            return;
        };
        // The mount and every remount stacked on it.
        for _ in 0..=slot.generation {
            match mounter::unmount(&slot.target, false) {
                Ok(()) => {
                    inner.counters.unmounted += 1;
                    tracing::info!(instance, target = %slot.target.display(), "unmounted");
                }
                Err(e) => {
                    inner.counters.failed += 1;
                    tracing::warn!(instance, error = %e, "unmount failed");
                    break;
                }
            }
        }
    }

    /// Shutdown: unmounts every idle mount now and the rest as their leases
    /// end; no new mounts after this.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        self.evict_idle(&mut inner, 0);
    }

    pub fn snapshot(&self) -> MountsSnapshot {
        let inner = self.lock();
        let mut mounts: Vec<MountRow> = inner
            .slots
            .iter()
            .map(|(instance, s)| MountRow {
                instance: instance.clone(),
                source: s.spec.to_string(),
                target: s.target.clone(),
                users: s.users,
                generation: s.generation,
            })
            .collect();
        mounts.sort_by(|a, b| a.instance.cmp(&b.instance));
        MountsSnapshot {
            capacity: self.capacity,
            active: inner.slots.len(),
            counters: inner.counters.clone(),
            mounts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::mountinfo::mounts_at;
    use super::*;

    fn tmpfs() -> MountSpec {
        MountSpec {
            fs_type: "tmpfs".into(),
            source: "farm-test".into(),
            options: "size=1m".into(),
        }
    }

    /// Lazily detaches whatever the test left mounted below `root`.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for p in super::super::mountinfo::mount_points(None).unwrap_or_default() {
                if p.starts_with(&self.0) {
                    let _ = super::super::sys::umount(&p, true);
                }
            }
        }
    }

    #[test]
    fn leases_share_evict_idle_only_and_close_unmounts() {
        let dir = tempfile::tempdir().unwrap();
        let _cleanup = Cleanup(dir.path().to_owned());
        let table = MountTable::new(dir.path().to_owned(), 1, Duration::from_secs(30));
        let (a, b) = (table.target("a"), table.target("b"));

        let a1 = table.acquire("a", &tmpfs()).unwrap();
        let a2 = table.acquire("a", &tmpfs()).unwrap();
        assert_eq!(mounts_at(&a).unwrap(), 1, "two jobs share one mount");
        // Another source while in use is refused; the mount stays.
        let other = MountSpec {
            options: "size=2m".into(),
            ..tmpfs()
        };
        assert!(matches!(
            table.acquire("a", &other),
            Err(MountError::Conflict { .. })
        ));
        // Over capacity while a is in use: b is mounted beside it...
        let b1 = table.acquire("b", &tmpfs()).unwrap();
        assert_eq!(mounts_at(&a).unwrap() + mounts_at(&b).unwrap(), 2);
        drop(a1);
        assert_eq!(mounts_at(&a).unwrap(), 1, "a still has a lease");
        // ...and a goes when its last lease ends.
        drop(a2);
        assert_eq!(mounts_at(&a).unwrap(), 0);
        assert_eq!(mounts_at(&b).unwrap(), 1);
        drop(b1);
        assert_eq!(mounts_at(&b).unwrap(), 1, "idle within capacity: kept");
        // a again: idle b is the one evicted.
        let a3 = table.acquire("a", &tmpfs()).unwrap();
        assert_eq!(mounts_at(&b).unwrap(), 0);
        table.remount(&a3).unwrap();
        assert_eq!(mounts_at(&a).unwrap(), 2, "the remount goes on top");
        drop(a3);
        table.close();
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
    fn jobs_that_met_one_stale_mount_remount_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let _cleanup = Cleanup(dir.path().to_owned());
        let table = MountTable::new(dir.path().to_owned(), 4, Duration::from_secs(30));
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
        let table = MountTable::new(dir.path().to_owned(), 4, Duration::from_secs(30));
        let spec = MountSpec {
            fs_type: "nosuchfs".into(),
            source: "x".into(),
            options: String::new(),
        };
        let e = table.acquire("a", &spec).err().expect("mount fails");
        assert!(e.to_string().contains("mount -t nosuchfs"), "{e}");
        assert_eq!(table.snapshot().counters.failed, 1);
        assert_eq!(table.snapshot().active, 0);
    }
}
