//! When each step of one attempt happened: the fixed cost of a remote job,
//! split into its parts, for the attempt's `LOG` (one `timings {json}` line),
//! its `summary.html`, and the benchmarks that read them.
//!
//! Every mark is wall-clock time in microseconds since the Unix epoch, so
//! marks taken by the worker, by an attempt's child and by a hoster on the
//! same machine line up. A mark a path never reaches stays `None` (an
//! in-process attempt has no `spawned_us`).
//!
//! | mark | taken |
//! | --- | --- |
//! | `received_us` | `/dcompact` began handling the request |
//! | `admitted_us` | admission passed (paths, input, OPTIONS loaded and checked) |
//! | `started_us` | the attempt left the queue and began to run |
//! | `spawned_us` | MULTI_PROCESS: fork+exec of the child returned, or a spare child was assigned |
//! | `child_main_us` | MULTI_PROCESS: the child's code began |
//! | `prepared_us` | the override is built and the output directory made |
//! | `compacted_us` | `OpenAndCompact` returned |
//! | `persisted_us` | `rpc.results` and `compact.done` are written |
//! | `exiting_us` | MULTI_PROCESS: the child has written its last file and exits |
//! | `delivered_us` | the result is in place and `/probe` answers it from here on: a MULTI_PROCESS child said so, or an in-process run returned |
//! | `reaped_us` | MULTI_PROCESS: the supervisor has reaped the child |
//! | `ended_us` | the supervisor has the outcome (the child reaped, what it left ended) |
//!
//! `compaction_us` is not a mark: it is RocksDB's own time for the
//! compaction (the result's `micros`), so `compacted - prepared -
//! compaction` is the secondary open and close around it (every run of it:
//! `open_retries` lists the runs again after a secondary open lost a race
//! with the primary, see [`crate::worker::open_retry`]).

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The name of the file a child writes its own marks to.
pub const CHILD_TIMINGS: &str = "timings.child.json";

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A secondary open that lost a race with the primary and ran again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRetry {
    /// The race it lost: a [`crate::rocks::open_race::OpenRace`] name.
    pub race: String,
    /// When the retry was decided, as the marks are.
    pub at_us: u64,
}

/// The marks of one attempt (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTimings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawned_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_main_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exiting_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaped_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_us: Option<u64>,
    /// RocksDB's own time for the compaction, from the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_us: Option<u64>,
    /// The runs of `OpenAndCompact` after a lost race, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_retries: Vec<OpenRetry>,
}

/// One part of an attempt's time, in microseconds.
pub type Part = (&'static str, Option<u64>);

impl AttemptTimings {
    /// Takes every mark `other` has (a child's marks, read back).
    pub fn merge(&mut self, other: &AttemptTimings) {
        let pairs = [
            (&mut self.received_us, other.received_us),
            (&mut self.admitted_us, other.admitted_us),
            (&mut self.started_us, other.started_us),
            (&mut self.spawned_us, other.spawned_us),
            (&mut self.child_main_us, other.child_main_us),
            (&mut self.prepared_us, other.prepared_us),
            (&mut self.compacted_us, other.compacted_us),
            (&mut self.persisted_us, other.persisted_us),
            (&mut self.exiting_us, other.exiting_us),
            (&mut self.delivered_us, other.delivered_us),
            (&mut self.reaped_us, other.reaped_us),
            (&mut self.ended_us, other.ended_us),
            (&mut self.compaction_us, other.compaction_us),
        ];
        for (mine, theirs) in pairs {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        if !other.open_retries.is_empty() {
            self.open_retries.clone_from(&other.open_retries);
        }
    }

    /// The parts between the marks, in order: `admission`, `queue`,
    /// `spawn` (fork+exec, or a spare child's assignment), `exec` (the
    /// child's start until its code runs; with a spare, its wake-up),
    /// `setup` (options loaded, override built and checked, output
    /// directory made), `secondary_open` (the rest of `OpenAndCompact`
    /// around the compaction), `compaction`, `persist`, `child_end` (the
    /// child's last files), `exit` (the child's exit until it is reaped),
    /// `cleanup` (what it left ended, its result read; for an in-process
    /// attempt, from the result to its answer). A delivered child's
    /// `child_end` stops at its delivery. In-process attempts have no
    /// `spawn`, `exec`, `child_end` or `exit`; their `setup` starts at
    /// `started_us`.
    pub fn parts(&self) -> [Part; 11] {
        let d = |from: Option<u64>, to: Option<u64>| Some(to?.saturating_sub(from?));
        let setup_from = self.child_main_us.or(self.started_us);
        // A woken child may run before the worker's thread marks
        // `spawned_us` (they share a core): the spawn ends when the child's
        // code began at the latest, so that no two parts overlap.
        let spawned = match (self.spawned_us, self.child_main_us) {
            (Some(s), Some(c)) => Some(s.min(c)),
            (s, _) => s,
        };
        let oac = d(self.prepared_us, self.compacted_us);
        [
            ("admission", d(self.received_us, self.admitted_us)),
            ("queue", d(self.admitted_us, self.started_us)),
            ("spawn", d(self.started_us, spawned)),
            ("exec", d(spawned, self.child_main_us)),
            ("setup", d(setup_from, self.prepared_us)),
            (
                "secondary_open",
                oac.and_then(|o| Some(o.saturating_sub(self.compaction_us?))),
            ),
            ("compaction", self.compaction_us),
            ("persist", d(self.compacted_us, self.persisted_us)),
            ("child_end", self.child_end()),
            ("exit", d(self.exiting_us, self.reaped_us)),
            ("cleanup", self.cleanup()),
        ]
    }

    /// A child's last files: to its exit, or only to its delivery when it
    /// delivered (the rest is not in a hoster's wait).
    fn child_end(&self) -> Option<u64> {
        let to = match (self.delivered_us, self.exiting_us) {
            (Some(d), Some(e)) => d.min(e),
            (_, e) => e?,
        };
        Some(to.saturating_sub(self.persisted_us?))
    }

    /// A child's: from its reaping (or exit) to the end. An in-process
    /// attempt's: from its result to its answer (its delivery, or its end
    /// when it was not delivered); what follows is not in a hoster's wait.
    fn cleanup(&self) -> Option<u64> {
        let child_end = self.reaped_us.or(self.exiting_us);
        let (from, to) = match child_end {
            Some(e) => (e, self.ended_us?),
            None => (self.persisted_us?, self.answered_us()?),
        };
        Some(to.saturating_sub(from))
    }

    /// When `/probe` began to answer the attempt's end: its delivery, or
    /// the end itself.
    pub fn answered_us(&self) -> Option<u64> {
        self.delivered_us.or(self.ended_us)
    }

    /// `admission=1.234ms queue=...`: the parts for a log line, and the
    /// number of open retries when there were any.
    pub fn describe(&self) -> String {
        let retries = (!self.open_retries.is_empty())
            .then(|| format!("open_retries={}", self.open_retries.len()));
        self.parts()
            .iter()
            .filter_map(|(name, us)| Some(format!("{name}={:.3}ms", (*us)? as f64 / 1000.0)))
            .chain(retries)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_child_attempt() {
        let mut t = AttemptTimings {
            received_us: Some(1_000),
            admitted_us: Some(1_500),
            started_us: Some(1_600),
            spawned_us: Some(4_600),
            ended_us: Some(30_000),
            ..Default::default()
        };
        t.merge(&AttemptTimings {
            child_main_us: Some(5_000),
            prepared_us: Some(8_000),
            compacted_us: Some(28_000),
            persisted_us: Some(28_500),
            exiting_us: Some(28_600),
            compaction_us: Some(15_000),
            open_retries: vec![OpenRetry {
                race: "manifest_replaced".into(),
                at_us: 9_000,
            }],
            ..Default::default()
        });
        t.reaped_us = Some(29_000);
        let parts: Vec<_> = t.parts().iter().map(|(_, us)| *us).collect();
        assert_eq!(
            parts,
            [500, 100, 3_000, 400, 3_000, 5_000, 15_000, 500, 100, 400, 1_000].map(Some)
        );
        assert!(t.describe().starts_with("admission=0.500ms queue=0.100ms"));
        assert!(
            t.describe().ends_with(" open_retries=1"),
            "{}",
            t.describe()
        );
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<AttemptTimings>(&json).unwrap(), t);
    }

    #[test]
    fn a_child_that_ran_before_its_spawn_was_marked_overlaps_no_part() {
        let t = AttemptTimings {
            started_us: Some(1_000),
            child_main_us: Some(1_200),
            spawned_us: Some(2_500),
            prepared_us: Some(2_000),
            ..Default::default()
        };
        let p = t.parts();
        assert_eq!(p[2], ("spawn", Some(200)));
        assert_eq!(p[3], ("exec", Some(0)));
        assert_eq!(p[4], ("setup", Some(800)));
    }

    #[test]
    fn a_delivered_childs_end_stops_at_its_delivery() {
        let mut t = AttemptTimings {
            persisted_us: Some(1_000),
            exiting_us: Some(1_900),
            ..Default::default()
        };
        assert_eq!(t.parts()[8], ("child_end", Some(900)));
        t.delivered_us = Some(1_300);
        assert_eq!(t.parts()[8], ("child_end", Some(300)));
    }

    #[test]
    fn in_process_attempts_have_no_spawn() {
        let mut t = AttemptTimings {
            started_us: Some(10),
            prepared_us: Some(40),
            compacted_us: Some(100),
            compaction_us: Some(50),
            persisted_us: Some(120),
            ended_us: Some(900),
            ..Default::default()
        };
        let p = t.parts();
        assert_eq!(p[2], ("spawn", None));
        assert_eq!(p[3], ("exec", None));
        assert_eq!(p[4], ("setup", Some(30)));
        assert_eq!(p[5], ("secondary_open", Some(10)));
        assert_eq!(p[10], ("cleanup", Some(780)), "not delivered: to the end");
        t.delivered_us = Some(130);
        assert_eq!(t.parts()[10], ("cleanup", Some(10)), "to the delivery");
    }
}
