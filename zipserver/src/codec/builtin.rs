//! Server side: RocksDB's built-in compressor for the [`ZipParams`] a
//! client sent, with its working area, so the bytes returned are exactly
//! what the client's own built-in compressor would have written.

use super::error::{with_errptr, CodecError};
use super::ffi;
use super::params::{Compressed, ZipParams};
use std::ffi::c_void;
use std::ptr::NonNull;

/// RocksDB's built-in compressor for one set of [`ZipParams`], with its
/// working area. Used by one thread at a time.
pub struct BuiltinCompressor {
    raw: NonNull<c_void>,
}

// SAFETY: the compressor and its working area have no thread affinity; the
// type is not Sync, so one thread uses it at a time.
unsafe impl Send for BuiltinCompressor {}

impl BuiltinCompressor {
    /// `Ok(None)` when the parameters mean "no compression" (a client never
    /// sends such blocks).
    pub fn new(params: &ZipParams) -> Result<Option<Self>, CodecError> {
        let raw = with_errptr("create built-in compressor", |err| {
            // SAFETY: `params` is a live struct of the shim's layout.
            unsafe { ffi::zipserver_compressor_new(params, err) }
        })?;
        Ok(NonNull::new(raw).map(|raw| BuiltinCompressor { raw }))
    }

    /// Compresses `input` into `out` (its length is the capacity).
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Result<Compressed, CodecError> {
        // SAFETY: both slices are live for the call, of the lengths passed.
        unsafe { self.compress_raw(input.as_ptr(), input.len(), out.as_mut_ptr(), out.len()) }
    }

    /// Compresses `in_len` bytes at `input` into at most `capacity` bytes at
    /// `out`: for blocks that live in memory shared with another process,
    /// which Rust must not hold references to.
    ///
    /// # Safety
    /// `input..input+in_len` is readable and `out..out+capacity` writable
    /// for the duration of the call, and the two do not overlap.
    pub unsafe fn compress_raw(
        &mut self,
        input: *const u8,
        in_len: usize,
        out: *mut u8,
        capacity: usize,
    ) -> Result<Compressed, CodecError> {
        let mut size = capacity;
        let mut kind = 0u8;
        let ok = with_errptr("compress block", |err| {
            // SAFETY: `raw` is live and used by this thread only; the caller
            // guarantees both buffers.
            unsafe {
                ffi::zipserver_compress(
                    self.raw.as_ptr(),
                    input.cast(),
                    in_len,
                    out.cast(),
                    &mut size,
                    &mut kind,
                    err,
                )
            }
        })?;
        if ok != 1 || size > capacity {
            return Err(CodecError::NoResult {
                operation: "compress block",
                size,
                capacity,
            });
        }
        Ok(Compressed { size, kind })
    }
}

impl Drop for BuiltinCompressor {
    fn drop(&mut self) {
        // SAFETY: created by zipserver_compressor_new, freed once.
        unsafe { ffi::zipserver_compressor_free(self.raw.as_ptr()) }
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
