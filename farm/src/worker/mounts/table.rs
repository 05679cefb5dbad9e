//! The table of dynamic mounts: one per hoster instance, shared by all of
//! its jobs, least recently used evicted beyond `NFS_MOUNT_CACHE`.
//!
//! A job holds a [`MountLease`] from admission until its attempt has ended
//! (a queued attempt holds it too). A mount with a lease is never
//! unmounted: eviction takes only idle mounts, and when every mount is in
//! use a new instance is mounted beyond the capacity, the table shrinking
//! back as leases end.
//!
//! No mount or unmount command runs under the table's lock, nor in a
//! thread that may hold another lock:
//! - a mount in progress is a state of its slot (`super::slots`); a job
//!   of the same instance waits on a condition variable until it has
//!   ended (and gets the same error if it failed), while jobs of other
//!   instances, `/stat` and `/metrics` go on; a helper that hangs is
//!   killed after `MOUNT_TIMEOUT`, and nobody waits longer than twice
//!   that;
//! - a lease ends wherever its job is dropped (the supervisor cancels a
//!   queued attempt under its own lock), so the idle mounts a release
//!   leaves beyond the capacity are unmounted by the table's evictor
//!   thread, not by the releasing thread;
//! - the mounts a new instance pushes out, and the stale mount of a failed
//!   remount, are unmounted by the job that asked, before or after its
//!   own command, outside the lock.

use super::mounter::{self, MountError};
use super::mountinfo::mount_points;
use super::slots::{Found, Slot, Slots, State, Unmount};
use super::spec::MountSpec;
use super::stats::MountsSnapshot;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct MountTable {
    /// `NFS_MOUNT_ROOT`: instance `i` is mounted on `<root>/<i>`.
    root: PathBuf,
    timeout: Duration,
    /// Where `mount.<type>` helpers are looked up: the worker's `PATH`.
    path_var: Option<String>,
    shared: Arc<Shared>,
    evictor: Option<JoinHandle<()>>,
}

/// What the table shares with its evictor thread.
struct Shared {
    /// `NFS_MOUNT_CACHE`: idle mounts kept at most.
    capacity: usize,
    slots: Mutex<Slots>,
    /// Signalled whenever a slot changes.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a change, at most until `deadline`.
    fn wait<'a>(&self, guard: MutexGuard<'a, Slots>, deadline: Instant) -> MutexGuard<'a, Slots> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.changed.wait_timeout(guard, left) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Runs an unmount decided under the lock, then settles its slot.
    fn unmount(&self, u: &Unmount) {
        let mut done = 0;
        let mut failed = false;
        for _ in 0..u.layers {
            match mounter::unmount(&u.target, false) {
                Ok(()) => {
                    done += 1;
                    tracing::info!(instance = %u.instance, target = %u.target.display(), "unmounted");
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(instance = %u.instance, error = %e, "unmount failed");
                    break;
                }
            }
        }
        self.lock().end_unmount(u, done, failed);
        self.changed.notify_all();
    }

    /// The evictor: unmounts idle mounts beyond the capacity (all of them
    /// once the table is closed) as leases end, until the table is gone.
    fn evict(&self) {
        let mut slots = self.lock();
        loop {
            if slots.stopped {
                return;
            }
            let keep = if slots.closed { 0 } else { self.capacity };
            let victims = slots.idle_victims(keep);
            if victims.is_empty() {
                slots = self.changed.wait(slots).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            drop(slots);
            for v in &victims {
                self.unmount(v);
            }
            slots = self.lock();
        }
    }
}

/// A job's hold on its instance's mount; dropping it releases the mount.
pub struct MountLease {
    table: Arc<MountTable>,
    instance: String,
    slot_id: u64,
    /// The generation the job last ran on.
    generation: AtomicU64,
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
    /// The table, and its evictor thread; helpers are looked up in the
    /// worker's `PATH`.
    pub fn new(root: PathBuf, capacity: usize, timeout: Duration) -> std::io::Result<Arc<Self>> {
        Self::with_path(root, capacity, timeout, std::env::var("PATH").ok())
    }

    /// As [`MountTable::new`], looking helpers up in `path_var`.
    pub fn with_path(
        root: PathBuf,
        capacity: usize,
        timeout: Duration,
        path_var: Option<String>,
    ) -> std::io::Result<Arc<Self>> {
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
        let shared = Arc::new(Shared {
            capacity: capacity.max(1),
            slots: Mutex::new(Slots::default()),
            changed: Condvar::new(),
        });
        let evicting = shared.clone();
        let evictor = std::thread::Builder::new()
            .name("mount-evictor".into())
            .spawn(move || evicting.evict())?;
        Ok(Arc::new(MountTable {
            root,
            timeout,
            path_var,
            shared,
            evictor: Some(evictor),
        }))
    }

    pub fn target(&self, instance: &str) -> PathBuf {
        self.root.join(instance)
    }

    /// How long a job waits for another job's command on its instance: the
    /// command is killed after `MOUNT_TIMEOUT`; an unmount may precede it.
    fn wait_limit(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }

    /// The instance's mount, mounted now when it is not yet: `instance` is
    /// one checked path component.
    pub fn acquire(
        self: &Arc<Self>,
        instance: &str,
        spec: &MountSpec,
    ) -> Result<MountLease, MountError> {
        let deadline = Instant::now() + self.wait_limit();
        let sh = &self.shared;
        let mut slots = sh.lock();
        let mut waited = None;
        loop {
            match slots.find(instance, spec, waited.take()) {
                Found::Absent => break,
                Found::Lease { id, generation } => return Ok(self.lease(instance, id, generation)),
                Found::Conflict { mounted } => {
                    let mut asked = spec.to_string();
                    if mounted == asked {
                        asked.push_str(" with other mount options");
                    }
                    return Err(MountError::Conflict {
                        instance: instance.to_owned(),
                        mounted,
                        asked,
                    });
                }
                Found::Replace(u) => {
                    // The hoster now names another source: the idle mount goes.
                    drop(slots);
                    sh.unmount(&u);
                    slots = sh.lock();
                }
                Found::Failed(e) => return Err(MountError::Shared(e)),
                Found::Closed => return Err(MountError::Closed),
                Found::Wait { id } => {
                    if Instant::now() >= deadline {
                        if let Some(slot) = slots.map.get_mut(instance).filter(|s| s.id == id) {
                            slot.waiters -= 1;
                        }
                        return Err(MountError::Busy {
                            instance: instance.to_owned(),
                            waited: self.wait_limit(),
                        });
                    }
                    waited = Some(id);
                    slots = sh.wait(slots, deadline);
                }
            }
        }
        let id = slots.tick();
        let target = self.target(instance);
        slots.map.insert(
            instance.to_owned(),
            Slot {
                id,
                spec: spec.clone(),
                target: target.clone(),
                state: State::Mounting,
                users: 1,
                waiters: 0,
                last_used: id,
                generation: 0,
            },
        );
        let victims = slots.idle_victims(sh.capacity);
        drop(slots);
        for v in &victims {
            sh.unmount(v);
        }
        let result = mounter::mount(spec, &target, self.path_var.as_deref(), self.timeout);
        let settled = sh.lock().end_mount(instance, id, result);
        sh.changed.notify_all();
        settled.map(|()| self.lease(instance, id, 0))
    }

    fn lease(self: &Arc<Self>, instance: &str, slot_id: u64, generation: u64) -> MountLease {
        MountLease {
            table: self.clone(),
            instance: instance.to_owned(),
            slot_id,
            generation: AtomicU64::new(generation),
        }
    }

    /// Notes the mount generation an attempt is about to run on: a stale
    /// handle it meets is a handle of this generation.
    pub fn observe(&self, lease: &MountLease) {
        let slots = self.shared.lock();
        if let Some(slot) = slots
            .map
            .get(&lease.instance)
            .filter(|s| s.id == lease.slot_id)
        {
            lease.generation.store(slot.generation, Ordering::Relaxed);
        }
    }

    /// After a stale file handle: mounts the source again, on top of the
    /// stale mount, unless another job of the instance already did since
    /// this lease last looked. On top, because unmounting first would leave
    /// the bare mount point visible for a moment, and a job of the instance
    /// admitted or running then would read (or write) the worker's own
    /// disk. The stale layers beneath are unreachable by path and are
    /// unmounted with the top one. A remount that fails unmounts the
    /// instance: the stale mount is not one to share any more.
    pub fn remount(&self, lease: &MountLease) -> Result<(), MountError> {
        let deadline = Instant::now() + self.wait_limit();
        let sh = &self.shared;
        let instance = &lease.instance;
        let mut slots = sh.lock();
        let (spec, target) = loop {
            let gone = || MountError::Gone(instance.clone());
            let Some(slot) = slots
                .map
                .get_mut(instance)
                .filter(|s| s.id == lease.slot_id)
            else {
                return Err(gone());
            };
            match slot.state {
                State::Ready => {}
                State::Remounting if Instant::now() < deadline => {
                    slots = sh.wait(slots, deadline);
                    continue;
                }
                State::Remounting => {
                    return Err(MountError::Busy {
                        instance: instance.clone(),
                        waited: self.wait_limit(),
                    })
                }
                _ => return Err(gone()),
            }
            let seen = lease.generation.load(Ordering::Relaxed);
            if slot.generation != seen {
                lease.generation.store(slot.generation, Ordering::Relaxed);
                return Ok(());
            }
            slot.state = State::Remounting;
            break (slot.spec.clone(), slot.target.clone());
        };
        drop(slots);
        let result = mounter::mount(&spec, &target, self.path_var.as_deref(), self.timeout);
        let (settled, unmount) = sh.lock().end_remount(instance, lease.slot_id, result);
        sh.changed.notify_all();
        if let Some(u) = unmount {
            sh.unmount(&u);
        }
        let generation = settled?;
        lease.generation.store(generation, Ordering::Relaxed);
        Ok(())
    }

    /// A lease ended: the evictor looks whether an idle mount should go.
    fn release(&self, instance: &str, slot_id: u64) {
        let mut slots = self.shared.lock();
        if let Some(slot) = slots.map.get_mut(instance).filter(|s| s.id == slot_id) {
            slot.users = slot.users.saturating_sub(1);
        }
        drop(slots);
        self.shared.changed.notify_all();
    }

    /// Shutdown: no new mounts after this; unmounts every idle mount now,
    /// once the commands running on slots have ended (waiting at most
    /// twice `MOUNT_TIMEOUT`), and the rest as their leases end.
    pub fn close(&self) {
        let deadline = Instant::now() + self.wait_limit();
        let sh = &self.shared;
        let mut slots = sh.lock();
        slots.closed = true;
        sh.changed.notify_all();
        loop {
            let victims = slots.idle_victims(0);
            if !victims.is_empty() {
                drop(slots);
                for v in &victims {
                    sh.unmount(v);
                }
                slots = sh.lock();
                continue;
            }
            if !slots.busy() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!("mount commands still running at shutdown; leaving their mounts");
                return;
            }
            slots = sh.wait(slots, deadline);
        }
    }

    /// The counters and one row per instance: taken under the table's
    /// lock, which no command runs under, so it never waits for a mount.
    pub fn snapshot(&self) -> MountsSnapshot {
        let slots = self.shared.lock();
        MountsSnapshot {
            capacity: self.shared.capacity,
            active: slots.mounted(),
            counters: slots.counters.clone(),
            mounts: slots.rows(),
        }
    }

    /// Waits until the evictor has nothing left to do and no command runs
    /// on any slot; `false` after `limit`.
    #[cfg(test)]
    pub fn settled(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut slots = self.shared.lock();
        loop {
            let keep = if slots.closed {
                0
            } else {
                self.shared.capacity
            };
            if !slots.busy() && !slots.would_evict(keep) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            slots = self.shared.wait(
                slots,
                deadline.min(Instant::now() + Duration::from_millis(20)),
            );
        }
    }
}

impl Drop for MountTable {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
        if let Some(evictor) = self.evictor.take() {
            let _ = evictor.join();
        }
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
