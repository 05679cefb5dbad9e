//! A `memfd` mapped shared and read-write: created and sealed by its owner,
//! or received from the other side and checked before it is mapped.
//!
//! Nothing here hands out Rust references to the mapped bytes, which the
//! other process may change at any time: words are read and written as
//! atomics ([`SharedMap::word`]), block bytes through raw pointers
//! ([`SharedMap::at`]) by code that copies them or passes them to C++.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

/// Why a received `memfd` is not mapped.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{what} failed: {source}")]
    Os {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("shared memory of {actual} bytes, expected at least {expected}")]
    TooSmall { actual: u64, expected: usize },
    #[error("shared memory is not sealed against shrinking")]
    NotSealed,
}

fn os(what: &'static str) -> MapError {
    MapError::Os {
        what,
        source: io::Error::last_os_error(),
    }
}

/// A shared, read-write mapping of `len` bytes, unmapped when dropped.
pub struct SharedMap {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; every access goes through atomics
// or raw-pointer copies whose callers follow the ring's ownership protocol.
unsafe impl Send for SharedMap {}
// SAFETY: as above; `&SharedMap` gives no reference into the bytes.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// A new zero-filled `memfd` of `len` bytes named `name`, sealed so its
    /// size can never change, and its mapping.
    pub fn create(name: &str, len: usize) -> Result<(OwnedFd, SharedMap), MapError> {
        let cname = std::ffi::CString::new(name).unwrap_or_default();
        // SAFETY: memfd_create with a NUL-terminated name.
        let raw = unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if raw < 0 {
            return Err(os("memfd_create"));
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain calls on our own descriptor.
        unsafe {
            if libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) != 0 {
                return Err(os("ftruncate"));
            }
            let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
            if libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) != 0 {
                return Err(os("sealing"));
            }
        }
        let map = Self::map(&fd, len)?;
        Ok((fd, map))
    }

    /// Maps a `memfd` received from another process, after checking that
    /// it holds at least `len` bytes and can never shrink (a shrunk file
    /// would make this process fault on its mapping).
    pub fn receive(fd: &OwnedFd, len: usize) -> Result<SharedMap, MapError> {
        // SAFETY: F_GET_SEALS on a descriptor we hold.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & libc::F_SEAL_SHRINK == 0 {
            return Err(MapError::NotSealed);
        }
        // SAFETY: fstat into a zeroed struct we own.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
                return Err(os("fstat"));
            }
            st.st_size as u64
        };
        if size < len as u64 {
            return Err(MapError::TooSmall {
                actual: size,
                expected: len,
            });
        }
        Self::map(fd, len)
    }

    fn map(fd: &OwnedFd, len: usize) -> Result<SharedMap, MapError> {
        // SAFETY: a fresh shared mapping of a descriptor we hold; the kernel
        // picks the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os("mmap"));
        }
        Ok(SharedMap {
            base: NonNull::new(p.cast::<u8>()).ok_or_else(|| os("mmap"))?,
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 32-bit word at `offset`.
    ///
    /// # Panics
    /// When `offset` is unaligned or beyond the mapping: offsets come from
    /// [`super::layout`], never from the other process.
    pub fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "word {offset} of {}",
            self.len
        );
        // SAFETY: in bounds and aligned (checked; the base is page-aligned);
        // AtomicU32 may be shared and changed by other processes.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// A pointer to `len` bytes at `offset`, for raw copies.
    ///
    /// # Panics
    /// When the range leaves the mapping.
    pub fn at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "{len} bytes at {offset} of {}",
            self.len
        );
        // SAFETY: in bounds (checked).
        unsafe { self.base.as_ptr().add(offset) }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once; no reference into it
        // outlives `self` (words borrow `self`).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_received_map_shares_the_bytes_and_must_be_sealed() {
        let (fd, a) = SharedMap::create("t", 8192).unwrap();
        let b = SharedMap::receive(&fd, 8192).unwrap();
        a.word(4096).store(7, Ordering::Release);
        assert_eq!(b.word(4096).load(Ordering::Acquire), 7);
        assert!(matches!(
            SharedMap::receive(&fd, 8193),
            Err(MapError::TooSmall { .. })
        ));
        // An unsealed memfd is refused.
        // SAFETY: memfd_create with a static name.
        let raw = unsafe { libc::memfd_create(c"u".as_ptr(), libc::MFD_CLOEXEC) };
        // SAFETY: a new descriptor we own.
        let unsealed = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on our descriptor.
        assert_eq!(unsafe { libc::ftruncate(raw, 8192) }, 0);
        assert!(matches!(
            SharedMap::receive(&unsealed, 4096),
            Err(MapError::NotSealed)
        ));
    }
}
