//! The mount table's state: one slot per instance, each in a state of its
//! life, and the decisions taken on them under the table's lock. Nothing
//! here runs a command: a slot is marked (mounting, remounting,
//! unmounting) under the lock, the command runs outside it, and the slot
//! is settled under the lock again.

use super::mounter::MountError;
use super::spec::MountSpec;
use super::stats::{MountCounters, MountRow};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a slot is in its life.
pub(super) enum State {
    /// The first job of the instance is mounting it; others wait.
    Mounting,
    /// Mounted: jobs share it.
    Ready,
    /// Mounted, and a job is mounting it again on top (after a stale
    /// handle); others wait.
    Remounting,
    /// Being unmounted (evicted, replaced, or after a failed remount).
    Unmounting,
    /// The mount failed; kept until every job that waited for it has read
    /// the error.
    Failed(Arc<MountError>),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Mounting => "mounting",
            State::Ready => "mounted",
            State::Remounting => "remounting",
            State::Unmounting => "unmounting",
            State::Failed(_) => "failed",
        }
    }

    /// A command runs on the slot now.
    fn busy(&self) -> bool {
        matches!(
            self,
            State::Mounting | State::Remounting | State::Unmounting
        )
    }

    /// Something is mounted on the target.
    fn mounted(&self) -> bool {
        matches!(self, State::Ready | State::Remounting | State::Unmounting)
    }
}

pub(super) struct Slot {
    /// Unique in the table's life: a lease or a waiter names its slot by it.
    pub id: u64,
    pub spec: MountSpec,
    pub target: PathBuf,
    pub state: State,
    /// Leases held.
    pub users: usize,
    /// Jobs waiting for the slot's command to end.
    pub waiters: usize,
    pub last_used: u64,
    /// Bumped on every remount, so concurrent jobs that all met a stale
    /// handle remount once.
    pub generation: u64,
}

/// An unmount decided under the lock, to run outside it.
pub(super) struct Unmount {
    pub instance: String,
    pub id: u64,
    pub target: PathBuf,
    /// The mount and every remount stacked on it.
    pub layers: u64,
}

/// What [`Slots::find`] found for a job asking for an instance.
pub(super) enum Found {
    /// No slot: the job mounts.
    Absent,
    /// Shared: a lease on slot `id`, at `generation`.
    Lease {
        id: u64,
        generation: u64,
    },
    /// Mounted from another source for running jobs.
    Conflict {
        mounted: String,
    },
    /// Idle and mounted from another source: unmount it, then look again.
    Replace(Unmount),
    /// The mount the job waited for failed.
    Failed(Arc<MountError>),
    /// A command runs on slot `id`: wait, then look again.
    Wait {
        id: u64,
    },
    Closed,
}

#[derive(Default)]
pub(super) struct Slots {
    pub map: HashMap<String, Slot>,
    /// Ticks on every lease, for least-recently-used order; also gives each
    /// slot a unique id.
    clock: u64,
    pub counters: MountCounters,
    /// After shutdown began: no new mounts, idle ones go.
    pub closed: bool,
    /// The table is gone: the evictor ends.
    pub stopped: bool,
}

impl Slots {
    pub fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The slot for a job asking for `instance` from `spec`; `waited` is
    /// the slot it waited for, if it did.
    pub fn find(&mut self, instance: &str, spec: &MountSpec, waited: Option<u64>) -> Found {
        let closed = self.closed;
        let Some(slot) = self.map.get_mut(instance) else {
            return if closed { Found::Closed } else { Found::Absent };
        };
        if waited == Some(slot.id) {
            slot.waiters -= 1;
        }
        if let State::Failed(e) = &slot.state {
            let e = e.clone();
            if slot.waiters == 0 {
                self.map.remove(instance);
            }
            return Found::Failed(e);
        }
        if closed {
            return Found::Closed;
        }
        match slot.state {
            State::Ready if slot.spec == *spec => {
                self.clock += 1;
                slot.users += 1;
                slot.last_used = self.clock;
                Found::Lease {
                    id: slot.id,
                    generation: slot.generation,
                }
            }
            State::Ready if slot.users > 0 => Found::Conflict {
                mounted: slot.spec.to_string(),
            },
            State::Ready => {
                slot.state = State::Unmounting;
                Found::Replace(unmount_of(instance, slot))
            }
            _ => {
                slot.waiters += 1;
                Found::Wait { id: slot.id }
            }
        }
    }

    /// Slots that hold (or will hold) a mount the table counts against
    /// its capacity.
    fn live(&self) -> usize {
        self.map
            .values()
            .filter(|s| !matches!(s.state, State::Unmounting | State::Failed(_)))
            .count()
    }

    /// Marks idle mounts for unmounting, least recently used first, until
    /// at most `keep` live slots remain or only slots in use are left.
    pub fn idle_victims(&mut self, keep: usize) -> Vec<Unmount> {
        let excess = self.live().saturating_sub(keep);
        let mut idle: Vec<(&String, &mut Slot)> = self
            .map
            .iter_mut()
            .filter(|(_, s)| matches!(s.state, State::Ready) && s.users == 0)
            .collect();
        idle.sort_by_key(|(_, s)| s.last_used);
        idle.into_iter()
            .take(excess)
            .map(|(instance, slot)| {
                slot.state = State::Unmounting;
                unmount_of(instance, slot)
            })
            .collect()
    }

    /// Whether [`Slots::idle_victims`] would find any.
    #[cfg(test)]
    pub fn would_evict(&self, keep: usize) -> bool {
        self.live() > keep
            && self
                .map
                .values()
                .any(|s| matches!(s.state, State::Ready) && s.users == 0)
    }

    /// A command runs on some slot.
    pub fn busy(&self) -> bool {
        self.map.values().any(|s| s.state.busy())
    }

    /// Settles a mount of slot `id`: ready, or failed (kept for the jobs
    /// that wait for it).
    pub fn end_mount(
        &mut self,
        instance: &str,
        id: u64,
        result: Result<(), MountError>,
    ) -> Result<(), MountError> {
        let Some(slot) = self.map.get_mut(instance).filter(|s| s.id == id) else {
            return result;
        };
        match result {
            Ok(()) => {
                self.counters.mounted += 1;
                slot.state = State::Ready;
                tracing::info!(instance, source = %slot.spec, target = %slot.target.display(), "mounted");
                Ok(())
            }
            Err(e) => {
                self.counters.failed += 1;
                tracing::warn!(instance, error = %e, "mount failed");
                if slot.waiters == 0 {
                    self.map.remove(instance);
                    return Err(e);
                }
                let e = Arc::new(e);
                slot.state = State::Failed(e.clone());
                Err(MountError::Shared(e))
            }
        }
    }

    /// Settles a remount of slot `id`: the new generation, or the unmount
    /// of the stale mount, which is not one to share any more.
    pub fn end_remount(
        &mut self,
        instance: &str,
        id: u64,
        result: Result<(), MountError>,
    ) -> (Result<u64, MountError>, Option<Unmount>) {
        let Some(slot) = self.map.get_mut(instance).filter(|s| s.id == id) else {
            return (Err(MountError::Gone(instance.to_owned())), None);
        };
        match result {
            Ok(()) => {
                self.counters.mounted += 1;
                self.counters.remounted += 1;
                slot.generation += 1;
                slot.state = State::Ready;
                tracing::info!(instance, "remounted after a stale file handle");
                (Ok(slot.generation), None)
            }
            Err(e) => {
                self.counters.failed += 1;
                slot.state = State::Unmounting;
                (Err(e), Some(unmount_of(instance, slot)))
            }
        }
    }

    /// Settles an unmount: `done` layers went, and the last one tried
    /// failed if `failed`. The slot goes either way.
    pub fn end_unmount(&mut self, u: &Unmount, done: u64, failed: bool) {
        self.counters.unmounted += done;
        if failed {
            self.counters.failed += 1;
        }
        if self.map.get(&u.instance).is_some_and(|s| s.id == u.id) {
            self.map.remove(&u.instance);
        }
    }

    /// Mounts in place now.
    pub fn mounted(&self) -> usize {
        self.map.values().filter(|s| s.state.mounted()).count()
    }

    /// One row per slot, by instance; never the options.
    pub fn rows(&self) -> Vec<MountRow> {
        let mut rows: Vec<MountRow> = self
            .map
            .iter()
            .map(|(instance, s)| MountRow {
                instance: instance.clone(),
                source: s.spec.source().to_owned(),
                fs_type: s.spec.fs_type().to_owned(),
                target: s.target.clone(),
                state: s.state.name(),
                users: s.users,
                waiting: s.waiters,
                generation: s.generation,
            })
            .collect();
        rows.sort_by(|a, b| a.instance.cmp(&b.instance));
        rows
    }
}

fn unmount_of(instance: &str, slot: &Slot) -> Unmount {
    Unmount {
        instance: instance.to_owned(),
        id: slot.id,
        target: slot.target.clone(),
        layers: slot.generation + 1,
    }
}
