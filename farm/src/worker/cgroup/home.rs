//! The worker's home in the cgroup hierarchies, and what a previous worker
//! on the same root left there.
//!
//! Every child cgroup of a worker lives at
//! `<the worker's own cgroup>/dcompact-worker/<root id>/<purpose>-<pid>-<n>`
//! in each tree (the root id is the one in `WORKER_DB_ROOT`'s marker), so a
//! worker started later on the same root finds the cgroups a killed
//! predecessor left, ends their processes and removes them. The root lock
//! ([`RootLock`]) makes sure the predecessor is really gone.

use super::error::CgroupError;
use super::files::set;
use super::group::ChildCgroup;
use super::kill::{kill_all, remove};
use super::layout::{Layout, Tree, Version, WORKERS_LEAF, WORKER_DIR};
use super::limits::CgroupLimits;
use crate::worker::root_guard::{RootError, WorkerRoot, ROOT_MARKER};
use crate::worker::root_lock::{RootLock, RootLockError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where this worker makes its children's cgroups.
#[derive(Debug)]
pub struct CgroupHome {
    layout: Layout,
    /// Each tree and the home directory in it.
    homes: Vec<(Tree, PathBuf)>,
    limits: CgroupLimits,
    next: AtomicU64,
}

/// What was found of a previous worker and ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub cgroups: usize,
    pub processes: usize,
}

/// Why [`sweep_after`] could not look.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Lock(#[from] RootLockError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

impl CgroupHome {
    /// Makes the home of the worker whose root is `root`, after ending
    /// what a previous worker on the same root left. Holding `_lock`
    /// proves no other live worker uses the root.
    pub fn open(
        root: &WorkerRoot,
        _lock: &RootLock,
        limits: CgroupLimits,
    ) -> Result<(CgroupHome, Swept), CgroupError> {
        let layout = Layout::discover()?;
        if layout.needs_move {
            move_into_leaf(&layout)?;
        }
        let homes = homes(&layout, root.id());
        let swept = sweep(layout.version, &homes)?;
        for (tree, home) in &homes {
            make(layout.version, tree, home)?;
        }
        let home = CgroupHome {
            layout,
            homes,
            limits,
            next: AtomicU64::new(0),
        };
        Ok((home, swept))
    }

    /// A new cgroup for one child; `purpose` names it (`attempt`,
    /// `describe`).
    pub fn child(&self, purpose: &str) -> Result<ChildCgroup, CgroupError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let leaf = format!("{purpose}-{}-{n}", std::process::id());
        ChildCgroup::create(self.layout.version, &self.homes, &leaf, &self.limits)
    }

    /// For the log: the version, controllers and home.
    pub fn describe(&self) -> String {
        let homes: Vec<String> = self
            .homes
            .iter()
            .map(|(t, h)| format!("{} at {}", t.controllers.join(","), h.display()))
            .collect();
        let version = match self.layout.version {
            Version::V1 => "cgroup v1",
            Version::V2 => "cgroup v2",
        };
        format!("{version}: {}", homes.join("; "))
    }

    /// Removes the home at the worker's end, when its children's cgroups
    /// are gone (a cgroup still in use is left as it is).
    pub fn close(&self) {
        for (_, home) in &self.homes {
            let _ = std::fs::remove_dir(home);
            // Shared with workers on other roots: removed only when empty.
            if let Some(parent) = home.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// After the worker of `root` died: ends and removes the cgroups it left
/// (and their processes), unless a live worker holds the root. `None`: not
/// a worker root, or in use. For whoever starts workers and kills them
/// (the tests, the demo).
pub fn sweep_after(root: &Path) -> Result<Option<Swept>, SweepError> {
    if !root.join(ROOT_MARKER).is_file() {
        return Ok(None);
    }
    let root = WorkerRoot::open(root)?;
    let _lock = match RootLock::claim(&root, Duration::ZERO) {
        Ok(lock) => lock,
        Err(RootLockError::Held { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let layout = Layout::discover()?;
    let homes = homes(&layout, root.id());
    let swept = sweep(layout.version, &homes)?;
    let dirs: Vec<PathBuf> = homes.iter().map(|(_, h)| h.clone()).collect();
    remove(&dirs)?;
    for home in &dirs {
        // Shared with workers on other roots: removed only when empty.
        if let Some(parent) = home.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    Ok(Some(swept))
}

/// A root id as a cgroup name: as it is when it is a plain token (as the
/// worker writes it), else a hash of it.
fn root_key(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        return id.to_owned();
    }
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("root-{hash:016x}")
}

fn homes(layout: &Layout, root_id: &str) -> Vec<(Tree, PathBuf)> {
    let key = root_key(root_id);
    layout
        .trees
        .iter()
        .map(|t| (t.clone(), t.own.join(WORKER_DIR).join(&key)))
        .collect()
}

/// Ends every process in every cgroup below the homes, and removes those
/// cgroups.
fn sweep(version: Version, homes: &[(Tree, PathBuf)]) -> Result<Swept, CgroupError> {
    let leaves: BTreeSet<std::ffi::OsString> = homes
        .iter()
        .filter_map(|(_, h)| std::fs::read_dir(h).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name())
        .collect();
    let mut swept = Swept::default();
    for leaf in &leaves {
        let dirs: Vec<(Tree, PathBuf)> = homes
            .iter()
            .map(|(t, h)| (t.clone(), h.join(leaf)))
            .filter(|(_, d)| d.is_dir())
            .collect();
        let paths: Vec<PathBuf> = dirs.iter().map(|(_, d)| d.clone()).collect();
        let freezer = dirs
            .iter()
            .find(|(t, _)| t.has("freezer"))
            .map(|(_, d)| d.as_path());
        swept.processes += kill_all(version, &paths, freezer)?;
        remove(&paths)?;
        swept.cgroups += 1;
    }
    Ok(swept)
}

/// Creates `home` (and `dcompact-worker` above it); with cgroup v2, hands
/// the controllers down to it.
fn make(version: Version, tree: &Tree, home: &Path) -> Result<(), CgroupError> {
    create_home(home)?;
    if version == Version::V2 {
        let enable: Vec<String> = tree.controllers.iter().map(|c| format!("+{c}")).collect();
        let enable = enable.join(" ");
        let worker_dir = tree.own.join(WORKER_DIR);
        for dir in [&tree.own, &worker_dir, &home.to_owned()] {
            set(dir, "cgroup.subtree_control", &enable)?;
        }
    }
    Ok(())
}

/// `create_dir_all`, tried again when a worker on another root removed the
/// shared `dcompact-worker` directory (empty at that moment) in between.
fn create_home(home: &Path) -> Result<(), CgroupError> {
    let mut tries = 0;
    loop {
        match std::fs::create_dir_all(home) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => return Err(CgroupError::io("create", home)(e)),
        }
    }
}

/// cgroup v2, the worker alone in its cgroup: moves it into the leaf
/// `dcompact-worker/workers`, since a cgroup that holds processes cannot
/// enable controllers for its children.
fn move_into_leaf(layout: &Layout) -> Result<(), CgroupError> {
    for tree in &layout.trees {
        let leaf = tree.own.join(WORKER_DIR).join(WORKERS_LEAF);
        std::fs::create_dir_all(&leaf).map_err(CgroupError::io("create", &leaf))?;
        set(&leaf, "cgroup.procs", &std::process::id().to_string())?;
        tracing::info!(cgroup = %leaf.display(), "moved the worker into a leaf cgroup of its own");
    }
    Ok(())
}

#[cfg(test)]
pub(super) fn test_homes(layout: &Layout, root_id: &str) -> Vec<(Tree, PathBuf)> {
    homes(layout, root_id)
}

#[cfg(test)]
pub(super) fn test_sweep(
    version: Version,
    homes: &[(Tree, PathBuf)],
) -> Result<Swept, CgroupError> {
    sweep(version, homes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_id_names_its_cgroup_only_when_it_is_a_plain_token() {
        assert_eq!(root_key("0123abcd"), "0123abcd");
        let odd = root_key("../../etc");
        assert!(odd.starts_with("root-") && !odd.contains('/'), "{odd}");
        assert_eq!(odd, root_key("../../etc"), "stable");
        assert_ne!(root_key(""), "");
    }
}
