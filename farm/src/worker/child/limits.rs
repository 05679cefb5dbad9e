//! The limits a child runs under, from the worker's settings: in its
//! cgroup where the worker can make one, else as resource limits.
//!
//! | setting | with a cgroup | without |
//! | --- | --- | --- |
//! | `CHILD_MEMORY_LIMIT` | the cgroup's memory limit (no swap beyond it) | `RLIMIT_AS` |
//! | `CHILD_MAX_PROCESSES` | `pids.max` | none |
//! | `CHILD_CPU_WEIGHT` | `cpu.weight` / `cpu.shares` | none |
//! | `CHILD_FILE_SIZE_LIMIT` | `RLIMIT_FSIZE` | `RLIMIT_FSIZE` |
//! | `CHILD_OPEN_FILES` | `RLIMIT_NOFILE` | `RLIMIT_NOFILE` |
//! | `CHILD_NICE` | nice increment | nice increment |

use crate::worker::cgroup::error::CgroupError;
use crate::worker::cgroup::group::ChildCgroup;
use crate::worker::cgroup::limits::CgroupLimits;
use crate::worker::process::setup::{ChildSetup, Rlimit};
use nix::sys::resource::Resource;
use std::fmt;
use std::str::FromStr;

/// `CHILD_CGROUP`: whether children get cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupMode {
    /// A cgroup where the host allows one, else resource limits (default).
    #[default]
    Auto,
    /// The worker refuses to start without cgroups for its children.
    Required,
    /// Resource limits only.
    Off,
}

impl FromStr for CgroupMode {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(CgroupMode::Auto),
            "required" => Ok(CgroupMode::Required),
            "off" => Ok(CgroupMode::Off),
            _ => Err("expected auto, required or off"),
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupMode::Auto => "auto",
            CgroupMode::Required => "required",
            CgroupMode::Off => "off",
        })
    }
}

/// What a child may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildLimits {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// Tasks (processes and threads) in the child's cgroup.
    pub max_processes: u64,
    /// CPU weight, 1 to 10000 (100: an equal share).
    pub cpu_weight: u32,
    /// `RLIMIT_FSIZE`, bytes: a larger file write gets SIGXFSZ.
    pub file_size: Option<u64>,
    /// `RLIMIT_NOFILE`.
    pub open_files: Option<u64>,
    /// Added to the child's nice value.
    pub nice: Option<i32>,
    pub cgroup: CgroupMode,
}

/// `CHILD_MAX_PROCESSES` unset.
pub const DEFAULT_MAX_PROCESSES: u64 = 1024;
/// `CHILD_CPU_WEIGHT` unset: the share of any other cgroup.
pub const DEFAULT_CPU_WEIGHT: u32 = 100;

impl Default for ChildLimits {
    fn default() -> Self {
        ChildLimits {
            memory: None,
            max_processes: DEFAULT_MAX_PROCESSES,
            cpu_weight: DEFAULT_CPU_WEIGHT,
            file_size: None,
            open_files: None,
            nice: None,
            cgroup: CgroupMode::Auto,
        }
    }
}

impl ChildLimits {
    /// The limits of a child's cgroup.
    pub fn cgroup_limits(&self) -> CgroupLimits {
        CgroupLimits {
            memory: self.memory,
            max_processes: self.max_processes,
            cpu_weight: self.cpu_weight,
        }
    }

    /// The setup of a child that leads its own group, dies with the worker,
    /// and joins `cgroup` (or, without one, gets `RLIMIT_AS` for its memory).
    pub fn setup(&self, cgroup: Option<&ChildCgroup>) -> Result<ChildSetup, CgroupError> {
        let join = cgroup.map(ChildCgroup::join_files).transpose()?;
        let memory = if join.is_none() { self.memory } else { None };
        let rlimits = [
            (Resource::RLIMIT_AS, memory),
            (Resource::RLIMIT_FSIZE, self.file_size),
            (Resource::RLIMIT_NOFILE, self.open_files),
        ]
        .into_iter()
        .filter_map(|(resource, v)| v.map(|value| Rlimit { resource, value }))
        .collect();
        Ok(ChildSetup {
            join: join.unwrap_or_default(),
            own_group: true,
            die_with_parent: true,
            rlimits,
            nice: self.nice,
            idle: false,
            keep_fd: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_cgroup_memory_is_an_address_space_limit() {
        let limits = ChildLimits {
            memory: Some(1 << 30),
            file_size: Some(1 << 20),
            ..ChildLimits::default()
        };
        let setup = limits.setup(None).unwrap();
        assert!(setup.own_group && setup.die_with_parent);
        assert!(setup.join.is_empty());
        assert_eq!(
            setup.rlimits,
            vec![
                Rlimit {
                    resource: Resource::RLIMIT_AS,
                    value: 1 << 30
                },
                Rlimit {
                    resource: Resource::RLIMIT_FSIZE,
                    value: 1 << 20
                },
            ]
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!("required".parse::<CgroupMode>(), Ok(CgroupMode::Required));
        assert_eq!("off".parse::<CgroupMode>(), Ok(CgroupMode::Off));
        assert!("v1".parse::<CgroupMode>().is_err());
        assert_eq!(CgroupMode::default().to_string(), "auto");
    }
}
