//! Client side: [`register`] makes the `FarmZipServer` compression manager
//! creatable by name (`compression_manager=FarmZipServer` in a compaction's
//! override) and installs a [`BlockTransport`] that its compressor hands
//! every block to. The manager keeps the built-in `CompatibilityName()`, so
//! the SSTs are plain built-in SSTs. When the transport declines a block,
//! the built-in compressor compresses it in-process.

use super::error::{with_errptr, CodecError};
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
) -> Result<&'static str, CodecError> {
    const OPERATION: &str = "register the zip compression manager";
    let installed = match transport {
        Some(t) => {
            let _ = TRANSPORT.set(t);
            Some(transport_trampoline as TransportFn)
        }
        None => None,
    };
    let name = with_errptr(OPERATION, |err| {
        // SAFETY: registers a factory and stores a function pointer to a
        // callback that lives for the process.
        unsafe { ffi::zipserver_register(installed, in_flight, err) }
    })?;
    if name.is_null() {
        return Err(CodecError::NoAnswer {
            operation: OPERATION,
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
    unsafe { ffi::zipserver_blocks_seen() }
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

    /// Panics on every block.
    struct Panicking;

    impl BlockTransport for Panicking {
        fn compress(&self, _: &ZipParams, _: &[u8], _: &mut [u8]) -> Option<Compressed> {
            panic!("a transport that fails")
        }
    }

    /// Calls [`forward`] with live params and out-params.
    fn call(
        t: &dyn BlockTransport,
        input: Option<&[u8]>,
        out: &mut [u8],
        size: usize,
    ) -> (c_int, usize, u8) {
        let params = ZipParams::default();
        let (mut size, mut kind) = (size, 0u8);
        let (ptr, len) = input.map_or((std::ptr::null(), 0), |i| (i.as_ptr(), i.len()));
        let out_ptr = if out.is_empty() {
            std::ptr::null_mut()
        } else {
            out.as_mut_ptr()
        };
        // SAFETY: live params and out-params; `len` bytes at `ptr`; `out`
        // is NULL or a live buffer of at least `size` bytes (the callers
        // pass a size no larger than `out`).
        let r = unsafe {
            forward(
                t,
                &params,
                ptr.cast(),
                len,
                out_ptr.cast(),
                &mut size,
                &mut kind,
            )
        };
        (r, size, kind)
    }

    /// RocksDB passes a NULL output buffer of size 0 when its size limit
    /// leaves no room: the block goes to the in-process compressor and the
    /// transport never sees it.
    #[test]
    fn a_null_or_empty_output_buffer_never_reaches_the_transport() {
        let t = Counting::default();
        let input = b"block";
        assert_eq!(call(&t, Some(input), &mut [], 0), (0, 0, 0));
        let mut out = [0u8; 16];
        assert_eq!(call(&t, Some(input), &mut out, 0).0, 0);
        assert_eq!(t.0.load(Ordering::SeqCst), 0, "the transport saw no block");

        // An empty input may come as NULL.
        assert_eq!(call(&t, None, &mut out, 16), (1, 1, 7));
        assert_eq!(out[0], 0xAB);
        assert_eq!(t.0.load(Ordering::SeqCst), 1);
    }

    /// A panicking transport declines the block instead of unwinding into
    /// C++.
    #[test]
    fn a_panicking_transport_declines_the_block() {
        let mut out = [0u8; 16];
        assert_eq!(call(&Panicking, Some(b"block"), &mut out, 16), (0, 16, 0));
    }
}
