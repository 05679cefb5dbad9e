//! Keeping attempt directories for post-mortem without filling the disk.
//!
//! With `DEL_WORKER_TEMP_DB=false` every attempt leaves its directory
//! (`WORKER_DB_ROOT/<instance>/<start_time>/<db>/job-NNNNN-NN/att-NN`). The
//! sweeper removes those older than `ATTEMPT_RETENTION_AGE`, then the oldest
//! until the rest fit in `ATTEMPT_RETENTION_BYTES`; directories of attempts
//! still queued or running are never touched.
//!
//! It removes only what this worker created: a directory is a candidate
//! when every component of its path follows the attempt-name grammar, it
//! is reached beneath the root's handle without a symlink or a mount point
//! on the way, and it carries the owner marker with this root's id
//! ([`super::attempt_dir::OWNER_MARKER`]). Anything else under the root
//! (an operator's files, a mount, a symlink, another root's attempts) is
//! neither walked into beyond the grammar nor counted nor removed.

use crate::worker::attempt_dir::{is_owned, remove_empty_parents};
use crate::worker::beneath::{self, Crossing};
use crate::worker::root_guard::WorkerRoot;
use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Depth of an attempt directory below the root (see the naming above).
const ATTEMPT_DEPTH: usize = 5;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub removed: usize,
    pub removed_bytes: u64,
    pub kept: usize,
    pub kept_bytes: u64,
}

struct Found {
    /// Relative to the root.
    rel: PathBuf,
    modified: SystemTime,
    bytes: u64,
}

/// Whether `name` may be the path component at `depth` (1-based) of an
/// attempt directory.
fn follows_grammar(depth: usize, name: &str) -> bool {
    let digits = |s: &str, min: usize| s.len() >= min && s.bytes().all(|b| b.is_ascii_digit());
    match depth {
        1 => {
            !name.is_empty()
                && name.len() <= 128
                && name != "."
                && name != ".."
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }
        2 => digits(name, 1),
        3 => !name.is_empty() && name != "." && name != ".." && !name.starts_with(".dcompact"),
        4 => name
            .strip_prefix("job-")
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(job, sub)| digits(job, 5) && digits(sub, 2)),
        5 => name.strip_prefix("att-").is_some_and(|a| digits(a, 2)),
        _ => false,
    }
}

/// Sweeps `root` once; `in_use` holds the names of attempts queued or
/// running.
pub fn sweep(
    root: &WorkerRoot,
    max_age: Duration,
    max_bytes: u64,
    in_use: &HashSet<String>,
) -> SweepReport {
    let mut found = Vec::new();
    if let Ok(fd) = beneath::open_dir(root.fd(), Path::new(""), Crossing::SameFilesystem) {
        collect(root, fd, PathBuf::new(), 1, &mut found);
    }
    found.retain(|f| !in_use.contains(&*f.rel.to_string_lossy()));
    found.sort_by_key(|f| f.modified);
    let now = SystemTime::now();
    let mut total: u64 = found.iter().map(|f| f.bytes).sum();
    let mut report = SweepReport::default();
    for f in found {
        let old = now.duration_since(f.modified).unwrap_or_default() > max_age;
        if !(old || total > max_bytes) {
            report.kept += 1;
            report.kept_bytes += f.bytes;
            continue;
        }
        match remove(root, &f.rel) {
            Ok(()) => {
                total -= f.bytes;
                report.removed += 1;
                report.removed_bytes += f.bytes;
            }
            Err(e) => {
                tracing::warn!(dir = %f.rel.display(), error = %e, "failed to remove a retained attempt");
                report.kept += 1;
                report.kept_bytes += f.bytes;
            }
        }
    }
    report
}

/// Walks `dir` (at `rel`, depth `depth` of its entries) for owned attempts.
fn collect(root: &WorkerRoot, dir: OwnedFd, rel: PathBuf, depth: usize, out: &mut Vec<Found>) {
    let Ok(names) = beneath::entries(&dir) else {
        return;
    };
    for name in names {
        let Some(text) = name.to_str().filter(|n| follows_grammar(depth, n)) else {
            continue;
        };
        // No symlink, no mount point: those fail to open here.
        let Ok(child) = beneath::open_dir(&dir, Path::new(text), Crossing::SameFilesystem) else {
            continue;
        };
        let child_rel = rel.join(text);
        if depth < ATTEMPT_DEPTH {
            collect(root, child, child_rel, depth + 1, out);
        } else if is_owned(&child, root.id()) {
            if let Ok(size) = beneath::tree_size(child.as_fd()) {
                out.push(Found {
                    rel: child_rel,
                    modified: size.newest,
                    bytes: size.bytes,
                });
            }
        }
    }
}

/// Removes the attempt at `rel`, after checking its marker once more
/// through the handle it is removed by.
fn remove(root: &WorkerRoot, rel: &Path) -> std::io::Result<()> {
    let (Some(parent), Some(last)) = (rel.parent(), rel.file_name()) else {
        return Ok(());
    };
    let parent_fd = beneath::open_dir(root.fd(), parent, Crossing::SameFilesystem)?;
    let dir = beneath::open_dir(&parent_fd, Path::new(last), Crossing::SameFilesystem)?;
    if !is_owned(&dir, root.id()) {
        return Err(std::io::Error::other(
            "its owner marker changed: left alone",
        ));
    }
    drop(dir);
    beneath::remove_tree(parent_fd.as_fd(), &OsString::from(last))?;
    remove_empty_parents(root, parent);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::attempt_dir::OWNER_MARKER;

    fn attempt(root: &WorkerRoot, name: &str, bytes: usize, age: Duration) -> PathBuf {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(OWNER_MARKER), format!("root_id={}\n", root.id())).unwrap();
        age_file(&dir.join("LOG"), bytes, age);
        age_file(&dir.join(OWNER_MARKER), 0, age);
        std::fs::File::open(&dir)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
        dir
    }

    fn age_file(file: &Path, bytes: usize, age: Duration) {
        if bytes > 0 {
            std::fs::write(file, vec![b'x'; bytes]).unwrap();
        }
        std::fs::File::options()
            .write(true)
            .open(file)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    #[test]
    fn removes_old_then_oldest_over_budget_but_never_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let root = WorkerRoot::open(&tmp.path().join("w")).unwrap();
        let hour = Duration::from_secs(3600);
        let ancient = attempt(&root, "i/1/db/job-00001-00/att-00", 100, 100 * hour);
        let old = attempt(&root, "i/1/db/job-00002-00/att-00", 1000, 3 * hour);
        let mid = attempt(&root, "i/1/db/job-00003-00/att-00", 1000, 2 * hour);
        let new = attempt(&root, "i/1/db/job-00004-00/att-00", 1000, hour);
        let busy = attempt(&root, "i/2/db/job-00001-00/att-00", 5000, 200 * hour);
        let in_use: HashSet<String> = ["i/2/db/job-00001-00/att-00".to_string()].into();

        // Two attempts of 1000 bytes and their markers fit; three do not.
        let report = sweep(&root, 24 * hour, 2100, &in_use);
        assert!(!ancient.exists(), "older than the age limit");
        assert!(!old.exists(), "oldest over the byte budget");
        assert!(mid.exists() && new.exists(), "fit in the budget");
        assert!(busy.exists(), "in use");
        assert_eq!(report.removed, 2);
        assert!(report.kept_bytes >= 2000, "{report:?}");
        assert!(
            !root.path().join("i/1/db/job-00001-00").exists(),
            "empty parents go too"
        );
    }

    #[test]
    fn what_the_worker_did_not_create_is_never_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = WorkerRoot::open(&tmp.path().join("w")).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("job-00001-00/att-00")).unwrap();
        let year = Duration::from_secs(365 * 24 * 3600);
        // Attempt-shaped, old, but no marker / another root's marker.
        let unmarked = root.path().join("i/1/db/job-00001-00/att-00");
        std::fs::create_dir_all(&unmarked).unwrap();
        age_file(&unmarked.join("data"), 10, year);
        let other = root.path().join("i/1/db/job-00002-00/att-00");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(OWNER_MARKER), "root_id=someone-else\n").unwrap();
        // A symlink at attempt depth and one on the way.
        std::os::unix::fs::symlink(&outside, root.path().join("i/1/db/job-00003-00")).unwrap();
        std::os::unix::fs::symlink(&outside, root.path().join("j")).unwrap();
        // Off-grammar names.
        std::fs::create_dir_all(root.path().join("git/objects/ab/cd/ef")).unwrap();
        let own = attempt(&root, "i/1/db/job-00004-00/att-00", 10, year);

        let report = sweep(&root, Duration::from_secs(1), 0, &HashSet::new());
        assert_eq!(report.removed, 1, "{report:?}");
        assert!(!own.exists());
        assert!(unmarked.join("data").exists());
        assert!(other.join(OWNER_MARKER).exists());
        assert!(outside.join("job-00001-00/att-00").is_dir());
        assert!(root.path().join("git/objects/ab/cd/ef").is_dir());
    }
}
