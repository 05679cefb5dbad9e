//! How much of its finished attempts the supervisor keeps.
//!
//! A finished attempt stays answerable by `/probe` for `RESULT_RETENTION`,
//! but a burst of fast jobs must not grow the worker's memory without
//! bound: at most [`MAX_FINISHED`] finished attempts and
//! [`MAX_FINISHED_BYTES`] of what they hold (the job's fields and the
//! result) are kept; beyond either, the oldest finished attempts are
//! forgotten first, as if their retention had passed (a probe then gets
//! 404 and the hoster collects the result from `rpc.results` or compacts
//! locally). Each one forgotten early is counted in
//! `farm_worker_finished_evicted_total`. A finished attempt keeps its job
//! without the compaction input, which only running needs.

use crate::protocol::job::Job;
use std::time::Instant;

/// Finished attempts kept at most.
pub const MAX_FINISHED: usize = 4096;
/// Bytes of finished attempts kept at most: 64 MiB.
pub const MAX_FINISHED_BYTES: u64 = 64 << 20;

/// One finished attempt as the bound sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished<K> {
    pub key: K,
    pub at: Instant,
    pub bytes: u64,
}

/// What a finished attempt holds: its job's strings and its result.
pub fn retained_bytes(job: &Job, result: Option<&str>) -> u64 {
    let strings = [
        &job.instance_name,
        &job.dbname,
        &job.hoster_root,
        &job.code_version,
        &job.cf_name,
        &job.nfs_type,
        &job.nfs_mnt_src,
        &job.nfs_mnt_opt,
        &job.output_dir,
        &job.compaction_service_input,
    ];
    let plugins: usize = job.plugins.iter().map(|p| p.name.len() + 8).sum();
    let info = job.job_info.as_ref().map_or(0, |i| {
        i.db_name.len() + i.db_id.len() + i.db_session_id.len() + i.cf_name.len()
    });
    let total = strings.iter().map(|s| s.len()).sum::<usize>()
        + plugins
        + info
        + result.map_or(0, str::len)
        + std::mem::size_of::<Job>();
    total as u64
}

/// The job a finished attempt keeps: everything but the compaction input.
pub fn slim(job: &Job) -> Job {
    Job {
        compaction_service_input: String::new(),
        remote: job.remote.as_ref().map(|r| r.redacted()),
        ..job.clone()
    }
}

/// The keys to forget, oldest first, so that what remains of `finished`
/// is within `max_count` attempts and `max_bytes` bytes.
pub fn to_evict<K: Clone>(
    mut finished: Vec<Finished<K>>,
    max_count: usize,
    max_bytes: u64,
) -> (Vec<K>, usize, u64) {
    finished.sort_by_key(|f| f.at);
    let mut count = finished.len();
    let mut bytes = finished
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.bytes));
    let mut evict = Vec::new();
    for f in &finished {
        if count <= max_count && bytes <= max_bytes {
            break;
        }
        evict.push(f.key.clone());
        count -= 1;
        bytes = bytes.saturating_sub(f.bytes);
    }
    (evict, count, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finished(n: usize, bytes: u64) -> Vec<Finished<usize>> {
        let t0 = Instant::now();
        // Listed newest first: the bound must sort.
        (0..n)
            .rev()
            .map(|i| Finished {
                key: i,
                at: t0 + Duration::from_millis(i as u64),
                bytes,
            })
            .collect()
    }

    #[test]
    fn oldest_go_first_by_count() {
        let (evict, count, bytes) = to_evict(finished(10, 1), 7, u64::MAX);
        assert_eq!(evict, vec![0, 1, 2]);
        assert_eq!((count, bytes), (7, 7));
    }

    #[test]
    fn oldest_go_first_by_bytes() {
        let (evict, count, bytes) = to_evict(finished(10, 100), 100, 550);
        assert_eq!(evict, vec![0, 1, 2, 3, 4]);
        assert_eq!((count, bytes), (5, 500));
    }

    #[test]
    fn within_both_bounds_nothing_goes() {
        let (evict, count, _) = to_evict(finished(3, 10), 3, 30);
        assert!(evict.is_empty());
        assert_eq!(count, 3);
    }
}
