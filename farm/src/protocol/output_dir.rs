//! The files a worker leaves in an attempt's output directory, beside the
//! output SSTs, so that a hoster can still collect a result when the
//! worker died right after finishing:
//!
//! | file | written | content |
//! | --- | --- | --- |
//! | `rpc.results` | first | RocksDB's serialized compaction result |
//! | `compact.done` | last, once `rpc.results` is complete | the attempt's key as one line of JSON ([`AttemptKey`]) |
//!
//! A hoster installs a result found on disk only when `compact.done` names
//! the attempt it is waiting for: an output directory is never trusted by
//! its path alone (a worker still running another process's attempt could
//! have written there). Workers before this rule wrote `done` as the whole
//! of `compact.done`; such a file names no attempt, so a hoster collects
//! nothing from it and asks the worker instead.

use super::attempt::AttemptKey;

pub const RPC_RESULTS: &str = "rpc.results";
pub const COMPACT_DONE: &str = "compact.done";

/// `compact.done`'s content for the attempt `key`.
pub fn done_marker(key: &AttemptKey) -> Vec<u8> {
    let mut line = serde_json::to_vec(key).expect("an attempt key serializes");
    line.push(b'\n');
    line
}

/// The attempt `compact.done` names, if it names one.
pub fn done_by(content: &[u8]) -> Option<AttemptKey> {
    serde_json::from_slice(content).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_names_its_attempt_and_old_markers_name_none() {
        let key = AttemptKey {
            instance_name: "app".into(),
            start_time: 1_700_000_000,
            dbname: "/data/db".into(),
            job_id: 7 << 32,
            attempt: 2,
        };
        assert_eq!(done_by(&done_marker(&key)), Some(key));
        assert_eq!(done_by(b"done\n"), None);
    }
}
