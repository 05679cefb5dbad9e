//! What a call into the shim can fail with, and the `errptr` convention
//! every shim function reports failure through (a malloc'ed message the
//! caller reads and frees; `farm/cpp/farm_guard.h`).

use std::ffi::{c_char, c_void, CStr};

/// A failure reported by the shim or RocksDB.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// RocksDB (or the shim, catching a C++ exception) said why.
    #[error("rocksdb: {operation}: {message}")]
    Status {
        operation: &'static str,
        message: String,
    },
    /// The compressor answered nothing usable.
    #[error("{operation}: no result (size {size} for capacity {capacity})")]
    NoResult {
        operation: &'static str,
        size: usize,
        capacity: usize,
    },
    /// The shim returned neither a value nor an error.
    #[error("{operation}: no answer and no error")]
    NoAnswer { operation: &'static str },
}

/// Runs a shim call that reports failure through `errptr`.
pub(super) fn with_errptr<T>(
    operation: &'static str,
    call: impl FnOnce(*mut *mut c_char) -> T,
) -> Result<T, CodecError> {
    let mut err: *mut c_char = std::ptr::null_mut();
    let value = call(&mut err);
    if err.is_null() {
        return Ok(value);
    }
    // SAFETY: the shim sets `err` to a malloc'ed NUL-terminated string that
    // the caller owns; it is read once and freed once.
    let message = unsafe {
        let m = CStr::from_ptr(err).to_string_lossy().into_owned();
        libc::free(err.cast::<c_void>());
        m
    };
    Err(CodecError::Status { operation, message })
}
