//! The `timings {json}` line of every attempt `LOG` below a worker's
//! `WORKER_DB_ROOT` (see `farm::worker::timings`), keyed by the attempt's
//! DB job and subcompaction (`.../job-%05d-%02d/att-%02d/LOG`).

use farm::worker::timings::AttemptTimings;
use std::path::Path;

/// One attempt's marks, with its job numbers.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub db_job: u32,
    pub sub_job: u32,
    pub attempt: u32,
    pub timings: AttemptTimings,
}

/// `job-00012-03` and `att-01` into `(12, 3, 1)`.
fn job_numbers(dir: &Path) -> Option<(u32, u32, u32)> {
    let att = dir
        .file_name()?
        .to_str()?
        .strip_prefix("att-")?
        .parse()
        .ok()?;
    let job = dir.parent()?.file_name()?.to_str()?.strip_prefix("job-")?;
    let (db, sub) = job.split_once('-')?;
    Some((db.parse().ok()?, sub.parse().ok()?, att))
}

/// Every attempt below `root` whose LOG has a timings line.
pub fn read_all(root: &Path) -> Vec<AttemptRecord> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "LOG") {
                out.extend(read_one(&p));
            }
        }
    }
    out.sort_by_key(|r| (r.db_job, r.sub_job, r.attempt));
    out
}

fn read_one(log: &Path) -> Option<AttemptRecord> {
    let dir = log.parent()?;
    let (db_job, sub_job, attempt) = job_numbers(dir)?;
    let text = std::fs::read_to_string(log).ok()?;
    let json = text.lines().find_map(|l| {
        l.split(' ')
            .nth(2)
            .filter(|_| l.split(' ').nth(1) == Some("timings"))
    })?;
    Some(AttemptRecord {
        db_job,
        sub_job,
        attempt,
        timings: serde_json::from_str(json).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_timings_line() {
        let root = std::env::temp_dir().join(format!("farm-bench-logs-{}", std::process::id()));
        let dir = root.join("i/7/db/job-00012-03/att-01");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("LOG"),
            "1.000 start x\n2.000 timings {\"started_us\":5,\"ended_us\":9} queue=1ms\n",
        )
        .unwrap();
        let all = read_all(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].db_job, all[0].sub_job, all[0].attempt), (12, 3, 1));
        assert_eq!(all[0].timings.ended_us, Some(9));
    }
}
