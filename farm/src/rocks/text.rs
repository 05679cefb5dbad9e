//! Calling the shim and reading its answers: `malloc`ed C strings, errors
//! through `errptr`, and "key=value" lines with hex-encoded values.

use super::error::RocksError;
use super::ffi;
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;

/// Takes ownership of a `malloc`ed, NUL-terminated string from the shim.
///
/// # Safety
/// `p` is NULL or a string allocated with `malloc` that nothing else frees.
pub(super) unsafe fn take_c_string(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `p` is a live NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: `p` was allocated with malloc and is freed exactly once here.
    unsafe { ffi::farm_free(p.cast::<c_void>()) };
    Some(s)
}

/// Runs a shim call that reports failure through `errptr`, and turns a set
/// error into [`RocksError::Status`].
pub(super) fn with_errptr<T>(
    operation: &'static str,
    call: impl FnOnce(*mut *mut c_char) -> T,
) -> Result<T, RocksError> {
    let mut err: *mut c_char = std::ptr::null_mut();
    let value = call(&mut err);
    // SAFETY: the shim and RocksDB's C API set `err` to NULL or a malloc'ed
    // string owned by the caller.
    match unsafe { take_c_string(err) } {
        None => Ok(value),
        Some(message) => Err(RocksError::Status { operation, message }),
    }
}

/// Calls a shim function that answers a `malloc`ed string (or NULL and sets
/// `errptr`).
pub(super) fn call_text(
    operation: &'static str,
    call: impl FnOnce(*mut *mut c_char) -> *mut c_char,
) -> Result<String, RocksError> {
    let text = with_errptr(operation, call)?;
    // SAFETY: the shim returns NULL or a malloc'ed string owned by the caller.
    unsafe { take_c_string(text) }.ok_or(RocksError::Answer {
        operation,
        detail: "no answer".into(),
    })
}

/// Calls a shim function that answers "key=value" lines (or sets `errptr`).
pub(super) fn call_lines(
    operation: &'static str,
    call: impl FnOnce(*mut *mut c_char) -> *mut c_char,
) -> Result<Lines, RocksError> {
    let text = call_text(operation, call)?;
    Ok(Lines::parse(operation, &text))
}

pub(super) fn c_path(path: &Path, what: &'static str) -> Result<CString, RocksError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| RocksError::Nul { what })
}

pub(super) fn c_str(s: &str, what: &'static str) -> Result<CString, RocksError> {
    CString::new(s).map_err(|_| RocksError::Nul { what })
}

/// "key=value" lines as the shim writes them.
pub(super) struct Lines {
    operation: &'static str,
    pairs: Vec<(String, String)>,
}

impl Lines {
    pub(super) fn parse(operation: &'static str, text: &str) -> Self {
        let pairs = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Lines { operation, pairs }
    }

    fn missing(&self, key: &str) -> RocksError {
        RocksError::Answer {
            operation: self.operation,
            detail: format!("missing {key}"),
        }
    }

    pub(super) fn raw(&self, key: &str) -> Result<&str, RocksError> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| self.missing(key))
    }

    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number(&self, key: &str) -> Result<u64, RocksError> {
        let raw = self.raw(key)?;
        raw.parse().map_err(|_| RocksError::Answer {
            operation: self.operation,
            detail: format!("{key}={raw} is not a number"),
        })
    }

    pub(super) fn hex_string(&self, key: &str) -> Result<String, RocksError> {
        let bytes = self.hex(self.raw(key)?)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub(super) fn hex(&self, raw: &str) -> Result<Vec<u8>, RocksError> {
        decode_hex(raw).ok_or_else(|| RocksError::Answer {
            operation: self.operation,
            detail: format!("bad hex {raw:?}"),
        })
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_numbers_hex_and_repeats() {
        let l = Lines::parse("t", "a=1\nname=6162\nf=00\nf=ff\n");
        assert_eq!(l.number("a").unwrap(), 1);
        assert_eq!(l.hex_string("name").unwrap(), "ab");
        assert_eq!(l.all("f").collect::<Vec<_>>(), vec!["00", "ff"]);
        assert!(l.number("missing").is_err());
        assert!(l.hex("abc").is_err());
        assert!(l.hex("zz").is_err());
    }
}
