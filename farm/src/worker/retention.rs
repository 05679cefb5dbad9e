//! Keeping attempt directories for post-mortem without filling the disk.
//!
//! With `DEL_WORKER_TEMP_DB=false` every attempt leaves its directory
//! (`WORKER_DB_ROOT/<instance>/<start_time>/<db>/job-NNNNN-NN/att-NN`). The
//! sweeper removes those older than `ATTEMPT_RETENTION_AGE`, then the oldest
//! until the rest fit in `ATTEMPT_RETENTION_BYTES`; directories of attempts
//! still queued or running are never touched.

use std::collections::HashSet;
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
    path: PathBuf,
    modified: SystemTime,
    bytes: u64,
}

/// Sweeps `root` once.
pub fn sweep(
    root: &Path,
    max_age: Duration,
    max_bytes: u64,
    in_use: &HashSet<PathBuf>,
) -> SweepReport {
    let mut found = Vec::new();
    collect(root, 0, &mut found);
    found.retain(|f| !in_use.contains(&f.path));
    found.sort_by_key(|f| f.modified);
    let now = SystemTime::now();
    let mut total: u64 = found.iter().map(|f| f.bytes).sum();
    let mut report = SweepReport::default();
    for f in found {
        let old = now.duration_since(f.modified).unwrap_or_default() > max_age;
        if old || total > max_bytes {
            match std::fs::remove_dir_all(&f.path) {
                Ok(()) => {
                    total -= f.bytes;
                    report.removed += 1;
                    report.removed_bytes += f.bytes;
                    remove_empty_parents(root, &f.path);
                }
                Err(e) => {
                    tracing::warn!(dir = %f.path.display(), error = %e, "failed to remove a retained attempt");
                    report.kept += 1;
                    report.kept_bytes += f.bytes;
                }
            }
        } else {
            report.kept += 1;
            report.kept_bytes += f.bytes;
        }
    }
    report
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<Found>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            continue;
        }
        if depth + 1 == ATTEMPT_DEPTH {
            let (bytes, modified) = size_and_newest(&path);
            out.push(Found {
                path,
                modified,
                bytes,
            });
        } else {
            collect(&path, depth + 1, out);
        }
    }
}

fn size_and_newest(dir: &Path) -> (u64, SystemTime) {
    let mut bytes = 0;
    let mut newest = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                let (b, t) = size_and_newest(&e.path());
                bytes += b;
                newest = newest.max(t);
            } else {
                bytes += m.len();
                newest = newest.max(m.modified().unwrap_or(newest));
            }
        }
    }
    (bytes, newest)
}

fn remove_empty_parents(root: &Path, dir: &Path) {
    let mut d = dir.parent();
    while let Some(p) = d {
        if p == root || !p.starts_with(root) || std::fs::remove_dir(p).is_err() {
            break;
        }
        d = p.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(root: &Path, name: &str, bytes: usize, age: Duration) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("LOG");
        std::fs::write(&file, vec![b'x'; bytes]).unwrap();
        let t = SystemTime::now() - age;
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(t)
            .unwrap();
        std::fs::File::open(&dir).unwrap().set_modified(t).unwrap();
        dir
    }

    #[test]
    fn removes_old_then_oldest_over_budget_but_never_in_use() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let hour = Duration::from_secs(3600);
        let ancient = attempt(r, "i/1/db/job-00001-00/att-00", 100, 100 * hour);
        let old = attempt(r, "i/1/db/job-00002-00/att-00", 1000, 3 * hour);
        let mid = attempt(r, "i/1/db/job-00003-00/att-00", 1000, 2 * hour);
        let new = attempt(r, "i/1/db/job-00004-00/att-00", 1000, hour);
        let busy = attempt(r, "i/2/db/job-00001-00/att-00", 5000, 200 * hour);
        let in_use: HashSet<PathBuf> = [busy.clone()].into();

        let report = sweep(r, 24 * hour, 2000, &in_use);
        assert!(!ancient.exists(), "older than the age limit");
        assert!(!old.exists(), "oldest over the byte budget");
        assert!(mid.exists() && new.exists(), "fit in the budget");
        assert!(busy.exists(), "in use");
        assert_eq!(report.removed, 2);
        assert_eq!(report.kept_bytes, 2000);
        assert!(
            !r.join("i/1/db/job-00001-00").exists(),
            "empty parents go too"
        );
    }
}
