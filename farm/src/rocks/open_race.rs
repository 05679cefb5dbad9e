//! Recognising a secondary open that lost a race with its primary.
//!
//! `OpenAndCompact` opens the hoster's live DB as a secondary: it reads
//! `CURRENT`, replays the MANIFEST that `CURRENT` names, and opens every
//! live table file (it forces `max_open_files=-1`). A busy primary replaces
//! its MANIFEST (at `max_manifest_file_size`, and whenever it reopens) and
//! deletes obsolete files as compactions install, all while the secondary
//! reads. In RocksDB 11.8 the lost races end the open with these statuses
//! (`Status::ToString()`, as [`RocksError::Status`] carries it; checked
//! against `db/version_set.cc`, `db/version_edit_handler.cc`,
//! `db/manifest_ops.cc`, `db/compaction/compaction_picker.cc`):
//!
//! | race | status text | [`OpenRace`] |
//! | --- | --- | --- |
//! | `CURRENT` named a MANIFEST that the primary replaced and deleted before the secondary opened it | `Operation failed. Try again.: The primary may have switched to a new MANIFEST and deleted the old one.` (`ReactiveVersionSet::MaybeSwitchManifest`) | `manifest_replaced` |
//! | a table or blob file of the replayed MANIFEST was deleted between the replay's check and its open | `IO error: No such file or directory: While open a file for random read: <db>/000123.sst: No such file or directory` (`VersionBuilder::LoadTableHandlers`) | `file_vanished` |
//! | `CURRENT` or the MANIFEST itself vanished (file systems without read-after-unlink semantics: a rename over `CURRENT` makes the opened one disappear) | `IO error: No such file or directory: ...: <db>/CURRENT: ...` | `file_vanished` |
//! | the replay found files of the MANIFEST's last state already deleted (the primary had moved on) and rolled back to an earlier point in time, before the job's inputs existed | `Invalid argument: Cannot find matched SST files for the following file numbers: 123 124` (`CompactionPicker::GetCompactionInputsFromFileNumbers`) | `inputs_not_in_version` |
//! | a MANIFEST or `CURRENT` read while the primary wrote it (a torn tail on a network file system) | `Corruption: ... The file <db>/MANIFEST-000123 may be corrupted.` (`VersionEditHandlerBase::Iterate`), `Corruption: CURRENT file does not end with newline` | `torn_metadata` |
//!
//! Each of these says only that the state the secondary saw is gone; a new
//! open sees the primary's newer state. Every other status (a missing
//! OPTIONS file, which no newer state brings back; a stale NFS handle,
//! which needs a remount first; a cancelled compaction; an I/O or
//! corruption error in the compaction itself) is not a race.
//!
//! [`RocksError::Status`]: super::RocksError::Status

use std::fmt;

/// Which race a failed secondary open lost (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpenRace {
    /// `CURRENT` named a MANIFEST that was gone by the time it was opened.
    ManifestReplaced,
    /// A table, blob, MANIFEST or `CURRENT` file vanished during the open.
    FileVanished,
    /// The replay rolled back to a state without the job's inputs.
    InputsNotInVersion,
    /// A MANIFEST or `CURRENT` was read half-written.
    TornMetadata,
}

impl OpenRace {
    /// Every race, in the order of the counters.
    pub const ALL: [OpenRace; 4] = [
        OpenRace::ManifestReplaced,
        OpenRace::FileVanished,
        OpenRace::InputsNotInVersion,
        OpenRace::TornMetadata,
    ];

    /// The race's name in logs, `/stat` and the `race` label of the metrics.
    pub fn name(self) -> &'static str {
        match self {
            OpenRace::ManifestReplaced => "manifest_replaced",
            OpenRace::FileVanished => "file_vanished",
            OpenRace::InputsNotInVersion => "inputs_not_in_version",
            OpenRace::TornMetadata => "torn_metadata",
        }
    }

    /// The race by its [`OpenRace::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The race a failed `OpenAndCompact` lost, from its error text (a
    /// `Status::ToString()`, possibly inside a longer message such as a
    /// child's), or `None` when the failure is no race.
    pub fn classify(error: &str) -> Option<Self> {
        if error.contains("Operation failed. Try again.") {
            Some(OpenRace::ManifestReplaced)
        } else if error.contains("IO error: No such file or directory")
            && READ_CONTEXTS.iter().any(|c| error.contains(c))
            && names_db_metadata_or_table(error)
        {
            Some(OpenRace::FileVanished)
        } else if error.contains("Cannot find matched SST files for the following file numbers") {
            Some(OpenRace::InputsNotInVersion)
        } else if error.contains("Corruption")
            && (error.contains("/MANIFEST-") || error.contains("CURRENT file"))
        {
            Some(OpenRace::TornMetadata)
        } else {
            None
        }
    }
}

impl fmt::Display for OpenRace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How RocksDB's POSIX file system words a failed open for reading
/// (`env/fs_posix.cc`); opens for writing concern the output directory,
/// never the primary's files.
const READ_CONTEXTS: [&str; 3] = [
    "While open a file for random read:",
    "While opening a file for sequentially reading:",
    "While opening file for sequentially read:",
];

/// Whether `error` names a file the primary replaces or deletes on its own:
/// `CURRENT`, a MANIFEST, a table or a blob file (never the OPTIONS file the
/// input names, which no newer state brings back).
fn names_db_metadata_or_table(error: &str) -> bool {
    error
        .split(|c: char| c.is_whitespace() || c == ':')
        .filter_map(|word| word.rsplit('/').next())
        .any(|file| {
            file == "CURRENT"
                || numbered(file.strip_prefix("MANIFEST-"))
                || numbered(file.strip_suffix(".sst"))
                || numbered(file.strip_suffix(".blob"))
        })
}

fn numbered(digits: Option<&str>) -> bool {
    digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the farm's bridge makes of a status: `rocksdb: <op>: <status>`.
    fn bridged(status: &str) -> String {
        format!("rocksdb: open and compact: {status}")
    }

    #[test]
    fn the_races_of_rocksdb_11_8() {
        let cases = [
            (
                "Operation failed. Try again.: The primary may have switched to a new MANIFEST and deleted the old one.",
                OpenRace::ManifestReplaced,
            ),
            (
                "IO error: No such file or directory: While open a file for random read: /proc/self/fd/9/000123.sst: No such file or directory",
                OpenRace::FileVanished,
            ),
            (
                "IO error: No such file or directory: While open a file for random read: /m/db/000077.blob: No such file or directory",
                OpenRace::FileVanished,
            ),
            (
                "IO error: No such file or directory: While opening a file for sequentially reading: /proc/self/fd/9/CURRENT: No such file or directory",
                OpenRace::FileVanished,
            ),
            (
                "IO error: No such file or directory: While opening a file for sequentially reading: /proc/self/fd/9/MANIFEST-000042: No such file or directory",
                OpenRace::FileVanished,
            ),
            (
                "Invalid argument: Cannot find matched SST files for the following file numbers: 123 124",
                OpenRace::InputsNotInVersion,
            ),
            (
                "Corruption: checksum mismatch  The file /proc/self/fd/9/MANIFEST-000042 may be corrupted.",
                OpenRace::TornMetadata,
            ),
            (
                "Corruption: CURRENT file does not end with newline",
                OpenRace::TornMetadata,
            ),
        ];
        for (status, race) in cases {
            assert_eq!(OpenRace::classify(status), Some(race), "{status}");
            assert_eq!(OpenRace::classify(&bridged(status)), Some(race), "{status}");
            // A child's failure carries the same text.
            let child = format!("child failed: {}", bridged(status));
            assert_eq!(OpenRace::classify(&child), Some(race), "{status}");
        }
    }

    #[test]
    fn other_failures_are_no_race() {
        let others = [
            // The OPTIONS file the input names: no newer state brings it back.
            "IO error: No such file or directory: While opening a file for sequentially reading: /proc/self/fd/9/OPTIONS-000007: No such file or directory",
            // The output directory: opened for writing, never the primary's.
            "IO error: No such file or directory: While open a file for appending: /out/000200.sst: No such file or directory",
            "IO error: No such file or directory: While mkdir: /out/x: No such file or directory",
            // A stale NFS handle: a remount first (mounts::stale).
            "IO error: While open a file for random read: /m/db/000012.sst: Stale file handle",
            // A cancelled compaction.
            "Incomplete: Manual compaction paused",
            // Corruption in a table the compaction reads.
            "Corruption: block checksum mismatch: stored = 1, computed = 2 in /m/db/000012.sst offset 0 size 10",
            "Invalid argument: Compaction must include at least one file.",
            "IO error: No space left on device: While appending to file: /out/000200.sst: No space left on device",
        ];
        for status in others {
            assert_eq!(OpenRace::classify(status), None, "{status}");
            assert_eq!(OpenRace::classify(&bridged(status)), None, "{status}");
        }
    }

    #[test]
    fn names_round_trip() {
        for race in OpenRace::ALL {
            assert_eq!(OpenRace::from_name(race.name()), Some(race));
            assert_eq!(race.to_string(), race.name());
        }
        assert_eq!(OpenRace::from_name("other"), None);
    }
}
