//! RocksDB's serialized compaction input and result.
//!
//! Both are opaque to RocksDB's users (a little-endian u32 version, then
//! options syntax); the shim reads them with RocksDB's own `Read`/`Write`, so
//! the farm never re-implements the format.

use super::error::RocksError;
use super::ffi;
use super::file_checksum::FileChecksum;
use super::text::{c_str, call_lines, with_errptr};
use std::ffi::c_char;
use std::path::PathBuf;

/// What the farm needs to know of a `CompactionServiceInput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputInfo {
    pub cf_name: String,
    /// The `OPTIONS-<n>` file the hoster's compaction was planned with.
    pub options_file_number: u64,
    pub output_level: i32,
    pub db_id: String,
    /// Input SST file names, as RocksDB lists them (`000123.sst`).
    pub input_files: Vec<String>,
    pub snapshots: u64,
}

impl InputInfo {
    pub fn parse(input: &[u8]) -> Result<Self, RocksError> {
        const OP: &str = "parse compaction input";
        let lines = call_lines(OP, |err| {
            // SAFETY: `input` is a live slice for the duration of the call; the
            // shim copies it and returns a malloc'ed string or sets `err`.
            unsafe { ffi::farm_input_describe(input.as_ptr().cast(), input.len(), err) }
        })?;
        let input_files = lines
            .all("input_file")
            .map(|h| {
                lines
                    .hex(h)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .collect::<Result<_, _>>()?;
        Ok(InputInfo {
            cf_name: lines.hex_string("cf_name")?,
            options_file_number: lines.number("options_file_number")?,
            output_level: lines.number("output_level")? as i32,
            db_id: lines.hex_string("db_id")?,
            input_files,
            snapshots: lines.number("snapshots")?,
        })
    }
}

/// One output file named by a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub name: String,
    pub size: u64,
    /// The user keys of its smallest and largest internal keys.
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    /// Its table properties' entries (range deletions included) and
    /// range deletions, as the result states them.
    pub num_entries: u64,
    pub num_range_deletions: u64,
    /// The comparator it was written with.
    pub comparator: String,
    /// Its whole-file checksum, as the worker's RocksDB computed it while
    /// writing (empty when the output has none).
    pub checksum: FileChecksum,
}

/// What the farm needs to know of a `CompactionServiceResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultInfo {
    /// The remote status; `None` when OK.
    pub error: Option<String>,
    pub output_path: PathBuf,
    pub output_level: i32,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub output_files: Vec<OutputFile>,
    pub stats: ResultStats,
}

/// The job statistics a result carries (RocksDB's `CompactionJobStats` and
/// the output level's internal stats), as a remote compaction reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultStats {
    pub is_manual_compaction: bool,
    pub is_remote_compaction: bool,
    pub is_full_compaction: bool,
    pub num_input_records: u64,
    pub num_output_records: u64,
    /// Files written to the output level.
    pub num_output_files: u64,
    /// Files written to the proximal level (per-key placement).
    pub proximal_num_output_files: u64,
    /// Wall and CPU time of the compaction on the worker.
    pub micros: u64,
    pub cpu_micros: u64,
}

impl ResultInfo {
    pub fn parse(result: &[u8]) -> Result<Self, RocksError> {
        const OP: &str = "parse compaction result";
        let lines = call_lines(OP, |err| {
            // SAFETY: `result` is a live slice for the duration of the call.
            unsafe { ffi::farm_result_describe(result.as_ptr().cast(), result.len(), err) }
        })?;
        let keys: Vec<&str> = lines.all("output_keys").collect();
        let props: Vec<&str> = lines.all("output_props").collect();
        let checksums: Vec<&str> = lines.all("output_checksum").collect();
        let output_files = lines
            .all("output_file")
            .enumerate()
            .map(|(i, raw)| {
                let bad = || RocksError::Answer {
                    operation: OP,
                    detail: format!("bad output_file {raw:?}"),
                };
                let (name, size) = raw.split_once(':').ok_or_else(bad)?;
                let (smallest, largest) = keys
                    .get(i)
                    .and_then(|k| k.split_once(':'))
                    .ok_or_else(bad)?;
                let mut p = props.get(i).ok_or_else(bad)?.splitn(3, ':');
                let mut number = || -> Result<u64, RocksError> {
                    p.next().and_then(|n| n.parse().ok()).ok_or_else(bad)
                };
                let (num_entries, num_range_deletions) = (number()?, number()?);
                let comparator = props[i].rsplit(':').next().ok_or_else(bad)?;
                let (func_name, checksum) = checksums
                    .get(i)
                    .and_then(|c| c.split_once(':'))
                    .ok_or_else(bad)?;
                Ok(OutputFile {
                    name: String::from_utf8_lossy(&lines.hex(name)?).into_owned(),
                    size: size.parse().map_err(|_| bad())?,
                    smallest: lines.hex(smallest)?,
                    largest: lines.hex(largest)?,
                    num_entries,
                    num_range_deletions,
                    comparator: String::from_utf8_lossy(&lines.hex(comparator)?).into_owned(),
                    checksum: FileChecksum {
                        func_name: String::from_utf8_lossy(&lines.hex(func_name)?).into_owned(),
                        value: lines.hex(checksum)?,
                    },
                })
            })
            .collect::<Result<_, RocksError>>()?;
        let ok = lines.number("status_ok")? == 1;
        Ok(ResultInfo {
            error: (!ok).then(|| lines.hex_string("status")).transpose()?,
            output_path: PathBuf::from(lines.hex_string("output_path")?),
            output_level: lines.number("output_level")? as i32,
            bytes_read: lines.number("bytes_read")?,
            bytes_written: lines.number("bytes_written")?,
            output_files,
            stats: ResultStats {
                is_manual_compaction: lines.number("is_manual_compaction")? == 1,
                is_remote_compaction: lines.number("is_remote_compaction")? == 1,
                is_full_compaction: lines.number("is_full_compaction")? == 1,
                num_input_records: lines.number("num_input_records")?,
                num_output_records: lines.number("num_output_records")?,
                num_output_files: lines.number("num_output_files")?,
                proximal_num_output_files: lines.number("proximal_num_output_files")?,
                micros: lines.number("micros")?,
                cpu_micros: lines.number("cpu_micros")?,
            },
        })
    }
}

/// Re-serializes `result` with its `output_path` replaced, for a hoster that
/// sees the output directory under another path than the worker.
pub fn rewrite_output_path(result: &[u8], output_path: &str) -> Result<Vec<u8>, RocksError> {
    const OP: &str = "rewrite output_path";
    let path = c_str(output_path, "output_path")?;
    let mut len = 0usize;
    let out: *mut c_char = with_errptr(OP, |err| {
        // SAFETY: all pointers are live for the call; `len` receives the size
        // of the returned buffer.
        unsafe {
            ffi::farm_result_set_output_path(
                result.as_ptr().cast(),
                result.len(),
                path.as_ptr(),
                &mut len,
                err,
            )
        }
    })?;
    if out.is_null() {
        return Err(RocksError::Answer {
            operation: OP,
            detail: "no answer".into(),
        });
    }
    // SAFETY: the shim returned a malloc'ed buffer of `len` bytes (plus NUL).
    let bytes = unsafe { std::slice::from_raw_parts(out.cast::<u8>(), len) }.to_vec();
    // SAFETY: freed exactly once, after copying.
    unsafe { ffi::farm_free(out.cast()) };
    Ok(bytes)
}
