//! Block compression through RocksDB (`cpp/zipserver.cc`).
//!
//! - [`params`]: what decides a built-in compressor's output, and a result.
//! - [`manager`]: client side: the `FarmZipServer` compression manager and
//!   the [`manager::BlockTransport`] its compressor hands every block to.
//! - [`builtin`]: server side: RocksDB's built-in compressor for the
//!   parameters a client sent.
//! - [`error`]: what a shim call fails with, and the `errptr` convention.
//! - `ffi`: the shim's declarations; the only `unsafe` calls into C++.
//!
//! Both edges are guarded: every `extern "C"` function of the shim is
//! `noexcept` and catches every C++ exception, and the callback Rust hands
//! to C++ ([`manager`]'s trampoline) catches every unwind and declines the
//! block instead, so RocksDB compresses it in-process.

pub mod builtin;
pub mod error;
mod ffi;
pub mod manager;
pub mod params;

pub use builtin::BuiltinCompressor;
pub use error::CodecError;
pub use manager::{blocks_seen, register, BlockTransport};
pub use params::{Compressed, ZipParams};
