//! Reading and writing cgroup control files.

use super::error::CgroupError;
use nix::unistd::Pid;
use std::path::Path;

/// Writes `value` into the control file `name` of `dir`.
pub fn set(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(name);
    std::fs::write(&path, value).map_err(CgroupError::io("write", path))
}

/// The processes in the cgroup `dir` (its `cgroup.procs`); none when the
/// cgroup is gone.
pub fn procs(dir: &Path) -> Vec<Pid> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(Pid::from_raw)
        .collect()
}

/// The value of `key` in a flat-keyed control file (`memory.events`,
/// `memory.oom_control`): lines of `key value`.
pub fn keyed(dir: &Path, name: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_are_read_by_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(keyed(dir.path(), "memory.oom_control", "oom_kill"), Some(2));
        assert_eq!(keyed(dir.path(), "memory.oom_control", "oom"), None);
        assert_eq!(keyed(dir.path(), "memory.events", "oom_kill"), None);
        std::fs::write(dir.path().join("cgroup.procs"), "12\n34\n").unwrap();
        assert_eq!(
            procs(dir.path()),
            vec![Pid::from_raw(12), Pid::from_raw(34)]
        );
        assert!(procs(&dir.path().join("gone")).is_empty());
    }
}
