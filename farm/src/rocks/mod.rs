//! The RocksDB bridge: every FFI call of the farm (to RocksDB, to the C++
//! shim in `farm/cpp/`, to plugin objects) lives below this module, behind
//! safe types. The process-control `libc` calls of the worker are the only
//! other `unsafe` code (see the crate's docs).
//!
//! Two rules hold at every edge: a callback Rust hands to C catches every
//! unwind and answers something RocksDB can live with, and every `extern
//! "C"` function of the shim catches every C++ exception and reports it
//! through `errptr` (`cpp/farm_guard.h`).
//!
//! - [`service`]: the hoster side, a Rust [`service::CompactionService`]
//!   installed onto `rocksdb::Options` through RocksDB's C API.
//! - [`open_and_compact`]: the worker side, `DB::OpenAndCompact` with an
//!   override built from the job's own OPTIONS file.
//! - [`open_race`]: which failures of `OpenAndCompact` are a secondary
//!   open that lost a race with its primary.
//! - [`merge`], [`filter`]: the hoster's merge operator and compaction
//!   filter (the plugin SDK's types on `rocksdb::Options`).
//! - [`plugins`]: loading plugin objects and reading what they registered.
//! - [`remote_fs`]: the worker's RocksDB file system for a DB read over
//!   HTTP (`cpp/farm_remote_fs.cc`).
//! - [`options`]: DB options the `rocksdb` crate cannot read back.
//! - [`serialized`]: reading RocksDB's serialized compaction input and result,
//!   and rewriting the result's `output_path`.
//! - [`sst`]: an SST file's table properties and its checksum verification.
//! - [`file_checksum`]: the whole-file CRC32C every output carries, as the
//!   worker's RocksDB writes it and the hoster reads it back.
//! - `ffi`: the declarations of the C++ shim (`farm/cpp/farm_shim.cc`).

pub mod error;
mod ffi;
pub mod file_checksum;
pub mod filter;
pub mod merge;
pub mod open_and_compact;
pub mod open_race;
pub mod options;
pub mod plugins;
pub mod remote_fs;
pub mod serialized;
pub mod service;
pub mod sst;
mod text;

pub use error::RocksError;
