//! The check that makes "success" a safe answer.
//!
//! After `wait` answers success, RocksDB renames every output file named in
//! the result into the DB and verifies it only afterwards: a missing file is
//! an I/O error and a corrupt one an unrecoverable corruption, both of which
//! stop the hoster's writes. So before answering, the hoster checks every
//! output: a plain file name, named once, present in the attempt's output
//! directory, exactly the size the result states, and (with
//! `verify_output`) every block's checksum; then the result as a whole
//! against what the hoster measured of the inputs ([`super::plausible`]:
//! totals, sizes, key ranges). Each refusal has its fallback reason
//! ([`VerifyError::reason`]).

use super::plausible::{self, Inputs, PlausibleError};
use super::stats::FallbackReason;
use crate::rocks::serialized::{rewrite_output_path, ResultInfo};
use crate::rocks::sst::verify_checksums;
use std::path::Path;

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
    checksums: bool,
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
    for f in &info.output_files {
        let path = output_dir.join(&f.name);
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
        if checksums {
            verify_checksums(&path).map_err(|e| file_err(e.to_string()))?;
        }
    }
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
