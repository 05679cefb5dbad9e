//! # zipserver
//!
//! The compression sidecar of compaction-farm: one process per worker host
//! that compresses the output blocks of every compaction child, with one
//! bounded set of compression threads (`num_threads`) and one memory
//! budget, so N children never oversubscribe the CPUs or the memory
//! (ToplingDB's ZipServer plays this role for its table builder).
//!
//! ## Layout
//!
//! - [`codec`]: the RocksDB side, in C++ (`cpp/zipserver.cc`): the
//!   `FarmZipServer` compression manager a child installs (it keeps the
//!   built-in `CompatibilityName()`, so SSTs stay plain RocksDB files) and
//!   the built-in compressor the server runs, so the bytes a child gets back
//!   are exactly what its own built-in compressor would have written.
//! - [`options`]: `ZIP_SERVER_OPTIONS`, civetweb style, parsed strictly.
//! - [`shm`]: the shared-memory ring a child and the server exchange blocks
//!   through (a `memfd` per child; futexes only when a side sleeps).
//! - [`frame`]: the framed protocol on the Unix socket: the handshake that
//!   hands a ring over, and whole blocks for what does not fit a ring slot.
//! - [`server`]: the zipserver process: rings and socket connections, the
//!   compression threads, the budget, `/stat` and `/metrics`.
//! - [`client`]: the child's transport: a block goes through the ring (or
//!   the socket), or is declined so RocksDB compresses it in-process.
//! - [`sidecar`]: a worker starts its zipserver, restarts it when it dies
//!   and stops it on shutdown.
//!
//! Failure modes: a zipserver that is down, slow (beyond `client_timeout`)
//! or over budget costs the children CPU (in-process compression, counted
//! as fallbacks), never a job or a byte of data. The SSTs are built-in
//! format either way.
//!
//! ## Where `unsafe` lives
//!
//! Every `unsafe` block carries a `// SAFETY:` note and every `unsafe fn`
//! spells out its contract (both enforced by the lints below).
//!
//! - [`codec`]: the FFI to the C++ shim. Every `extern "C"` function of the
//!   shim is `noexcept` and reports C++ exceptions through `errptr`; the
//!   callback handed to RocksDB catches every unwind, checks for NULL and
//!   empty buffers, and declines a block it cannot take.
//! - [`shm`]: `memfd`, `mmap`, futexes and descriptor passing; blocks in
//!   shared memory are read and written through raw pointers, never Rust
//!   references (the other process writes them too).
//! - [`server`]: pinning compression threads to CPUs, reading the rings.
//! - [`client`]: the child's end of a ring.
//! - [`sidecar`]: the `pre_exec` set-up of the zipserver process.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod client;
pub mod codec;
pub mod frame;
pub mod options;
pub mod server;
pub mod shm;
pub mod sidecar;
mod units;
