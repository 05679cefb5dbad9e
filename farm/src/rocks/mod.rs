//! The RocksDB bridge: every `unsafe` line of the farm lives below this module,
//! behind safe types.
//!
//! - [`service`]: the hoster side, a Rust [`service::CompactionService`]
//!   installed onto `rocksdb::Options` through RocksDB's C API.
//! - [`open_and_compact`]: the worker side, `DB::OpenAndCompact` with an
//!   override built from the job's own OPTIONS file.
//! - [`plugins`]: loading plugin objects and reading what they registered.
//! - [`options`]: DB options the `rocksdb` crate cannot read back.
//! - [`serialized`]: reading RocksDB's serialized compaction input and result,
//!   and rewriting the result's `output_path`.
//! - [`sst`]: an SST file's table properties and its checksum verification.
//! - [`ffi`]: the declarations of the C++ shim (`farm/cpp/farm_shim.cc`).

pub mod error;
mod ffi;
pub mod open_and_compact;
pub mod options;
pub mod plugins;
pub mod serialized;
pub mod service;
pub mod sst;
mod text;

pub use error::RocksError;
