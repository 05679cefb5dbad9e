//! # compaction-farm
//!
//! Runs a RocksDB database's compactions on worker daemons.
//!
//! ## Layout
//!
//! - [`rocks`]: the RocksDB bridge, and all of the farm's FFI: the
//!   hoster-side `CompactionService` callbacks, the hoster's merge operator
//!   and compaction filter, the worker-side `OpenAndCompact`, plugin
//!   loading, the zip compression manager, and a small C++ shim (`cpp/`)
//!   for what RocksDB's C API lacks. Safe types in front of it.
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
//! - [`zipserver`]: the compression sidecar: one process per worker host
//!   compresses the output blocks of every compaction child.
//! - [`workload`]: a reproducible write workload with an in-memory model
//!   (the demo and the end-to-end tests).
//!
//! The data-safety rule that shapes all of it: the hoster answers RocksDB
//! only with "installed" (after checking every output file) or "compact
//! locally". A failing farm costs CPU on the hoster, never data or writes.
//!
//! ## Where `unsafe` lives
//!
//! Every `unsafe` block carries a `// SAFETY:` note and every `unsafe fn`
//! spells out its contract (both enforced by the lints below).
//!
//! - [`rocks`]: the FFI to RocksDB, the C++ shim and plugin objects. Every
//!   callback Rust hands to C catches unwinds, and every `extern "C"`
//!   function of the shim catches C++ exceptions.
//! - Process control, in [`worker`] and [`zipserver`], as direct `libc`
//!   calls: `pre_exec` set-up of children (process group, parent-death
//!   signal, resource limits), signals and `waitpid` to supervise them,
//!   `umount2` and `fcntl` for mounts, `statvfs` for the free-space guard,
//!   `sigwait` in the attempt child.
//! - The binaries: `prctl(PR_SET_CHILD_SUBREAPER)` in `dcompact-worker`,
//!   `sysconf` in `zip-bench`.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod etcd;
pub mod hoster;
pub mod protocol;
pub mod rocks;
pub mod worker;
pub mod workload;
pub mod zipserver;

/// The build script's RocksDB pin, compiled here for its unit tests.
#[cfg(test)]
#[path = "../build/rocksdb_pin.rs"]
mod build_rocksdb_pin;
