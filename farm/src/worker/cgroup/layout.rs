//! Where the worker's cgroups are: which hierarchy (v2, or the v1
//! controllers), and the worker's own cgroup directory in each.
//!
//! Read from `/proc/self/mountinfo` and `/proc/self/cgroup` (through
//! `procfs`), and changes nothing. cgroup v2 is chosen when the worker's
//! cgroup there offers `memory` and `pids` and can hand them to children:
//! they are enabled in its `cgroup.subtree_control` already, or it is the
//! hierarchy's root, or the worker is its only process (it then moves
//! itself into a leaf, see [`super::home`]). Otherwise the v1 controllers
//! `memory`, `pids` and `freezer` (and `cpu` when mounted) are used.

use super::error::{CgroupError, Unavailable};
use procfs::process::{MountInfo, Process};
use procfs::ProcessCGroup;
use std::path::{Path, PathBuf};

/// The directory, below the worker's own cgroup, that holds everything the
/// worker makes there.
pub const WORKER_DIR: &str = "dcompact-worker";
/// With cgroup v2, the leaf the worker moves itself into when it was alone
/// in its cgroup (a cgroup with processes cannot enable controllers for
/// its children).
pub const WORKERS_LEAF: &str = "workers";

/// The v1 controllers the worker needs, and the one it uses when present.
const V1_REQUIRED: [&str; 3] = ["memory", "pids", "freezer"];
const V1_OPTIONAL: [&str; 1] = ["cpu"];
/// What v2 must offer.
const V2_REQUIRED: [&str; 2] = ["memory", "pids"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy and the worker's own cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The controllers of this tree the worker uses (v2: all it uses).
    pub controllers: Vec<&'static str>,
    /// The worker's own cgroup directory (v2: the one it was started in,
    /// before it moved into [`WORKERS_LEAF`]).
    pub own: PathBuf,
}

impl Tree {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.contains(&controller)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: Version,
    pub trees: Vec<Tree>,
    /// v2: the worker must move itself into [`WORKERS_LEAF`] and enable
    /// the controllers in its cgroup before children can have them.
    pub needs_move: bool,
}

impl Layout {
    /// The hierarchies of this process.
    pub fn discover() -> Result<Layout, CgroupError> {
        let me = Process::myself().map_err(|source| CgroupError::Proc {
            what: "its process entry",
            source,
        })?;
        let mounts = me.mountinfo().map_err(|source| CgroupError::Proc {
            what: "mountinfo",
            source,
        })?;
        let cgroups = me.cgroups().map_err(|source| CgroupError::Proc {
            what: "cgroups",
            source,
        })?;
        let mounts: Vec<MountInfo> = mounts.into_iter().collect();
        let cgroups: Vec<ProcessCGroup> = cgroups.into_iter().collect();
        let v2 = v2(&mounts, &cgroups);
        if let Ok(Some(layout)) = v2 {
            return Ok(layout);
        }
        // A v2 tree that has the controllers but cannot delegate them is
        // the better reason when v1 is missing too.
        v1(&mounts, &cgroups).map_err(|e| v2.err().unwrap_or(e))
    }

    /// A one-line description for the log.
    pub fn describe(&self) -> String {
        let trees: Vec<String> = self
            .trees
            .iter()
            .map(|t| format!("{} at {}", t.controllers.join(","), t.own.display()))
            .collect();
        let version = match self.version {
            Version::V1 => "cgroup v1",
            Version::V2 => "cgroup v2",
        };
        format!("{version}: {}", trees.join("; "))
    }
}

/// `pathname` (from `/proc/self/cgroup`) under the mount of `m`, whose
/// root may be a sub-cgroup.
fn own_dir(m: &MountInfo, pathname: &str) -> Option<PathBuf> {
    let root = m.root.trim_end_matches('/');
    let rel = pathname.strip_prefix(root)?;
    if !(rel.is_empty() || rel.starts_with('/')) {
        return None;
    }
    let rel = rel.trim_start_matches('/');
    // A worker started from inside another worker's leaf still names the
    // cgroup it was given.
    let rel = rel
        .strip_suffix(&format!("{WORKER_DIR}/{WORKERS_LEAF}"))
        .map_or(rel, |r| r.trim_end_matches('/'));
    Some(if rel.is_empty() {
        m.mount_point.clone()
    } else {
        m.mount_point.join(rel)
    })
}

fn words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn v2(mounts: &[MountInfo], cgroups: &[ProcessCGroup]) -> Result<Option<Layout>, CgroupError> {
    let Some(own) = cgroups.iter().find(|c| c.hierarchy == 0) else {
        return Ok(None);
    };
    let Some(dir) = mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup2")
        .find_map(|m| own_dir(m, &own.pathname))
    else {
        return Ok(None);
    };
    let offered = words(&dir.join("cgroup.controllers"));
    if !V2_REQUIRED.iter().all(|c| offered.iter().any(|o| o == c)) {
        return Ok(None);
    }
    let enabled = words(&dir.join("cgroup.subtree_control"));
    let is_root = !dir.join("cgroup.type").exists();
    let ready = V2_REQUIRED.iter().all(|c| enabled.iter().any(|e| e == c));
    let needs_move = !ready && !is_root;
    if needs_move {
        let me = std::process::id().to_string();
        let others = words(&dir.join("cgroup.procs"))
            .iter()
            .filter(|p| **p != me)
            .count();
        if others > 0 {
            return Err(CgroupError::Unavailable(Unavailable::NotDelegated {
                cgroup: dir,
                others,
            }));
        }
    }
    let mut controllers: Vec<&'static str> = V2_REQUIRED.to_vec();
    if offered.iter().any(|o| o == "cpu") {
        controllers.push("cpu");
    }
    Ok(Some(Layout {
        version: Version::V2,
        trees: vec![Tree {
            controllers,
            own: dir,
        }],
        needs_move,
    }))
}

fn v1(mounts: &[MountInfo], cgroups: &[ProcessCGroup]) -> Result<Layout, CgroupError> {
    let mut trees: Vec<Tree> = Vec::new();
    let mut missing = Vec::new();
    for (controller, required) in V1_REQUIRED
        .iter()
        .map(|c| (*c, true))
        .chain(V1_OPTIONAL.iter().map(|c| (*c, false)))
    {
        match v1_dir(mounts, cgroups, controller) {
            Some(dir) => match trees.iter_mut().find(|t| t.own == dir) {
                // Controllers mounted together share one tree.
                Some(t) => t.controllers.push(controller),
                None => trees.push(Tree {
                    controllers: vec![controller],
                    own: dir,
                }),
            },
            None if required => missing.push(controller),
            None => {}
        }
    }
    if !missing.is_empty() {
        return Err(CgroupError::Unavailable(Unavailable::NoControllers {
            missing_v1: missing,
        }));
    }
    Ok(Layout {
        version: Version::V1,
        trees,
        needs_move: false,
    })
}

fn v1_dir(mounts: &[MountInfo], cgroups: &[ProcessCGroup], controller: &str) -> Option<PathBuf> {
    let own = cgroups
        .iter()
        .find(|c| c.hierarchy != 0 && c.controllers.iter().any(|c| c == controller))?;
    mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup" && m.super_options.contains_key(controller))
        .find_map(|m| own_dir(m, &own.pathname))
        .filter(|d| d.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(line: &str) -> MountInfo {
        MountInfo::from_line(line).unwrap()
    }

    #[test]
    fn the_own_cgroup_is_found_below_the_mount() {
        let m = mount("30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory");
        assert_eq!(
            own_dir(&m, "/process_api/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            own_dir(&m, "/"),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        // A mount of a sub-cgroup shows only what lies below it.
        let m = mount("30 25 0:26 /lxc/c1 /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids");
        assert_eq!(
            own_dir(&m, "/lxc/c1/app"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/app"))
        );
        assert_eq!(own_dir(&m, "/lxc/c10"), None);
        assert_eq!(own_dir(&m, "/other"), None);
    }

    #[test]
    fn a_worker_in_the_workers_leaf_names_the_cgroup_it_was_given() {
        let m = mount("31 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw");
        assert_eq!(
            own_dir(&m, "/system.slice/w.service/dcompact-worker/workers"),
            Some(PathBuf::from("/sys/fs/cgroup/system.slice/w.service"))
        );
    }

    #[test]
    fn v1_controllers_mounted_together_share_a_tree() {
        let mounts = vec![
            mount("30 25 0:26 / /sys rw - cgroup cgroup rw,memory"),
            mount("31 25 0:27 / /proc rw - cgroup cgroup rw,pids,freezer"),
        ];
        let cgroups = vec![
            ProcessCGroup {
                hierarchy: 4,
                controllers: vec!["memory".into()],
                pathname: "/".into(),
            },
            ProcessCGroup {
                hierarchy: 5,
                controllers: vec!["pids".into(), "freezer".into()],
                pathname: "/".into(),
            },
        ];
        // (`/sys` and `/proc` stand in for mounted directories.)
        let layout = v1(&mounts, &cgroups).unwrap();
        assert_eq!(layout.version, Version::V1);
        assert_eq!(layout.trees.len(), 2);
        assert_eq!(layout.trees[1].controllers, vec!["pids", "freezer"]);
        assert!(!layout.trees.iter().any(|t| t.has("cpu")));
    }

    #[test]
    fn v1_without_a_freezer_is_unavailable() {
        let mounts = vec![mount(
            "30 25 0:26 / /proc rw - cgroup cgroup rw,memory,pids",
        )];
        let cgroups = vec![ProcessCGroup {
            hierarchy: 4,
            controllers: vec!["memory".into(), "pids".into()],
            pathname: "/".into(),
        }];
        let e = v1(&mounts, &cgroups).unwrap_err();
        assert!(e.to_string().contains("freezer"), "{e}");
    }
}
