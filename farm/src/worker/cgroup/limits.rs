//! The limits of a child's cgroup, written in each version's terms.
//!
//! | limit | cgroup v2 | cgroup v1 |
//! | --- | --- | --- |
//! | memory (`CHILD_MEMORY_LIMIT`) | `memory.max`, `memory.swap.max = 0`, `memory.oom.group = 1` | `memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` the same where swap is accounted |
//! | processes (`CHILD_MAX_PROCESSES`) | `pids.max` | `pids.max` |
//! | CPU (`CHILD_CPU_WEIGHT`, 1-10000, 100 = an equal share) | `cpu.weight` | `cpu.shares` = weight × 1024 / 100 |
//!
//! `pids.max` counts threads as well as processes.

use super::error::CgroupError;
use super::files::set;
use super::layout::{Tree, Version};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Bytes of memory (and no swap beyond it); `None`: no limit.
    pub memory: Option<u64>,
    /// Tasks (processes and threads) at once.
    pub max_processes: u64,
    /// CPU weight: 100 is the share of any other cgroup at the default.
    pub cpu_weight: u32,
}

/// The v1 `cpu.shares` of a v2 `cpu.weight` (1024 at the default 100).
pub fn cpu_shares(weight: u32) -> u64 {
    (u64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

impl CgroupLimits {
    /// Writes the limits into the cgroup `dir` of `tree`.
    pub(super) fn write(
        &self,
        version: Version,
        tree: &Tree,
        dir: &Path,
    ) -> Result<(), CgroupError> {
        match version {
            Version::V1 => self.write_v1(tree, dir),
            Version::V2 => self.write_v2(tree, dir),
        }
    }

    fn write_v1(&self, tree: &Tree, dir: &Path) -> Result<(), CgroupError> {
        if let (true, Some(m)) = (tree.has("memory"), self.memory) {
            // memsw (memory + swap) may never be below the memory limit:
            // set the memory limit first.
            set(dir, "memory.limit_in_bytes", &m.to_string())?;
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                set(dir, "memory.memsw.limit_in_bytes", &m.to_string())?;
            }
        }
        if tree.has("pids") {
            set(dir, "pids.max", &self.max_processes.to_string())?;
        }
        if tree.has("cpu") {
            set(dir, "cpu.shares", &cpu_shares(self.cpu_weight).to_string())?;
        }
        Ok(())
    }

    fn write_v2(&self, tree: &Tree, dir: &Path) -> Result<(), CgroupError> {
        if tree.has("memory") {
            if let Some(m) = self.memory {
                set(dir, "memory.max", &m.to_string())?;
                if dir.join("memory.swap.max").exists() {
                    set(dir, "memory.swap.max", "0")?;
                }
            }
            // The kernel's OOM handling ends the whole attempt, not one
            // process of it.
            if dir.join("memory.oom.group").exists() {
                set(dir, "memory.oom.group", "1")?;
            }
        }
        if tree.has("pids") {
            set(dir, "pids.max", &self.max_processes.to_string())?;
        }
        if tree.has("cpu") {
            set(dir, "cpu.weight", &self.cpu_weight.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_weight_becomes_shares() {
        assert_eq!(cpu_shares(100), 1024);
        assert_eq!(cpu_shares(50), 512);
        assert_eq!(cpu_shares(1), 10);
        assert_eq!(cpu_shares(10_000), 102_400);
    }

    #[test]
    fn v1_limits_are_written_to_the_controllers_of_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("memory.memsw.limit_in_bytes"), "").unwrap();
        let tree = Tree {
            controllers: vec!["memory", "pids", "cpu"],
            own: PathBuf::from("/"),
        };
        let limits = CgroupLimits {
            memory: Some(1 << 20),
            max_processes: 64,
            cpu_weight: 200,
        };
        limits.write(Version::V1, &tree, dir.path()).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), "1048576");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "1048576");
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("cpu.shares"), "2048");
    }

    #[test]
    fn v2_limits_leave_no_swap_and_end_the_whole_group_on_oom() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["memory.swap.max", "memory.oom.group"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let tree = Tree {
            controllers: vec!["memory", "pids"],
            own: PathBuf::from("/"),
        };
        let limits = CgroupLimits {
            memory: Some(4096),
            max_processes: 10,
            cpu_weight: 100,
        };
        limits.write(Version::V2, &tree, dir.path()).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("memory.max"), "4096");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("memory.oom.group"), "1");
        assert_eq!(read("pids.max"), "10");
        assert!(!dir.path().join("cpu.weight").exists(), "no cpu controller");
    }
}
