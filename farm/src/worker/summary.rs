//! `summary.html` in each attempt directory, written when the attempt ends:
//! what it read and wrote, how fast, how it ended, and when each step
//! happened. A static page: it reads the same opened from disk, from the
//! web view (`/attempts/<name>/summary.html`) or from a copied directory.

use crate::protocol::attempt::AttemptName;
use crate::protocol::job::Job;
use crate::rocks::serialized::ResultInfo;
use crate::worker::outcome::Outcome;
use crate::worker::timings::AttemptTimings;
use crate::worker::web::format::{bytes, escape, millis, speed, utc};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

pub const SUMMARY: &str = "summary.html";

/// One ended attempt, as `summary.html` shows it.
pub struct Summary<'a> {
    pub name: &'a AttemptName,
    pub identity: &'a str,
    pub job: &'a Job,
    /// Input SSTs (relative to the DB) and their sizes at admission.
    pub inputs: &'a [(String, u64)],
    pub outcome: &'a Outcome,
    /// RocksDB's serialized result, when the attempt succeeded.
    pub result: Option<&'a [u8]>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// From acceptance to start.
    pub waited: Duration,
    pub started_at: SystemTime,
    /// From start to end.
    pub ran: Duration,
    /// MULTI_PROCESS: how long starting the child took.
    pub spawn_latency: Option<Duration>,
    /// When each step happened; its parts are listed as `steps`.
    pub timings: &'a AttemptTimings,
}

impl Summary<'_> {
    /// Writes `summary.html` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join(SUMMARY), self.render())
    }

    pub fn render(&self) -> String {
        let name = escape(self.name.as_str());
        let mut h = format!(
            "<!doctype html><html><head><meta charset=utf-8><title>{name}</title>\
             <style>body{{font-family:sans-serif}}td,th{{border:1px solid #bbb;padding:2px 6px;text-align:left}}\
             table{{border-collapse:collapse}}</style></head><body><h1>{name}</h1><table id=summary>"
        );
        let mut field = |k: &str, v: String| {
            let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
        };
        field("worker", escape(self.identity));
        field("outcome", escape(&self.outcome.to_string()));
        field("database", escape(&self.job.dbname));
        field("column family", escape(&self.job.cf_name));
        field("output level", self.job.output_level.to_string());
        field("accepted", utc(self.started_at - self.waited));
        field("waited", millis(self.waited.as_millis() as u64));
        field("started", utc(self.started_at));
        field("ran", millis(self.ran.as_millis() as u64));
        field("ended", utc(self.started_at + self.ran));
        field(
            "hoster's estimate",
            millis(self.job.estimate_time_us / 1000),
        );
        if let Some(l) = self.spawn_latency {
            field("child spawned in", format!("{} us", l.as_micros()));
        }
        let input_bytes: u64 = self.inputs.iter().map(|(_, s)| s).sum();
        field(
            "input",
            format!("{} in {} files", bytes(input_bytes), self.inputs.len()),
        );
        field("read", bytes(self.bytes_read));
        field("written", bytes(self.bytes_written));
        field("read speed", speed(self.bytes_read, self.ran));
        field("write speed", speed(self.bytes_written, self.ran));
        h.push_str("</table><h2>steps</h2><table id=steps><tr><th>step</th><th>ms</th></tr>");
        for (step, us) in self.timings.parts() {
            if let Some(us) = us {
                let _ = write!(
                    h,
                    "<tr><td>{step}</td><td>{:.3}</td></tr>",
                    us as f64 / 1000.0
                );
            }
        }
        h.push_str("</table><h2>inputs</h2><table id=inputs><tr><th>file</th><th>bytes</th></tr>");
        for (file, size) in self.inputs {
            let _ = write!(h, "<tr><td>{}</td><td>{size}</td></tr>", escape(file));
        }
        h.push_str(
            "</table><h2>outputs</h2><table id=outputs><tr><th>file</th><th>bytes</th></tr>",
        );
        if let Some(Ok(info)) = self.result.map(ResultInfo::parse) {
            for f in &info.output_files {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    escape(&f.name),
                    f.size
                );
            }
        }
        h.push_str("</table></body></html>");
        h
    }
}
