//! The worker's resident memory and open files, read from `/proc`, and a
//! series of them over a run (written as CSV for the soak).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `RssAnon` (heap, stacks, anonymous maps), KiB: what a leak grows.
    pub anon_kib: u64,
    /// `RssFile` (the binary's and libraries' pages touched so far), KiB:
    /// grows as code paths run for the first time, never by a leak.
    pub file_kib: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub fds: u64,
}

/// Reads `pid`'s usage; `None` once it is gone.
pub fn sample(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Usage {
        rss_kib: kib("VmRSS:")?,
        anon_kib: kib("RssAnon:")?,
        file_kib: kib("RssFile:")?,
        fds,
    })
}

/// `(seconds since the start, usage)` readings.
pub struct Series {
    start: Instant,
    pub points: Vec<(f64, Usage)>,
}

impl Series {
    pub fn start() -> Series {
        Series {
            start: Instant::now(),
            points: Vec::new(),
        }
    }

    /// Adds a reading of `pid`, if it still runs.
    pub fn record(&mut self, pid: u32) {
        if let Some(u) = sample(pid) {
            self.points.push((self.start.elapsed().as_secs_f64(), u));
        }
    }

    /// `seconds,rss_kib,fds,anon_kib,file_kib` lines under a header.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "seconds,rss_kib,fds,anon_kib,file_kib")?;
        for (t, u) in &self.points {
            writeln!(
                f,
                "{t:.1},{},{},{},{}",
                u.rss_kib, u.fds, u.anon_kib, u.file_kib
            )?;
        }
        f.flush()
    }
}

/// Whether `end` is back within `percent` of `start` (never more than
/// that above it; less is fine).
pub fn within(start: u64, end: u64, percent: u64) -> bool {
    end * 100 <= start * (100 + percent)
}
