//! The C ABI of `plugins/include/farm_plugin.h`, version 1.

use std::ffi::{c_char, c_int, c_void};

pub const ABI_VERSION: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Bytes {
    pub data: *const c_char,
    pub len: usize,
}

impl Bytes {
    /// # Safety
    /// `data` points to `len` readable bytes for the lifetime `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: per the caller.
        unsafe { std::slice::from_raw_parts(self.data.cast::<u8>(), self.len) }
    }
}

#[repr(C)]
pub struct Out {
    pub ctx: *mut c_void,
    pub set: unsafe extern "C" fn(ctx: *mut c_void, data: *const c_char, len: usize),
}

impl Out {
    /// # Safety
    /// `self` is the `farm_out` the worker passed to this call.
    pub unsafe fn set(&self, bytes: &[u8]) {
        // SAFETY: per the caller; the worker copies the bytes.
        unsafe { (self.set)(self.ctx, bytes.as_ptr().cast(), bytes.len()) }
    }
}

pub type FullMergeFn =
    unsafe extern "C" fn(*mut c_void, Bytes, *const Bytes, *const Bytes, usize, Out) -> c_int;
pub type PartialMergeFn = unsafe extern "C" fn(*mut c_void, Bytes, Bytes, Bytes, Out) -> c_int;
pub type FilterFn = unsafe extern "C" fn(*mut c_void, c_int, Bytes, Bytes, Out) -> c_int;

#[repr(C)]
pub struct MergeOperatorV1 {
    pub name: *const c_char,
    pub version: u32,
    pub state: *mut c_void,
    pub full_merge: FullMergeFn,
    pub partial_merge: Option<PartialMergeFn>,
}

pub const FILTER_KEEP: c_int = 0;
pub const FILTER_REMOVE: c_int = 1;
pub const FILTER_CHANGE: c_int = 2;

#[repr(C)]
pub struct CompactionFilterV1 {
    pub name: *const c_char,
    pub version: u32,
    pub state: *mut c_void,
    pub filter: FilterFn,
}

#[repr(C)]
pub struct RegistryV1 {
    pub abi_version: u32,
    pub add_merge_operator: unsafe extern "C" fn(*const MergeOperatorV1) -> c_int,
    pub add_compaction_filter: unsafe extern "C" fn(*const CompactionFilterV1) -> c_int,
}
