//! Whether a result could be the outcome of compacting its inputs.
//!
//! The file check ([`super::verify`]) proves that each output named exists
//! and is sound; this check proves that the result as a whole is one
//! RocksDB can install without harm, from what the hoster itself measured
//! of the inputs (their sizes, entries and key ranges, read from the SSTs
//! in its DB directory), never from what the worker says of them:
//!
//! | check | refused when | fallback reason |
//! | --- | --- | --- |
//! | names | one output file is named twice (RocksDB would rename it twice; the second rename is a fatal background error) | `duplicate_output` |
//! | totals | the result lists more files than its counts say it wrote, or its record count is not what the listed files hold | `totals_mismatch` |
//! | size | more output bytes than [`BYTES_FACTOR`] times the input plus [`BYTES_SLACK`], more entries or files than [`ENTRIES_FACTOR`] times the input's entries plus [`ENTRIES_SLACK`] | `implausible_output` |
//! | keys | an output's smallest or largest key lies outside the union of the inputs' key ranges | `outside_key_range` |
//!
//! The key check compares user keys bytewise, so it applies when every
//! input and output was written with RocksDB's default
//! `leveldb.BytewiseComparator` and no input holds a range tombstone (a
//! tombstone's extent is not a point key the hoster can read from the
//! SST); otherwise it is skipped and the other checks still hold.

use super::stats::FallbackReason;
use crate::rocks::serialized::ResultInfo;
use crate::rocks::sst::SstBounds;
use std::collections::HashSet;
use std::path::Path;

/// Output bytes may be this many times the input's (a change of
/// compression between levels can grow the data)...
pub const BYTES_FACTOR: u64 = 16;
/// ... plus this much.
pub const BYTES_SLACK: u64 = 64 << 20;
/// Output entries and files may be this many times the input's entries
/// (range tombstones are split at file boundaries)...
pub const ENTRIES_FACTOR: u64 = 2;
/// ... plus this many.
pub const ENTRIES_SLACK: u64 = 64;

const BYTEWISE: &str = "leveldb.BytewiseComparator";

/// Why a result cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum PlausibleError {
    #[error("output file {0:?} is named twice")]
    Duplicate(String),
    #[error("the result's totals do not add up: {0}")]
    Totals(String),
    #[error("implausible output for the input: {0}")]
    Implausible(String),
    #[error("output {file:?} holds keys outside the inputs' key range: {detail}")]
    OutsideKeys { file: String, detail: String },
    #[error("cannot read input {path}: {source}")]
    Input {
        path: String,
        #[source]
        source: crate::rocks::error::RocksError,
    },
}

impl PlausibleError {
    /// The fallback reason the hoster counts.
    pub fn reason(&self) -> FallbackReason {
        match self {
            PlausibleError::Duplicate(_) => FallbackReason::DuplicateOutput,
            PlausibleError::Totals(_) => FallbackReason::TotalsMismatch,
            PlausibleError::Implausible(_) => FallbackReason::ImplausibleOutput,
            PlausibleError::OutsideKeys { .. } => FallbackReason::OutsideKeyRange,
            PlausibleError::Input { .. } => FallbackReason::VerifyFailed,
        }
    }
}

/// What the hoster measured of a job's inputs.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub bytes: u64,
    pub entries: u64,
    /// The union of the inputs' key ranges, when it can be compared
    /// bytewise (see the module's notes).
    pub range: Option<(Vec<u8>, Vec<u8>)>,
}

impl Inputs {
    /// Reads each input SST (`files` as the compaction input names them)
    /// in the DB directory `db`.
    pub fn measure(db: &Path, files: &[String]) -> Result<Inputs, PlausibleError> {
        let mut inputs = Inputs::default();
        let mut range: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut comparable = true;
        for f in files {
            let path = db.join(f.trim_start_matches('/'));
            let bounds = SstBounds::read(&path).map_err(|source| PlausibleError::Input {
                path: path.display().to_string(),
                source,
            })?;
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            inputs.bytes = inputs.bytes.saturating_add(bytes);
            inputs.entries = inputs.entries.saturating_add(bounds.num_entries);
            comparable &= bounds.comparator == BYTEWISE && bounds.num_range_deletions == 0;
            if let Some((lo, hi)) = bounds.keys {
                range = Some(match range {
                    None => (lo, hi),
                    Some((l, h)) => (l.min(lo), h.max(hi)),
                });
            }
        }
        inputs.range = range.filter(|_| comparable);
        Ok(inputs)
    }
}

/// Refuses duplicate output names.
pub fn check_names(info: &ResultInfo) -> Result<(), PlausibleError> {
    let mut seen = HashSet::new();
    for f in &info.output_files {
        if !seen.insert(f.name.as_str()) {
            return Err(PlausibleError::Duplicate(f.name.clone()));
        }
    }
    Ok(())
}

/// The totals, the sizes and the key ranges of `info` against `inputs`.
pub fn check_result(info: &ResultInfo, inputs: &Inputs) -> Result<(), PlausibleError> {
    check_totals(info)?;
    check_size(info, inputs)?;
    check_keys(info, inputs)
}

fn check_totals(info: &ResultInfo) -> Result<(), PlausibleError> {
    let listed = info.output_files.len() as u64;
    let counted = info
        .stats
        .num_output_files
        .saturating_add(info.stats.proximal_num_output_files);
    // RocksDB counts a file it created and then dropped as empty, so a
    // result may list fewer files than it counts, never more.
    if listed > counted {
        return Err(PlausibleError::Totals(format!(
            "it counts {counted} output files but lists {listed}"
        )));
    }
    let entries = info
        .output_files
        .iter()
        .fold(0u64, |s, f| s.saturating_add(f.num_entries));
    let points = info.output_files.iter().fold(0u64, |s, f| {
        s.saturating_add(f.num_entries.saturating_sub(f.num_range_deletions))
    });
    let records = info.stats.num_output_records;
    if records < points || records > entries {
        return Err(PlausibleError::Totals(format!(
            "it counts {records} output records but its files hold {points} point entries \
             ({entries} with range deletions)"
        )));
    }
    Ok(())
}

fn check_size(info: &ResultInfo, inputs: &Inputs) -> Result<(), PlausibleError> {
    let bytes = info
        .output_files
        .iter()
        .fold(0u64, |s, f| s.saturating_add(f.size));
    let max_bytes = inputs
        .bytes
        .saturating_mul(BYTES_FACTOR)
        .saturating_add(BYTES_SLACK);
    if bytes > max_bytes {
        return Err(PlausibleError::Implausible(format!(
            "{bytes} output bytes from {} input bytes (at most {max_bytes})",
            inputs.bytes
        )));
    }
    let max_entries = inputs
        .entries
        .saturating_mul(ENTRIES_FACTOR)
        .saturating_add(ENTRIES_SLACK);
    let entries = info
        .output_files
        .iter()
        .fold(0u64, |s, f| s.saturating_add(f.num_entries));
    let files = info.output_files.len() as u64;
    if entries > max_entries || files > max_entries {
        return Err(PlausibleError::Implausible(format!(
            "{files} output files holding {entries} entries from {} input entries (at most {max_entries})",
            inputs.entries
        )));
    }
    Ok(())
}

fn check_keys(info: &ResultInfo, inputs: &Inputs) -> Result<(), PlausibleError> {
    let Some((lo, hi)) = &inputs.range else {
        return Ok(());
    };
    for f in &info.output_files {
        if f.comparator != BYTEWISE {
            continue;
        }
        let outside = f.smallest < *lo || f.largest > *hi || f.smallest > f.largest;
        if outside {
            return Err(PlausibleError::OutsideKeys {
                file: f.name.clone(),
                detail: format!(
                    "[{}, {}] against the inputs' [{}, {}]",
                    shown(&f.smallest),
                    shown(&f.largest),
                    shown(lo),
                    shown(hi)
                ),
            });
        }
    }
    Ok(())
}

/// A key for a message: printable ASCII as is, other bytes escaped, long
/// keys cut.
fn shown(key: &[u8]) -> String {
    let cut = &key[..key.len().min(64)];
    let mut s: String = cut.escape_ascii().to_string();
    if key.len() > cut.len() {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rocks::serialized::{OutputFile, ResultStats};
    use std::path::PathBuf;

    fn file(name: &str, lo: &str, hi: &str, entries: u64) -> OutputFile {
        OutputFile {
            name: name.into(),
            size: 1000,
            smallest: lo.as_bytes().to_vec(),
            largest: hi.as_bytes().to_vec(),
            num_entries: entries,
            num_range_deletions: 0,
            comparator: BYTEWISE.into(),
            checksum: Default::default(),
        }
    }

    fn result(files: Vec<OutputFile>) -> ResultInfo {
        let records = files.iter().map(|f| f.num_entries).sum();
        ResultInfo {
            error: None,
            output_path: PathBuf::from("/out"),
            output_level: 1,
            bytes_read: 0,
            bytes_written: 0,
            stats: ResultStats {
                num_output_files: files.len() as u64,
                num_output_records: records,
                ..Default::default()
            },
            output_files: files,
        }
    }

    fn inputs() -> Inputs {
        Inputs {
            bytes: 10_000,
            entries: 100,
            range: Some((b"k010".to_vec(), b"k090".to_vec())),
        }
    }

    #[test]
    fn an_honest_result_passes() {
        let r = result(vec![
            file("1.sst", "k010", "k050", 50),
            file("2.sst", "k051", "k090", 50),
        ]);
        check_names(&r).unwrap();
        check_result(&r, &inputs()).unwrap();
    }

    #[test]
    fn each_lie_has_its_reason() {
        let dup = result(vec![
            file("1.sst", "k010", "k050", 50),
            file("1.sst", "k010", "k050", 50),
        ]);
        assert_eq!(
            check_names(&dup).unwrap_err().reason(),
            FallbackReason::DuplicateOutput
        );

        let outside = result(vec![file("1.sst", "k000", "k050", 50)]);
        assert_eq!(
            check_result(&outside, &inputs()).unwrap_err().reason(),
            FallbackReason::OutsideKeyRange
        );
        let beyond = result(vec![file("1.sst", "k010", "k099", 50)]);
        assert_eq!(
            check_result(&beyond, &inputs()).unwrap_err().reason(),
            FallbackReason::OutsideKeyRange
        );

        let mut inflated = result(vec![file("1.sst", "k010", "k050", 50)]);
        inflated.stats.num_output_records = 1_000_000;
        assert_eq!(
            check_result(&inflated, &inputs()).unwrap_err().reason(),
            FallbackReason::TotalsMismatch
        );
        let mut files = result(vec![file("1.sst", "k010", "k050", 50)]);
        files.stats.num_output_files = 0;
        assert_eq!(
            check_result(&files, &inputs()).unwrap_err().reason(),
            FallbackReason::TotalsMismatch
        );

        let many = result(
            (0..300)
                .map(|i| file(&format!("{i}.sst"), "k010", "k020", 1))
                .collect(),
        );
        assert_eq!(
            check_result(&many, &inputs()).unwrap_err().reason(),
            FallbackReason::ImplausibleOutput
        );
        let mut big = result(vec![file("1.sst", "k010", "k050", 50)]);
        big.output_files[0].size = u64::MAX;
        assert_eq!(
            check_result(&big, &inputs()).unwrap_err().reason(),
            FallbackReason::ImplausibleOutput
        );
    }

    #[test]
    fn without_comparable_ranges_the_key_check_is_skipped() {
        let outside = result(vec![file("1.sst", "a", "z", 50)]);
        let unknown = Inputs {
            range: None,
            ..inputs()
        };
        check_result(&outside, &unknown).unwrap();
    }
}
