//! The zipserver process: children hand it rings (or send whole blocks on
//! the socket); `num_threads` compression threads serve the rings, one
//! thread per socket connection reads blocks; nothing compresses without
//! one of `num_threads` permits, and nothing is held beyond the memory
//! budget.
//!
//! - [`service`]: what every thread shares.
//! - [`socket`]: accepting children, the ring handshake, blocks on sockets.
//! - [`rings`]: the rings of connected children.
//! - [`ring_threads`]: the compression threads that serve the rings.
//! - [`lanes`]: which CPU each compression thread is pinned to.
//! - [`permits`]: the `num_threads` bound.
//! - [`budget`]: the memory budget.
//! - [`compressors`]: RocksDB's built-in compressors, one per parameters.
//! - [`stats`]: counters as Prometheus metrics, read back for `/stat`.
//! - [`http`]: `/stat` and `/metrics` on `listening_ports`.

pub mod budget;
pub mod compressors;
pub mod http;
pub mod lanes;
pub mod permits;
pub mod ring_threads;
pub mod rings;
pub mod service;
pub mod socket;
pub mod stats;
