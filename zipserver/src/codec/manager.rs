//! Client side: [`register`] makes the `FarmZipServer` compression manager
//! creatable by name (`compression_manager=FarmZipServer` in a compaction's
//! override) and installs a [`BlockTransport`] that its compressor hands
//! every block to. The manager keeps the built-in `CompatibilityName()`, so
//! the SSTs are plain built-in SSTs. When the transport declines a block,
//! the built-in compressor compresses it in-process.

use super::ffi::{self, TransportFn};
use super::params::{Compressed, ZipParams};
use std::ffi::{c_char, c_int, CStr};
use std::sync::{Arc, OnceLock};

/// Where a `FarmZipServer` compressor sends blocks.
pub trait BlockTransport: Send + Sync {
    /// Compresses `input` into `out` (whose length is the capacity), or
    /// returns `None` so that the block is compressed in-process.
    fn compress(&self, params: &ZipParams, input: &[u8], out: &mut [u8]) -> Option<Compressed>;
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
    let name = unsafe { CStr::from_ptr(ffi::zipserver_register(installed, in_flight)) };
    name.to_str()
        .expect("the manager's name is a static ASCII literal")
}

/// Blocks that reached a `FarmZipServer` compressor in this process,
/// remote or not: proof that RocksDB really used the manager.
pub fn blocks_seen() -> u64 {
    // SAFETY: reads an atomic counter.
    unsafe { ffi::zipserver_blocks_seen() }
}
