//! # compaction-farm
//!
//! Runs a RocksDB database's compactions on worker daemons.
//!
//! ## Layout
//!
//! - [`rocks`]: the RocksDB bridge, and all of the farm's FFI: the
//!   hoster-side `CompactionService` callbacks, the hoster's merge operator
//!   and compaction filter, the worker-side `OpenAndCompact`, plugin
//!   loading, and a small C++ shim (`cpp/`) for what RocksDB's C API
//!   lacks. Safe types in front of it.
//! - [`protocol`]: the worker's public HTTP contract: the job JSON, attempt
//!   identity and naming, and the answers of `/probe` and friends.
//! - [`worker`]: the `dcompact-worker` daemon: configuration, the HTTP
//!   server, the supervisor that admits and tracks attempts, and the attempt
//!   runner that calls `OpenAndCompact`.
//! - [`hoster`]: the client library a database process plugs into its
//!   `rocksdb::Options`: picks a worker, submits, probes, verifies the output
//!   and falls back to local compaction on any failure.
//!
//! - [`etcd`]: worker registration and discovery, and "attempt done"
//!   events, over etcd's JSON gateway.
//! - The compression sidecar is the `zipserver` crate; a worker starts and
//!   watches it (`worker::zip_link`), its children send blocks through the
//!   crate's client.
//! - [`tls`]: TLS client settings from PEM files (etcd, `https` workers).
//! - [`workload`]: a reproducible write workload with an in-memory model
//!   (the demo and the end-to-end tests).
//!
//! The data-safety rule that shapes all of it: the hoster answers RocksDB
//! only with "installed" (after checking every output file) or "compact
//! locally". A failing farm costs CPU on the hoster, never data or writes.
//!
//! The repository's `docs/` hold the rest: `PROTOCOL.md` (the worker's HTTP
//! contract), `ARCHITECTURE.md` (the parts and the life of a job),
//! `SECURITY.md` (the worker's threat model and its controls) and
//! `TOPLINGDB.md` (for users of ToplingDB's dcompact).
//!
//! ## Using the farm from an application
//!
//! [`hoster::enable`] plugs the farm into a database's `rocksdb::Options`
//! with ToplingDB's `DcompactEtcd` JSON params
//! ([`hoster::config::HosterConfig`] lists them); the returned
//! [`hoster::FarmService`] counts what ran where
//! ([`hoster::stats::StatsSnapshot`]). Merge operators and compaction
//! filters written with `farm-plugin-sdk` are installed on the hoster with
//! [`hoster::plugins`]; workers load the same logic from plugin objects.
//!
//! Here the only worker is an address where nothing listens, so every
//! compaction falls back to a local one, and the data is as it would be
//! without the farm:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use farm_plugin_counter::Counter;
//!
//! let dir = tempfile::tempdir()?; // the shared storage: the hoster root
//! let db_path = dir.path().join("db");
//! let mut opts = rocksdb::Options::default();
//! opts.create_if_missing(true);
//! // The merge operator adds little-endian u64s; a worker would run the
//! // same code from `libcounter.so` (`PLUGINS`).
//! farm::hoster::plugins::install_merge_operator(&mut opts, Counter)?;
//! let params = serde_json::json!({
//!     "http_workers": ["http://127.0.0.1:1"], // nothing listens here
//!     "hoster_root": dir.path(),
//!     "instance_name": "example",
//!     "http_timeout": 1,
//! });
//! let db_name = db_path.to_str().ok_or("temporary path is not UTF-8")?;
//! let farm = farm::hoster::enable(&mut opts, db_name, &params.to_string())?;
//! let db = rocksdb::DB::open(&opts, &db_path)?;
//!
//! // Two overlapping level-0 files, then a compaction of all of it.
//! for round in 1..=2u64 {
//!     for i in 0..1000u64 {
//!         db.merge(format!("key{i:04}"), round.to_le_bytes())?;
//!     }
//!     db.flush()?;
//! }
//! db.compact_range(None::<&[u8]>, None::<&[u8]>);
//! assert_eq!(db.get(b"key0042")?, Some(3u64.to_le_bytes().to_vec()));
//!
//! let stats = farm.stats();
//! println!("{stats:#?}");
//! assert_eq!(stats.remote_installed, 0);
//! assert!(stats.fallbacks["connection"] >= 1, "{stats:?}");
//! # Ok(()) }
//! ```
//!
//! ## Where `unsafe` lives
//!
//! Every `unsafe` block carries a `// SAFETY:` note and every `unsafe fn`
//! spells out its contract (both enforced by the lints below).
//!
//! - [`rocks`]: the FFI to RocksDB, the C++ shim and plugin objects. Every
//!   callback Rust hands to C catches unwinds, and every `extern "C"`
//!   function of the shim catches C++ exceptions.
//! - Process control, where `nix` has no safe call for it: the one
//!   `pre_exec` set-up of children (`worker::process::setup`: cgroup,
//!   process group, parent-death signal, resource limits, and `nice`, which
//!   `nix` lacks), and `pidfd_open` to
//!   wake a wait at a child's exit (`worker::process::exit_wait`), and a
//!   spare child writing its attempt's marker over its own in the environment
//!   the kernel shows (`worker::child::spare`).
//!   Signals, `waitpid`, `prctl`, `poll`, `umount2`, `fcntl`, `statvfs`,
//!   `getrusage` and `openat2` go through `nix`; `/proc` reads through
//!   `procfs`; plugins are loaded through `libloading`.
//! - The binaries: `sched_setaffinity` in `farm-bench`, `dlsym` through
//!   `libloading` in `plain-scan`, `sysconf` in `zip-bench`.
//! - Not in this crate: the `zipserver` crate keeps its own FFI (the
//!   `FarmZipServer` manager and the built-in compressor), its shared
//!   memory and futexes, under the same lints and rules.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod etcd;
pub mod hoster;
pub mod protocol;
pub mod rocks;
pub mod tls;
pub mod worker;
pub mod workload;

/// The build script's RocksDB pin, compiled here for its unit tests.
#[cfg(test)]
#[path = "../build/rocksdb_pin.rs"]
mod build_rocksdb_pin;
