//! Block compression through RocksDB (`cpp/zipserver.cc`).
//!
//! - [`params`]: what decides a built-in compressor's output, and a result.
//! - [`manager`]: client side: the `FarmZipServer` compression manager and
//!   the [`manager::BlockTransport`] its compressor hands every block to.
//! - [`builtin`]: server side: RocksDB's built-in compressor for the
//!   parameters a client sent.
//! - `ffi`: the shim's declarations; the only `unsafe` calls into C++.

pub mod builtin;
mod ffi;
pub mod manager;
pub mod params;

pub use builtin::{BuiltinCompressor, CodecError};
pub use manager::{blocks_seen, register, BlockTransport};
pub use params::{Compressed, ZipParams};
