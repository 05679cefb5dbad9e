//! The chaos run's figures: what the hoster's checks covered, where its
//! compactions ran, and the faults by kind; printed at the end of the test.

use super::faults::Fault;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Tally {
    /// Opens of the hoster after the first, each followed by a full check.
    pub reopens: u64,
    /// Keys checked against the expected state, over every check.
    pub keys_checked: u64,
    /// Writes in flight at a kill that the reopened DB held / did not hold.
    pub pending_applied: u64,
    pub pending_lost: u64,
    /// Synced write batches' operations acknowledged.
    pub writes: u64,
    /// Jobs a worker accepted, remote outputs installed, local compactions
    /// (fallbacks) by reason: summed over the hoster's lives.
    pub scheduled: u64,
    pub remote_installed: u64,
    pub fallbacks: BTreeMap<String, u64>,
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

impl Tally {
    /// A `verified` or `done` event.
    pub fn checked(&mut self, v: &Value) {
        self.keys_checked += n(v, "keys");
        self.pending_applied += n(v, "pending_applied");
        self.pending_lost += n(v, "pending_lost");
    }

    /// The last `progress` (or the `done`) line of one hoster life.
    pub fn life(&mut self, last: &Value) {
        self.writes += n(last, "writes");
        let s = &last["stats"];
        self.scheduled += n(s, "scheduled");
        self.remote_installed += n(s, "remote_installed");
        for (reason, count) in s["fallbacks"].as_object().expect("fallbacks") {
            *self.fallbacks.entry(reason.clone()).or_default() += count.as_u64().expect("a count");
        }
    }

    pub fn local_total(&self) -> u64 {
        self.fallbacks.values().sum()
    }

    /// The figures as the test prints them (and docs/CRASHTEST.md quotes).
    pub fn print(
        &self,
        faults: &BTreeMap<Fault, u64>,
        missed: &BTreeMap<Fault, u64>,
        worker_succeeded: (u64, u64),
        remote_ssts: (usize, usize),
        disk_full_failures: u64,
    ) {
        println!("chaos figures:");
        println!("  reopens checked        {}", self.reopens);
        println!("  keys checked           {}", self.keys_checked);
        println!(
            "  writes in flight       {} applied, {} lost (both allowed)",
            self.pending_applied, self.pending_lost
        );
        println!("  operations acked       {}", self.writes);
        println!(
            "  compactions            {} remote installed, {} local fallbacks, {} accepted by workers",
            self.remote_installed,
            self.local_total(),
            self.scheduled
        );
        let reasons: Vec<String> = self
            .fallbacks
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(r, c)| format!("{r}={c}"))
            .collect();
        println!("  fallbacks by reason    {}", reasons.join(" "));
        println!(
            "  worker counters        steady succeeded {}, victim succeeded {}",
            worker_succeeded.0, worker_succeeded.1
        );
        println!(
            "  live SSTs              {} of {} written by a worker",
            remote_ssts.0, remote_ssts.1
        );
        println!(
            "  while the disk was full {disk_full_failures} attempts failed or were refused by the steady worker"
        );
        println!("  faults injected:");
        for (f, c) in faults {
            println!("    {:<26} {c}", f.name());
        }
        for (f, c) in missed {
            println!("    {:<26} {c} found nothing to hit", f.name());
        }
    }
}
