//! Declarations of the C++ shim, `farm/cpp/farm_shim.cc`. Each function reports
//! failure through `errptr`: a `malloc`ed message that the caller frees with
//! [`farm_free`], the convention of RocksDB's own C API.

use librocksdb_sys::rocksdb_compaction_service_options_override_t;
use std::ffi::{c_char, c_int, c_void};

extern "C" {
    pub fn farm_free(p: *mut c_void);
    pub fn farm_override_from_options_file(
        options_file: *const c_char,
        cf_name: *const c_char,
        errptr: *mut *mut c_char,
    ) -> *mut rocksdb_compaction_service_options_override_t;
    pub fn farm_override_set_info_log(
        ov: *mut rocksdb_compaction_service_options_override_t,
        path: *const c_char,
        errptr: *mut *mut c_char,
    ) -> c_int;
    pub fn farm_override_describe(
        ov: *const rocksdb_compaction_service_options_override_t,
        errptr: *mut *mut c_char,
    ) -> *mut c_char;
    pub fn farm_input_describe(
        input: *const c_char,
        len: usize,
        errptr: *mut *mut c_char,
    ) -> *mut c_char;
    pub fn farm_result_describe(
        result: *const c_char,
        len: usize,
        errptr: *mut *mut c_char,
    ) -> *mut c_char;
    pub fn farm_result_set_output_path(
        result: *const c_char,
        len: usize,
        output_path: *const c_char,
        out_len: *mut usize,
        errptr: *mut *mut c_char,
    ) -> *mut c_char;
    pub fn farm_sst_properties(path: *const c_char, errptr: *mut *mut c_char) -> *mut c_char;
    pub fn farm_override_selftest_drop_keys(
        ov: *mut rocksdb_compaction_service_options_override_t,
        every: u64,
        errptr: *mut *mut c_char,
    ) -> c_int;
    pub fn farm_sst_verify(path: *const c_char, errptr: *mut *mut c_char) -> c_int;
    pub fn farm_sst_bounds(path: *const c_char, errptr: *mut *mut c_char) -> *mut c_char;
    /// `farm/cpp/farm_file_checksum.cc`: the outputs' CRC32C step.
    pub fn farm_crc32c_extend(crc: u32, data: *const c_char, len: usize) -> u32;
    pub fn farm_file_crc32c(
        path: *const c_char,
        crc: *mut u32,
        bytes: *mut u64,
        errptr: *mut *mut c_char,
    ) -> c_int;
}
