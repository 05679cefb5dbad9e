//! Declarations of the shim's functions (`cpp/zipserver.cc`). Every one is
//! `noexcept` on the C++ side and reports failure through `errptr`, a
//! malloc'ed message the caller frees: no C++ exception reaches Rust.

use super::params::ZipParams;
use std::ffi::{c_char, c_int, c_void};

// The shim calls into RocksDB, whose static library comes with
// librocksdb-sys: name the crate so that it is linked even though no Rust
// code here calls it.
use librocksdb_sys as _;

/// The callback the client's compressor calls for every block: returns 1
/// with `*out_size` and `*out_type` set as `Compressor::CompressBlock`
/// would, or 0 when the block must be compressed in-process.
pub type TransportFn = unsafe extern "C" fn(
    params: *const ZipParams,
    input: *const c_char,
    in_len: usize,
    out: *mut c_char,
    out_size: *mut usize,
    out_type: *mut u8,
) -> c_int;

extern "C" {
    pub fn zipserver_register(
        transport: Option<TransportFn>,
        in_flight: u32,
        errptr: *mut *mut c_char,
    ) -> *const c_char;
    pub fn zipserver_blocks_seen() -> u64;
    pub fn zipserver_compressor_new(
        params: *const ZipParams,
        errptr: *mut *mut c_char,
    ) -> *mut c_void;
    pub fn zipserver_compress(
        handle: *mut c_void,
        input: *const c_char,
        in_len: usize,
        out: *mut c_char,
        out_size: *mut usize,
        out_type: *mut u8,
        errptr: *mut *mut c_char,
    ) -> c_int;
    pub fn zipserver_compressor_free(handle: *mut c_void);
}
