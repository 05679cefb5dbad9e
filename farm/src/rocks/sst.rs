//! An SST file's table properties, and verification of its block checksums.

use super::error::RocksError;
use super::ffi;
use super::text::{c_path, call_lines, with_errptr};
use std::path::Path;

/// The table properties the farm checks or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstProperties {
    /// `rocksdb.creating.host.identity`: the `db_host_id` of the writer.
    pub db_host_id: String,
    pub filter_policy_name: String,
    pub compression_name: String,
    pub column_family_name: String,
    pub format_version: u64,
    pub data_size: u64,
    pub num_data_blocks: u64,
    pub num_entries: u64,
    pub num_deletions: u64,
    pub num_range_deletions: u64,
    pub filter_size: u64,
}

impl SstProperties {
    pub fn read(path: &Path) -> Result<Self, RocksError> {
        const OP: &str = "read sst properties";
        let c = c_path(path, "sst path")?;
        let l = call_lines(OP, |err| {
            // SAFETY: `c` is a live NUL-terminated path for the call.
            unsafe { ffi::farm_sst_properties(c.as_ptr(), err) }
        })?;
        Ok(SstProperties {
            db_host_id: l.hex_string("db_host_id")?,
            filter_policy_name: l.hex_string("filter_policy_name")?,
            compression_name: l.hex_string("compression_name")?,
            column_family_name: l.hex_string("column_family_name")?,
            format_version: l.number("format_version")?,
            data_size: l.number("data_size")?,
            num_data_blocks: l.number("num_data_blocks")?,
            num_entries: l.number("num_entries")?,
            num_deletions: l.number("num_deletions")?,
            num_range_deletions: l.number("num_range_deletions")?,
            filter_size: l.number("filter_size")?,
        })
    }

    /// The mean size of a data block: close to the table's `block_size`.
    pub fn mean_block_size(&self) -> u64 {
        self.data_size / self.num_data_blocks.max(1)
    }
}

/// An SST file's point-key range and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstBounds {
    pub comparator: String,
    pub num_entries: u64,
    pub num_range_deletions: u64,
    /// The user keys of its first and last point entries (deletions
    /// included); `None` when it has none.
    pub keys: Option<(Vec<u8>, Vec<u8>)>,
}

impl SstBounds {
    pub fn read(path: &Path) -> Result<Self, RocksError> {
        const OP: &str = "read sst bounds";
        let c = c_path(path, "sst path")?;
        let l = call_lines(OP, |err| {
            // SAFETY: `c` is a live NUL-terminated path for the call.
            unsafe { ffi::farm_sst_bounds(c.as_ptr(), err) }
        })?;
        let keys = if l.number("has_keys")? == 1 {
            Some((l.hex(l.raw("smallest")?)?, l.hex(l.raw("largest")?)?))
        } else {
            None
        };
        Ok(SstBounds {
            comparator: l.hex_string("comparator_name")?,
            num_entries: l.number("num_entries")?,
            num_range_deletions: l.number("num_range_deletions")?,
            keys,
        })
    }
}

/// Reads every block of the SST at `path` and checks its checksum.
pub fn verify_checksums(path: &Path) -> Result<(), RocksError> {
    let c = c_path(path, "sst path")?;
    let ok = with_errptr("verify sst checksums", |err| {
        // SAFETY: `c` is a live NUL-terminated path for the call.
        unsafe { ffi::farm_sst_verify(c.as_ptr(), err) }
    })?;
    if ok == 1 {
        Ok(())
    } else {
        Err(RocksError::Answer {
            operation: "verify sst checksums",
            detail: "verification failed without a message".into(),
        })
    }
}
