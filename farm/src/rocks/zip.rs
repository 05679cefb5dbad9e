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
    fn farm_zip_register(
        transport: Option<TransportFn>,
        in_flight: u32,
        errptr: *mut *mut c_char,
    ) -> *const c_char;
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
///
/// # Safety
/// Called by the shim with live `params`, `out_size` and `out_type`, and
/// with `in_len` readable bytes at `input` and `*out_size` writable bytes at
/// `out` whenever those pointers are not NULL.
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
    // SAFETY: per this function's contract.
    unsafe { forward(&**transport, params, input, in_len, out, out_size, out_type) }
}

/// Hands one block to `transport`. Returns 1 with `*out_size` and
/// `*out_type` set when it compressed the block, 0 when the block must be
/// compressed in-process: also for a NULL pointer or an empty output buffer
/// (RocksDB passes a NULL buffer of size 0 when its size limit leaves no
/// room), and when the transport panics (a panic must not unwind into C++).
///
/// # Safety
/// As [`transport_trampoline`].
unsafe fn forward(
    transport: &dyn BlockTransport,
    params: *const ZipParams,
    input: *const c_char,
    in_len: usize,
    out: *mut c_char,
    out_size: *mut usize,
    out_type: *mut u8,
) -> c_int {
    if params.is_null() || out_size.is_null() || out_type.is_null() || out.is_null() {
        return 0;
    }
    if input.is_null() && in_len > 0 {
        return 0;
    }
    // SAFETY: `out_size` is live (checked non-NULL, per the contract).
    let capacity = unsafe { *out_size };
    if capacity == 0 {
        return 0;
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: non-NULL (checked above) and live per the contract; an
        // empty input is read as an empty slice without touching `input`.
        let (params, input, out) = unsafe {
            (
                &*params,
                if in_len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(input.cast::<u8>(), in_len)
                },
                std::slice::from_raw_parts_mut(out.cast::<u8>(), capacity),
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
pub fn register(
    transport: Option<Arc<dyn BlockTransport>>,
    in_flight: u32,
) -> Result<&'static str, RocksError> {
    let installed = match transport {
        Some(t) => {
            let _ = TRANSPORT.set(t);
            Some(transport_trampoline as TransportFn)
        }
        None => None,
    };
    let name = with_errptr("register the zip compression manager", |err| {
        // SAFETY: registers a factory and stores a function pointer to a
        // callback that lives for the process.
        unsafe { farm_zip_register(installed, in_flight, err) }
    })?;
    if name.is_null() {
        return Err(RocksError::Answer {
            operation: "register the zip compression manager",
            detail: "no name and no error".into(),
        });
    }
    // SAFETY: non-NULL: the manager's name, a static C string of the shim.
    let name = unsafe { CStr::from_ptr(name) };
    Ok(name
        .to_str()
        .expect("the manager's name is a static ASCII literal"))
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the blocks it is handed; "compresses" each to one byte.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl BlockTransport for Counting {
        fn compress(&self, _: &ZipParams, _: &[u8], out: &mut [u8]) -> Option<Compressed> {
            self.0.fetch_add(1, Ordering::SeqCst);
            out[0] = 0xAB;
            Some(Compressed { size: 1, kind: 7 })
        }
    }

    /// RocksDB passes a NULL output buffer of size 0 when its size limit
    /// leaves no room: the block goes to the in-process compressor and the
    /// transport never sees it.
    #[test]
    fn a_null_or_empty_output_buffer_never_reaches_the_transport() {
        let t = Counting::default();
        let params = ZipParams::default();
        let input = b"block";
        let (mut size, mut kind) = (0usize, 0u8);
        // SAFETY: live params and out-params; `out` is NULL with size 0.
        let r = unsafe {
            forward(
                &t,
                &params,
                input.as_ptr().cast(),
                input.len(),
                std::ptr::null_mut(),
                &mut size,
                &mut kind,
            )
        };
        assert_eq!((r, size, kind), (0, 0, 0));
        let mut out = [0u8; 16];
        // SAFETY: as above, with a live buffer announced as empty.
        let r = unsafe {
            forward(
                &t,
                &params,
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                &mut size,
                &mut kind,
            )
        };
        assert_eq!(r, 0);
        assert_eq!(t.0.load(Ordering::SeqCst), 0, "the transport saw no block");

        size = out.len();
        // SAFETY: live buffer of `size` bytes; an empty input may be NULL.
        let r = unsafe {
            forward(
                &t,
                &params,
                std::ptr::null(),
                0,
                out.as_mut_ptr().cast(),
                &mut size,
                &mut kind,
            )
        };
        assert_eq!((r, size, kind, out[0]), (1, 1, 7, 0xAB));
        assert_eq!(t.0.load(Ordering::SeqCst), 1);
    }

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
