//! One child's cgroup: made with its limits before the child starts,
//! joined by the child before exec, ended (every process in it killed) and
//! removed after the child.

use super::error::CgroupError;
use super::files::keyed;
use super::kill::{kill_all, remove};
use super::layout::{Tree, Version};
use super::limits::CgroupLimits;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// A child's cgroup, in each tree the worker uses. Dropped before
/// [`ChildCgroup::end`], it ends itself.
#[derive(Debug)]
pub struct ChildCgroup {
    version: Version,
    /// Each tree (its controllers) and this cgroup's directory in it.
    dirs: Vec<(Tree, PathBuf)>,
    memory_limit: Option<u64>,
    ended: bool,
}

impl ChildCgroup {
    /// Makes the cgroup `leaf` below each home (one per tree) and writes
    /// `limits` into it.
    pub(super) fn create(
        version: Version,
        homes: &[(Tree, PathBuf)],
        leaf: &str,
        limits: &CgroupLimits,
    ) -> Result<ChildCgroup, CgroupError> {
        let mut group = ChildCgroup {
            version,
            dirs: Vec::new(),
            memory_limit: limits.memory,
            ended: false,
        };
        for (tree, home) in homes {
            let dir = home.join(leaf);
            std::fs::create_dir(&dir).map_err(CgroupError::io("create the cgroup", &dir))?;
            // From here on, a failure removes what was made (Drop).
            group.dirs.push((tree.clone(), dir.clone()));
            limits.write(version, tree, &dir)?;
        }
        Ok(group)
    }

    /// The cgroup's directory in its first tree, for the log.
    pub fn path(&self) -> &Path {
        self.dirs.first().map_or(Path::new(""), |(_, d)| d)
    }

    /// Its `cgroup.procs` files, opened for writing: a child writes `0`
    /// into each before exec to join (see `process::setup`).
    pub fn join_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.dirs
            .iter()
            .map(|(_, d)| {
                let procs = d.join("cgroup.procs");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&procs)
                    .map(OwnedFd::from)
                    .map_err(CgroupError::io("open", procs))
            })
            .collect()
    }

    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// How many processes the kernel's OOM handling killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some((_, dir)) = self.dirs.iter().find(|(t, _)| t.has("memory")) else {
            return 0;
        };
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        keyed(dir, file, "oom_kill").unwrap_or(0)
    }

    /// Kills every process still in the cgroup and removes it. Call it
    /// after the child itself was reaped. Returns how many processes were
    /// left (descendants that outlived the child).
    pub fn end(&mut self) -> Result<usize, CgroupError> {
        self.ended = true;
        let dirs: Vec<PathBuf> = self.dirs.iter().map(|(_, d)| d.clone()).collect();
        let freezer = self
            .dirs
            .iter()
            .find(|(t, _)| t.has("freezer"))
            .map(|(_, d)| d.as_path());
        let killed = kill_all(self.version, &dirs, freezer)?;
        remove(&dirs)?;
        Ok(killed)
    }
}

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        if !self.ended {
            if let Err(e) = self.end() {
                tracing::warn!(error = %e, cgroup = %self.path().display(), "failed to end a child's cgroup");
            }
        }
    }
}
