//! Block compression for the zipserver (`farm/cpp/farm_zip.cc`).
//!
//! - Worker side: [`register`] makes the `FarmZipServer` compression manager
//!   creatable by name (`compression_manager=FarmZipServer` in the override)
//!   and installs a [`BlockTransport`] that its compressor hands every block
//!   to. The manager keeps the built-in `CompatibilityName()`, so the SSTs
//!   are plain built-in SSTs. When the transport declines a block, the
//!   built-in compressor compresses it in-process.
//! - Zipserver side: [`BuiltinCompressor`], RocksDB's built-in compressor for
//!   the parameters a client sent, so the bytes returned are exactly what the
//!   client's own built-in compressor would have written.

use super::error::RocksError;
use super::text::with_errptr;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

/// What decides a built-in compressor's output: the compression type and
/// the `CompressionOptions` fields the built-in compressors read. Same
/// layout as `farm_zip_params` in the shim.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ZipParams {
    /// RocksDB's `CompressionType` value (1 Snappy, 4 LZ4, 7 ZSTD, ...).
    pub kind: u8,
    pub checksum: u8,
    pub level: i32,
    pub window_bits: i32,
    pub strategy: i32,
    pub max_dict_bytes: u32,
    pub zstd_max_train_bytes: u32,
    pub parallel_threads: u32,
    pub max_compressed_bytes_per_kb: u32,
}

/// The result of compressing one block, as RocksDB's
/// `Compressor::CompressBlock` gives it: with `kind` 0 (no compression),
/// `size` is 0 (bypassed) or 1 (rejected) and no bytes were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    pub size: usize,
    pub kind: u8,
}

/// Where a `FarmZipServer` compressor sends blocks.
pub trait BlockTransport: Send + Sync {
    /// Compresses `input` into `out` (whose length is the capacity), or
    /// returns `None` so that the block is compressed in-process.
    fn compress(&self, params: &ZipParams, input: &[u8], out: &mut [u8]) -> Option<Compressed>;
}

type TransportFn = unsafe extern "C" fn(
    params: *const ZipParams,
    input: *const c_char,
    in_len: usize,
    out: *mut c_char,
    out_size: *mut usize,
    out_type: *mut u8,
) -> c_int;

extern "C" {
    fn farm_zip_register(transport: Option<TransportFn>, in_flight: u32) -> *const c_char;
    fn farm_zip_blocks_seen() -> u64;
    fn farm_zip_compressor_new(params: *const ZipParams, errptr: *mut *mut c_char) -> *mut c_void;
    fn farm_zip_compress(
        handle: *mut c_void,
        input: *const c_char,
        in_len: usize,
        out: *mut c_char,
        out_size: *mut usize,
        out_type: *mut u8,
        errptr: *mut *mut c_char,
    ) -> c_int;
    fn farm_zip_compressor_free(handle: *mut c_void);
}

static TRANSPORT: OnceLock<Arc<dyn BlockTransport>> = OnceLock::new();

/// The callback the shim calls for every block.
unsafe extern "C" fn transport_trampoline(
    params: *const ZipParams,
    input: *const c_char,
    in_len: usize,
    out: *mut c_char,
    out_size: *mut usize,
    out_type: *mut u8,
) -> c_int {
    let Some(transport) = TRANSPORT.get() else {
        return 0;
    };
    // A panic must not unwind into C++: it becomes an in-process fallback.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the shim passes live pointers: `params`, `in_len` bytes at
        // `input`, `*out_size` writable bytes at `out`, and both out-params.
        let (params, input, out) = unsafe {
            (
                &*params,
                std::slice::from_raw_parts(input.cast::<u8>(), in_len),
                std::slice::from_raw_parts_mut(out.cast::<u8>(), *out_size),
            )
        };
        match transport.compress(params, input, out) {
            Some(c) if c.size <= out.len() => {
                // SAFETY: both out-params are live for the call.
                unsafe {
                    *out_size = c.size;
                    *out_type = c.kind;
                }
                1
            }
            _ => 0,
        }
    }))
    .unwrap_or(0)
}

/// Registers `FarmZipServer` in RocksDB's default object library and sends
/// its blocks to `transport` (`None`: every block compressed in-process).
/// With `in_flight` > 1 the manager's compressor asks RocksDB for that many
/// parallel compression threads per table builder, so that many blocks of
/// one compaction can be at the zipserver at once. The transport of a
/// process is set once; later calls keep the first. Returns the manager's
/// name, the value for `compression_manager`.
pub fn register(transport: Option<Arc<dyn BlockTransport>>, in_flight: u32) -> &'static str {
    let installed = match transport {
        Some(t) => {
            let _ = TRANSPORT.set(t);
            Some(transport_trampoline as TransportFn)
        }
        None => None,
    };
    // SAFETY: registers a factory and stores a function pointer; the
    // returned name is a static C string in the shim.
    let name = unsafe { CStr::from_ptr(farm_zip_register(installed, in_flight)) };
    name.to_str()
        .expect("the manager's name is a static ASCII literal")
}

/// Blocks that reached a `FarmZipServer` compressor in this process,
/// remote or not: proof that RocksDB really used the manager.
pub fn blocks_seen() -> u64 {
    // SAFETY: reads an atomic counter.
    unsafe { farm_zip_blocks_seen() }
}

/// RocksDB's built-in compressor for one set of [`ZipParams`], with its
/// working area. Used by one thread at a time.
pub struct BuiltinCompressor {
    raw: NonNull<c_void>,
}

// SAFETY: the compressor and its working area have no thread affinity; the
// type is not Sync, so one thread uses it at a time.
unsafe impl Send for BuiltinCompressor {}

impl BuiltinCompressor {
    /// `Ok(None)` when the parameters mean "no compression" (the client
    /// never sends such blocks).
    pub fn new(params: &ZipParams) -> Result<Option<Self>, RocksError> {
        let raw = with_errptr("create built-in compressor", |err| {
            // SAFETY: `params` is a live struct of the shim's layout.
            unsafe { farm_zip_compressor_new(params, err) }
        })?;
        Ok(NonNull::new(raw).map(|raw| BuiltinCompressor { raw }))
    }

    /// Compresses `input` into `out` (its length is the capacity).
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<Compressed, RocksError> {
        let mut size = out.len();
        let mut kind = 0u8;
        let ok = with_errptr("compress block", |err| {
            // SAFETY: `raw` is live and used by this thread only; `input` and
            // `out` are live slices of the lengths passed.
            unsafe {
                farm_zip_compress(
                    self.raw.as_ptr(),
                    input.as_ptr().cast(),
                    input.len(),
                    out.as_mut_ptr().cast(),
                    &mut size,
                    &mut kind,
                    err,
                )
            }
        })?;
        if ok != 1 || size > out.len() {
            return Err(RocksError::Answer {
                operation: "compress block",
                detail: format!("no result (ok={ok}, size={size})"),
            });
        }
        Ok(Compressed { size, kind })
    }
}

impl Drop for BuiltinCompressor {
    fn drop(&mut self) {
        // SAFETY: created by farm_zip_compressor_new, freed once.
        unsafe { farm_zip_compressor_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_compressor_round_trips_through_rocksdb_format() {
        let params = ZipParams {
            kind: 1, // Snappy
            level: 32767,
            window_bits: -14,
            max_compressed_bytes_per_kb: 1024 * 7 / 8,
            ..ZipParams::default()
        };
        let mut c = BuiltinCompressor::new(&params).unwrap().expect("snappy");
        let input = b"abcdefgh".repeat(512);
        let mut out = vec![0u8; input.len()];
        let r = c.compress(&input, &mut out).unwrap();
        assert_eq!(r.kind, 1);
        assert!(r.size > 0 && r.size < input.len() / 4, "{r:?}");
        // Incompressible data is rejected, as RocksDB's compressor does.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let r = c.compress(&noise, &mut out).unwrap();
        assert_eq!(r.kind, 0);
        let none = ZipParams {
            max_compressed_bytes_per_kb: 0,
            ..params
        };
        assert!(BuiltinCompressor::new(&none).unwrap().is_none());
    }
}
