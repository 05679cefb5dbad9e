//! # compaction-farm
//!
//! Runs a RocksDB database's compactions on worker daemons.
//!
//! ## Layout
//!
//! - [`rocks`]: the RocksDB bridge. The only `unsafe` code: the hoster-side
//!   `CompactionService` callbacks, the worker-side `OpenAndCompact`, and a
//!   small C++ shim (`cpp/farm_shim.cc`) for what RocksDB's C API lacks.
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
//! - [`workload`]: a reproducible write workload with an in-memory model
//!   (the demo and the end-to-end tests).
//!
//! The data-safety rule that shapes all of it: the hoster answers RocksDB
//! only with "installed" (after checking every output file) or "compact
//! locally". A failing farm costs CPU on the hoster, never data or writes.

pub mod etcd;
pub mod hoster;
pub mod protocol;
pub mod rocks;
pub mod worker;
pub mod workload;
