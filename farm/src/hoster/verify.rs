//! The check that makes "success" a safe answer.
//!
//! After `wait` answers success, RocksDB renames every output file named in
//! the result into the DB and verifies it only afterwards: a missing file is
//! an I/O error and a corrupt one an unrecoverable corruption, both of which
//! stop the hoster's writes. So before answering, the hoster checks every
//! output: a plain file name, named once, present in the attempt's output
//! directory, exactly the size the result states, and (with
//! `verify_output`) its content ([`OutputCheck`]); then the result as a
//! whole against what the hoster measured of the inputs ([`super::plausible`]:
//! totals, sizes, key ranges). Each refusal has its fallback reason
//! ([`VerifyError::reason`]).
//!
//! The content check reads every byte of every output once. By default it
//! compares the CRC32C of the whole file with the file checksum the worker's
//! RocksDB computed while writing it ([`crate::rocks::file_checksum`]): one
//! pass of large reads and a hardware CRC instead of opening the table and
//! reading it block by block (about a third of the hoster's time). An output
//! without such a checksum (a worker whose DB options name another checksum
//! factory, or an older worker) has its block checksums checked instead, as
//! does every output with `verify_output_blocks`. Several outputs are read
//! in parallel.

use super::plausible::{self, Inputs, PlausibleError};
use super::stats::FallbackReason;
use crate::rocks::file_checksum::file_crc32c;
use crate::rocks::serialized::{rewrite_output_path, OutputFile, ResultInfo};
use crate::rocks::sst::verify_checksums;
use std::path::Path;

/// Files read by one thread at most; more outputs are read in parallel.
const MAX_VERIFY_THREADS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("result unreadable: {0}")]
    Unreadable(String),
    #[error("remote status is not ok: {0}")]
    RemoteStatus(String),
    #[error("output file name {0:?} is not a plain file name")]
    BadName(String),
    #[error("output {path}: {detail}")]
    File { path: String, detail: String },
    #[error(transparent)]
    Implausible(#[from] PlausibleError),
}

impl VerifyError {
    /// The fallback reason the hoster counts.
    pub fn reason(&self) -> FallbackReason {
        match self {
            VerifyError::Implausible(e) => e.reason(),
            _ => FallbackReason::VerifyFailed,
        }
    }
}

/// How much of each output the hoster reads before installing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCheck {
    /// Presence and size only (`verify_output: false`).
    Sizes,
    /// The whole file's CRC32C against the worker's file checksum; block
    /// checksums for an output without one (the default).
    FileChecksum,
    /// Every block's checksum (`verify_output_blocks: true`).
    Blocks,
}

impl OutputCheck {
    /// The check the hoster params ask for.
    pub fn from_params(verify_output: bool, verify_output_blocks: bool) -> Self {
        match (verify_output, verify_output_blocks) {
            (false, _) => OutputCheck::Sizes,
            (true, false) => OutputCheck::FileChecksum,
            (true, true) => OutputCheck::Blocks,
        }
    }
}

/// The job's inputs, as the hoster reads them to judge a result.
pub struct InputFiles<'a> {
    /// The hoster's DB directory.
    pub db: &'a Path,
    /// The input files as the compaction input names them.
    pub files: &'a [String],
}

/// Checks `result` against the files in `output_dir` (the hoster's path of
/// the attempt's output directory) and returns the result to hand RocksDB,
/// with `output_path` set to `output_dir`.
pub fn verify_result(
    result: &[u8],
    output_dir: &Path,
    check: OutputCheck,
    inputs: &InputFiles<'_>,
) -> Result<(Vec<u8>, ResultInfo), VerifyError> {
    let info = ResultInfo::parse(result).map_err(|e| VerifyError::Unreadable(e.to_string()))?;
    if let Some(e) = &info.error {
        return Err(VerifyError::RemoteStatus(e.clone()));
    }
    for f in &info.output_files {
        let plain = !f.name.is_empty() && !f.name.contains('/') && f.name != "." && f.name != "..";
        if !plain {
            return Err(VerifyError::BadName(f.name.clone()));
        }
    }
    plausible::check_names(&info)?;
    check_outputs(&info.output_files, output_dir, check)?;
    let measured = Inputs::measure(inputs.db, inputs.files)?;
    plausible::check_result(&info, &measured)?;
    let dir = output_dir.to_string_lossy();
    let bytes = if info.output_path == output_dir {
        result.to_vec()
    } else {
        rewrite_output_path(result, &dir).map_err(|e| VerifyError::Unreadable(e.to_string()))?
    };
    Ok((bytes, info))
}

/// Checks every output, several in parallel when this thread may run on
/// more than one core (`available_parallelism` follows the CPU affinity);
/// the first refusal in the result's order is the answer.
fn check_outputs(files: &[OutputFile], dir: &Path, check: OutputCheck) -> Result<(), VerifyError> {
    let threads = if check == OutputCheck::Sizes {
        1
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        files.len().min(cores).min(MAX_VERIFY_THREADS)
    };
    if threads <= 1 {
        return files.iter().try_for_each(|f| check_output(f, dir, check));
    }
    let per_thread = files.len().div_ceil(threads);
    std::thread::scope(|s| {
        let checks: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| {
                s.spawn(move || chunk.iter().try_for_each(|f| check_output(f, dir, check)))
            })
            .collect();
        checks.into_iter().try_for_each(|c| {
            c.join()
                .unwrap_or_else(|_| Err(VerifyError::Unreadable("an output check panicked".into())))
        })
    })
}

/// One output: a regular file of the stated size, and its content as
/// `check` asks.
fn check_output(f: &OutputFile, dir: &Path, check: OutputCheck) -> Result<(), VerifyError> {
    let path = dir.join(&f.name);
    let file_err = |detail: String| VerifyError::File {
        path: path.display().to_string(),
        detail,
    };
    let meta = std::fs::symlink_metadata(&path).map_err(|e| file_err(e.to_string()))?;
    if !meta.is_file() {
        return Err(file_err("not a regular file".into()));
    }
    if meta.len() != f.size {
        return Err(file_err(format!(
            "size {} but the result says {}",
            meta.len(),
            f.size
        )));
    }
    match (check, f.checksum.crc32c()) {
        (OutputCheck::Sizes, _) => Ok(()),
        (OutputCheck::FileChecksum, Some(expected)) => {
            let read = file_crc32c(&path).map_err(|e| file_err(e.to_string()))?;
            if read.bytes != f.size {
                return Err(file_err(format!(
                    "read {} bytes but the result says {}",
                    read.bytes, f.size
                )));
            }
            if read.crc32c != expected {
                return Err(file_err(format!(
                    "file checksum {:08x} but the worker wrote {expected:08x}",
                    read.crc32c
                )));
            }
            Ok(())
        }
        (OutputCheck::FileChecksum | OutputCheck::Blocks, _) => {
            verify_checksums(&path).map_err(|e| file_err(e.to_string()))
        }
    }
}
