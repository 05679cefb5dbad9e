//! The hoster client: what a database process plugs into its
//! `rocksdb::Options` so that its compactions run on the farm.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut opts = rocksdb::Options::default();
//! opts.create_if_missing(true);
//! let params = r#"{"http_workers": ["http://127.0.0.1:8080"],
//!                  "hoster_root": "/data", "instance_name": "app1"}"#;
//! let farm = farm::hoster::enable(&mut opts, "/data/db", params)?;
//! let db = rocksdb::DB::open(&opts, "/data/db")?;
//! # let _ = (farm, db); Ok(()) }
//! ```
//!
//! Life of a compaction: `schedule` picks a worker (round robin from a random
//! start, skipping workers that failed recently), POSTs the job and retries
//! other workers up to `http_max_retry`; `wait` probes until the attempt is
//! done, checks every output file (present, exact size, block checksums),
//! rewrites `output_path` into the hoster's path space and answers success.
//! Any failure on the way answers "compact locally" and is counted by reason
//! ([`stats::FallbackReason`]). `on_installation` removes the attempt's
//! output directory.
//!
//! - [`attempt`]: one submitted attempt, owned by one value that releases
//!   its output directory, numbering and in-flight place when dropped.
//! - [`discovery`]: workers registered in etcd join the rotation.
//! - [`completions`]: etcd's "attempt done" events wake the waits.
//! - [`config`]: ToplingDB's `DcompactEtcd` JSON params.
//! - [`workers`]: the worker list, selection and backoff.
//! - [`http`]: the worker protocol over blocking HTTP.
//! - [`verify`]: the output check that makes "success" a safe answer.
//! - [`plausible`]: the result as a whole against the inputs the hoster
//!   measured (duplicate names, totals, sizes, key ranges).
//! - [`plugins`]: installs plugin logic (`farm-plugin-sdk` types) on the
//!   hoster, and remembers the versions sent with each job.
//! - [`remote`]: `storage: "http"`: per-job snapshots, capabilities and
//!   the file endpoint workers read them from.
//! - [`speed`]: the learned compaction speed behind estimates and timeouts.
//! - [`metrics`]: the same counters on a Prometheus registry.
//! - [`stats`]: counters of remote and local compactions.
//! - [`service`]: the `CompactionService` that ties them together.
//! - [`tuning`]: the DB options enabling the farm raises (how many
//!   compactions may run at once).

pub mod attempt;
pub mod completions;
pub mod config;
pub mod discovery;
pub mod http;
pub mod metrics;
pub mod plausible;
pub mod plugins;
pub mod remote;
pub mod service;
pub mod speed;
pub mod stats;
pub mod tuning;
pub mod verify;
pub mod workers;

pub use service::{enable, FarmService, HosterError};
