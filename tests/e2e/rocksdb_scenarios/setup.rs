//! The fixture of RocksDB's `CompactionServiceTest`, with the farm as the
//! compaction service: a real worker behind a [`FaultProxy`], a hoster DB
//! with the column families `default`, `cf_1`, `cf_2`, `cf_3`, and the
//! test's `GenerateTestData` / `VerifyTestData`.
//!
//! Where the original counts `my_cs->GetCompactionNum()`, the scenarios
//! count both sides: attempts the worker accepted and finished, results the
//! proxy saw, and remote compactions the hoster installed.

use crate::fault_proxy::{Fault, FaultProxy};
use crate::harness::*;
use farm::worker::local::LocalWorker;
use rocksdb::statistics::Ticker;
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use serde_json::Value;

pub const CFS: [&str; 4] = ["default", "cf_1", "cf_2", "cf_3"];

/// RocksDB's `Key(i)`.
pub fn key(i: u32) -> String {
    format!("key{i:06}")
}

/// RocksDB's `CurrentOptions()` as far as the scenarios depend on it: the
/// defaults (level-0 trigger 4, large write buffers; the data is flushed by
/// hand), statistics on.
pub fn current_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_max_background_jobs(4);
    o.enable_statistics();
    o
}

/// `VerifyTestData()` on any open DB of the scenario.
pub fn verify_test_data_in(db: &DB) {
    for name in CFS {
        let cf = db.cf_handle(name).expect("column family exists");
        for i in 0..200 {
            let want = if i % 2 == 1 {
                format!("value{i}")
            } else {
                format!("value_new{i}")
            };
            let got = db.get_cf(cf, key(i)).expect("read succeeds");
            assert_eq!(got, Some(want.into_bytes()), "{name} {}", key(i));
        }
    }
}

pub struct Scenario {
    /// Whether RocksDB compacts on its own (`disable_auto_compactions` off).
    pub auto_compactions: bool,
    pub hoster: Hoster,
    pub proxy: FaultProxy,
    pub worker: LocalWorker,
    pub d: Dirs,
}

/// What each side counted so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// Attempts the worker accepted / finished with a result.
    pub worker_accepted: u64,
    pub worker_succeeded: u64,
    /// Worker failures by outcome name.
    pub worker_failed: Value,
    pub worker_bytes_written: u64,
    /// Remote results the hoster installed; fallbacks by reason.
    pub installed: u64,
    pub local: u64,
    pub fallbacks: std::collections::BTreeMap<&'static str, u64>,
    /// The last error behind each fallback reason.
    pub last_errors: std::collections::BTreeMap<&'static str, String>,
}

impl Scenario {
    /// A worker (with `worker_env`), the proxy injecting `fault`, and a
    /// hoster DB with `opts` on every column family, farm params `extra`.
    pub fn start(opts: Options, worker_env: &[(&str, String)], fault: Fault, extra: Value) -> Self {
        let d = dirs("db");
        let worker = start_worker(d.tmp.path(), worker_env);
        if worker_env.iter().any(|(k, _)| *k == "PLUGINS") {
            eventually("the worker knows its plugin classes", || {
                worker_stat(&worker)["plugins"]["classes"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty())
            });
        }
        let proxy = FaultProxy::start(
            worker.base_url(),
            d.db.join(farm::hoster::service::OUTPUT_SUBDIR),
            fault,
        );
        let params = params(&d.root, &[proxy.url()], extra);
        let cfs = CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, opts.clone()))
            .collect();
        let hoster = Hoster::open(&d.db, opts, cfs, &params);
        let latest_options = std::fs::read_dir(&d.db)
            .expect("db dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("OPTIONS-"))
            })
            .max()
            .expect("an OPTIONS file");
        let auto_compactions = !std::fs::read_to_string(latest_options)
            .expect("OPTIONS readable")
            .contains("disable_auto_compactions=true");
        Scenario {
            auto_compactions,
            hoster,
            proxy,
            worker,
            d,
        }
    }

    /// A scenario without a fault and with default params.
    pub fn plain(opts: Options) -> Self {
        Self::start(opts, &[], Fault::None, serde_json::json!({}))
    }

    pub fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.hoster
            .db
            .cf_handle(name)
            .expect("column family exists")
    }

    pub fn put(&self, cf: &str, k: &str, v: &str) {
        self.hoster
            .db
            .put_cf(self.cf(cf), k, v)
            .expect("the DB takes writes");
    }

    pub fn flush(&self, cf: &str) {
        self.hoster
            .db
            .flush_cf(self.cf(cf))
            .expect("flush succeeds");
    }

    pub fn get(&self, cf: &str, k: &str) -> Option<String> {
        self.hoster
            .db
            .get_cf(self.cf(cf), k)
            .expect("read succeeds")
            .map(|v| String::from_utf8(v).expect("utf-8 value"))
    }

    /// `GenerateTestData()`: per column family, 20 files of 10 keys, then 10
    /// files overlapping all of them with every other key rewritten.
    pub fn generate_test_data(&self) {
        for cf in CFS {
            for i in 0..20 {
                for j in 0..10 {
                    let id = i * 10 + j;
                    self.put(cf, &key(id), &format!("value{id}"));
                }
                self.flush(cf);
            }
            for i in 0..10 {
                for j in 0..10 {
                    let id = i * 20 + j * 2;
                    self.put(cf, &key(id), &format!("value_new{id}"));
                }
                self.flush(cf);
            }
        }
    }

    /// `VerifyTestData()`.
    pub fn verify_test_data(&self) {
        verify_test_data_in(&self.hoster.db);
    }

    /// Closes the hoster (and the worker), and reopens the DB without the
    /// farm.
    pub fn close(self) -> (DB, Dirs) {
        let Scenario { hoster, d, .. } = self;
        let Hoster { db, farm, .. } = hoster;
        drop(db);
        drop(farm);
        // No compaction of its own: the files listed are the files checked.
        let mut opts = current_options();
        opts.set_disable_auto_compactions(true);
        let cfs: Vec<_> = CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, opts.clone()))
            .collect();
        let db = DB::open_cf_descriptors(&opts, &d.db, cfs).expect("the DB reopens");
        (db, d)
    }

    /// `CompactRange(start, end)` on `cf` with keys `Key(start)`,
    /// `Key(end)`, then waits until every compaction settled.
    pub fn compact_range(&self, cf: &str, start: Option<u32>, end: Option<u32>) {
        let (s, e) = (start.map(key), end.map(key));
        self.hoster.db.compact_range_cf(self.cf(cf), s, e);
        self.wait();
    }

    /// `WaitForCompact()`: no compaction running, none pending (when
    /// RocksDB compacts on its own), nothing in flight to a worker.
    pub fn wait(&self) {
        if self.auto_compactions {
            return self.hoster.wait_for_compactions(&CFS);
        }
        let idle = || {
            self.hoster.farm.in_flight() == 0
                && CFS.iter().all(|cf| {
                    self.hoster
                        .db
                        .property_int_value_cf(self.cf(cf), "rocksdb.num-running-compactions")
                        .ok()
                        .flatten()
                        == Some(0)
                })
        };
        eventually("compactions end", || {
            idle() && {
                std::thread::sleep(std::time::Duration::from_millis(100));
                idle()
            }
        });
    }

    pub fn ticker(&self, t: Ticker) -> u64 {
        self.hoster.opts.get_ticker_count(t)
    }

    pub fn counts(&self) -> Counts {
        let stat = worker_stat(&self.worker);
        let c = &stat["counters"];
        let s = self.hoster.farm.stats();
        Counts {
            worker_accepted: c["accepted"].as_u64().expect("accepted"),
            worker_succeeded: c["succeeded"].as_u64().expect("succeeded"),
            worker_failed: c["failed"].clone(),
            worker_bytes_written: c["bytes_written"].as_u64().expect("bytes_written"),
            installed: s.remote_installed,
            local: s.local_total(),
            fallbacks: s.fallbacks,
            last_errors: s.last_errors,
        }
    }

    /// Counts once every attempt the worker accepted has ended on both
    /// sides (the worker's counters lag the hoster's by a probe).
    pub fn settled_counts(&self) -> Counts {
        self.wait();
        let mut last = self.counts();
        eventually("the worker's counters settle", || {
            let now = self.counts();
            let ended = now.worker_succeeded
                + now
                    .worker_failed
                    .as_object()
                    .map_or(0, |f| f.values().filter_map(Value::as_u64).sum());
            let settled = ended == now.worker_accepted && now == last;
            last = now;
            settled
        });
        last
    }

    /// The identity the worker stamps into the SSTs it writes.
    pub fn worker_identity(&self) -> String {
        worker_stat(&self.worker)["identity"]
            .as_str()
            .expect("identity")
            .to_owned()
    }

    /// Live SSTs of `cf`: (level, writer identity).
    pub fn live_ssts(&self, cf: &str) -> Vec<(i32, String)> {
        live_ssts(&self.hoster.db, &self.d.db)
            .into_iter()
            .filter(|s| s.cf == cf)
            .map(|s| (s.level, s.props.db_host_id))
            .collect()
    }

    /// Number of files at each level of `cf`, as RocksDB's `FilesPerLevel`
    /// would list them (without trailing zero levels).
    pub fn files_per_level(&self, cf: &str) -> String {
        let mut per = vec![0; 7];
        for (level, _) in self.live_ssts(cf) {
            per[level as usize] += 1;
        }
        while per.len() > 1 && per.last() == Some(&0) {
            per.pop();
        }
        per.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    }
}

/// `fixtures/scenario_plugin.c` built as a plugin object: the compaction
/// filters `farm.test.partial_delete` and `farm.test.slow_keep`.
pub fn scenario_plugin() -> &'static std::path::Path {
    static SO: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    SO.get_or_init(|| crate::plugins::compile_fixture_plugin("scenario_plugin.c"))
}

/// A worker environment with `plugins` loaded.
pub fn with_plugins(plugins: &[&std::path::Path]) -> Vec<(&'static str, String)> {
    let list: Vec<String> = plugins.iter().map(|p| p.display().to_string()).collect();
    vec![("PLUGINS", list.join(":"))]
}

/// Options whose compactions run the fixture filter `farm.test.slow_keep`
/// (10 ms per key on the worker; a plain keep-all on the hoster), so that
/// a remote attempt is still running when a test acts on it.
pub fn slow_options() -> Options {
    let mut o = current_options();
    o.set_disable_auto_compactions(true);
    o.set_compaction_filter(
        "farm.test.slow_keep",
        |_level, _key: &[u8], _value: &[u8]| rocksdb::compaction_filter::Decision::Keep,
    );
    o
}

/// A scenario with [`slow_options`] and a worker that has the filter.
pub fn slow_scenario(fault: Fault) -> Scenario {
    Scenario::start(
        slow_options(),
        &with_plugins(&[scenario_plugin()]),
        fault,
        // Probes answer at once (no held probe): the fault proxy must see
        // a `running` answer while the slow attempt still runs.
        serde_json::json!({"plugin_versions": {"farm.test.slow_keep": 1}, "probe_wait": 0}),
    )
}
