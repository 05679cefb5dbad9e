//! The zipserver: one process per worker host that compresses the output
//! blocks of every compaction child, with one thread pool (`num_threads`)
//! and one memory budget, so N children never oversubscribe the CPUs or the
//! memory (ToplingDB's ZipServer plays this role for its table builder).
//!
//! - [`options`]: `ZIP_SERVER_OPTIONS`, civetweb style, parsed strictly.
//! - [`frame`]: the framed protocol on the Unix socket.
//! - [`server`]: connection threads, the budget, the compression threads.
//! - [`budget`]: the memory budget requests wait on.
//! - [`stats`]: counters as Prometheus metrics, read back for `/stat`.
//! - [`http`]: `/stat` and `/metrics` on `listening_ports`.
//! - [`client`]: the child's transport: send a block, or decline so RocksDB
//!   compresses it in-process.
//! - [`sidecar`]: the worker starts its zipserver, restarts it when it dies
//!   and stops it on shutdown.
//!
//! Failure modes: a zipserver that is down, slow (beyond `client_timeout`)
//! or over budget costs the children CPU (in-process compression, counted
//! as fallbacks), never a job or a byte of data. The SSTs are built-in
//! format either way (`rocks::zip`).

pub mod budget;
pub mod client;
pub mod frame;
pub mod http;
pub mod options;
pub mod server;
pub mod sidecar;
pub mod stats;
