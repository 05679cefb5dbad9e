//! The benchmark's database: db_bench-like options, its column families,
//! and the figures RocksDB keeps about it (write stalls, bytes flushed and
//! compacted, locally and remotely).

use anyhow::Context;
use farm::hoster::plugins::install_merge_operator;
use farm_plugin_counter::Counter;
use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options, DB};
use std::path::Path;
use std::time::{Duration, Instant};

/// The name of the merge-operator family (the `counter` plugin).
pub const MERGE_FAMILY: &str = "counters";

/// The options every mode shares.
#[derive(Debug, Clone)]
pub struct DbSpec {
    pub write_buffer_size: usize,
    pub target_file_size: u64,
    pub level_base: u64,
    pub compression: DBCompressionType,
    /// Level 0's compression (what flushes write), when it differs.
    pub l0_compression: Option<DBCompressionType>,
    /// RocksDB's `max_background_jobs` (flushes and compactions at once).
    pub background_jobs: i32,
    pub subcompactions: u32,
    /// Column families written round robin (`default` and `cf1`...).
    pub families: usize,
    /// Adds the merge-operator family.
    pub merge: bool,
}

impl DbSpec {
    /// Options with statistics on; the caller adds a compaction service.
    pub fn options(&self) -> Options {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_write_buffer_size(self.write_buffer_size);
        o.set_target_file_size_base(self.target_file_size);
        o.set_max_bytes_for_level_base(self.level_base);
        o.set_compression_type(self.compression);
        if let Some(l0) = self.l0_compression {
            let mut levels = vec![self.compression; 7];
            levels[0] = l0;
            o.set_compression_per_level(&levels);
        }
        o.set_max_background_jobs(self.background_jobs);
        o.set_max_subcompactions(self.subcompactions);
        o.enable_statistics();
        o.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        o
    }

    pub fn family_names(&self) -> Vec<String> {
        (0..self.families.max(1))
            .map(|i| match i {
                0 => "default".to_owned(),
                n => format!("cf{n}"),
            })
            .collect()
    }

    /// Opens the DB at `path` with every family, each with `opts`.
    pub fn open(&self, path: &Path, opts: &Options) -> anyhow::Result<DB> {
        let mut families: Vec<ColumnFamilyDescriptor> = self
            .family_names()
            .into_iter()
            .map(|n| ColumnFamilyDescriptor::new(n, opts.clone()))
            .collect();
        if self.merge {
            let mut counters = opts.clone();
            install_merge_operator(&mut counters, Counter).context("the counter merge operator")?;
            families.push(ColumnFamilyDescriptor::new(MERGE_FAMILY, counters));
        }
        DB::open_cf_descriptors(opts, path, families).context("opening the benchmark DB")
    }
}

/// RocksDB's own figures of one run.
#[derive(Debug, Clone, Default)]
pub struct DbFigures {
    /// Time writers spent stalled (`rocksdb.stall.micros`).
    pub stall: Duration,
    pub flush_bytes: u64,
    /// Bytes written by compactions run here and installed from remote.
    pub local_compact_bytes: u64,
    pub remote_compact_bytes: u64,
    /// Stall counts by cause (`rocksdb.db-write-stall-stats` and
    /// `rocksdb.cf-write-stall-stats` of every family), non-zero ones only.
    pub stall_causes: Vec<(String, u64)>,
}

impl DbFigures {
    pub fn read(db: &DB, opts: &Options, spec: &DbSpec) -> Self {
        let mut causes: Vec<(String, u64)> = Vec::new();
        let mut add = |text: Option<String>| {
            for (k, v) in text.iter().flat_map(|t| parse_stall_stats(t)) {
                match causes.iter_mut().find(|(c, _)| *c == k) {
                    Some((_, n)) => *n += v,
                    None => causes.push((k, v)),
                }
            }
        };
        add(db
            .property_value("rocksdb.db-write-stall-stats")
            .ok()
            .flatten());
        let mut names = spec.family_names();
        if spec.merge {
            names.push(MERGE_FAMILY.into());
        }
        for name in names {
            if let Some(cf) = db.cf_handle(&name) {
                add(db
                    .property_value_cf(cf, "rocksdb.cf-write-stall-stats")
                    .ok()
                    .flatten());
            }
        }
        DbFigures {
            stall: Duration::from_micros(opts.get_ticker_count(Ticker::StallMicros)),
            flush_bytes: opts.get_ticker_count(Ticker::FlushWriteBytes),
            local_compact_bytes: opts.get_ticker_count(Ticker::CompactWriteBytes),
            remote_compact_bytes: opts.get_ticker_count(Ticker::RemoteCompactWriteBytes),
            stall_causes: causes,
        }
    }

    /// Bytes written to disk by flushes and compactions per byte ingested.
    pub fn write_amp(&self, ingested: u64) -> f64 {
        (self.flush_bytes + self.local_compact_bytes + self.remote_compact_bytes) as f64
            / ingested.max(1) as f64
    }
}

/// `name: value` pairs with a non-zero count from a write-stall-stats
/// property (`Write Stall (count): a: 1, b: 0\n`).
fn parse_stall_stats(text: &str) -> Vec<(String, u64)> {
    text.split([',', ';', '\n'])
        .filter_map(|kv| {
            let (k, v) = kv.rsplit_once([':', '='])?;
            let v: u64 = v.trim().parse().ok()?;
            let k = k.rsplit(": ").next()?.trim();
            (v > 0).then(|| (k.to_owned(), v))
        })
        .collect()
}

/// Waits until no flush or compaction is pending or running (at most
/// `limit`); when not `compacting` (compactions off), until no flush is.
pub fn wait_settled(db: &DB, limit: Duration, compacting: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let busy = |p: &str| db.property_int_value(p).map(|v| v.unwrap_or(0) > 0);
    loop {
        // With compactions off a compaction stays pending for good.
        let any = (compacting && busy("rocksdb.compaction-pending")?)
            || busy("rocksdb.num-running-compactions")?
            || busy("rocksdb.num-running-flushes")?
            || busy("rocksdb.mem-table-flush-pending")?;
        if !any {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "compactions still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_stats_both_forms() {
        let text =
            "Write Stall (count): cf-l0-file-count-limit-delays-with-ongoing-compaction: 3, \
                    cf-l0-file-count-limit-stops: 0\nmemtable-limit-stops=2;";
        assert_eq!(
            parse_stall_stats(text),
            [
                (
                    "cf-l0-file-count-limit-delays-with-ongoing-compaction".to_owned(),
                    3
                ),
                ("memtable-limit-stops".to_owned(), 2)
            ]
        );
    }
}
