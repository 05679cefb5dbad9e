//! A job's snapshot: the files one attempt may read, pinned in a directory
//! the attempt owns (`<output dir>.in`, beside its output directory, on the
//! DB's filesystem so that hard links work).
//!
//! | file | how | served up to |
//! | --- | --- | --- |
//! | `CURRENT` | a copy of the DB's, read at schedule time | its size |
//! | the MANIFEST it names | a hard link | its length when linked (an append-only log: those bytes never change) |
//! | `OPTIONS-<n>` the input names | a hard link | its size |
//! | each input SST | a hard link | its size |
//! | every other live SST | not linked: its size is listed, never its bytes | nothing |
//!
//! Every pinned file must be a regular file (a symlink planted in the DB
//! directory is refused, so the job compacts locally).
//!
//! A primary that rolls its MANIFEST between reading `CURRENT` and linking
//! the MANIFEST is seen (the link fails, or `CURRENT` reads differently
//! afterwards) and the snapshot is taken again, up to [`TRIES`] times.

use crate::protocol::remote::{is_plain_name, is_wal, FileEntry};
use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Snapshots tried before the job compacts locally.
pub const TRIES: u32 = 5;

/// Why no snapshot could be taken: the job compacts locally.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("failed to create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("CURRENT names {0:?}, not a MANIFEST file")]
    BadCurrent(String),
    #[error("failed to pin {name}: {source}")]
    Pin {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("the MANIFEST changed under {TRIES} snapshots in a row")]
    Busy,
    #[error("failed to list the DB directory: {0}")]
    List(#[source] io::Error),
    #[error("input {0:?} is not a plain file name")]
    BadInput(String),
}

/// The pinned files of one attempt.
#[derive(Debug)]
pub struct JobSnapshot {
    dir: PathBuf,
    files: Vec<FileEntry>,
    /// Readable files and the length each is served up to.
    readable: HashMap<String, u64>,
}

impl JobSnapshot {
    /// Pins the files a compaction of `inputs` (as the input names them)
    /// planned with `OPTIONS-<options_number>` reads in the DB at `db`,
    /// into the new directory `dir`.
    pub fn take(
        db: &Path,
        dir: &Path,
        options_number: u64,
        inputs: &[String],
    ) -> Result<JobSnapshot, SnapshotError> {
        let inputs = inputs
            .iter()
            .map(|f| {
                let name = f.trim_start_matches('/');
                is_plain_name(name)
                    .then(|| name.to_owned())
                    .ok_or_else(|| SnapshotError::BadInput(f.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for _ in 0..TRIES {
            let _ = std::fs::remove_dir_all(dir);
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(|source| SnapshotError::Create {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            std::fs::create_dir(dir).map_err(|source| SnapshotError::Create {
                path: dir.to_owned(),
                source,
            })?;
            match Self::pin(db, dir, options_number, &inputs) {
                Ok(Some(snapshot)) => return Ok(snapshot),
                Ok(None) => continue,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(dir);
                    return Err(e);
                }
            }
        }
        let _ = std::fs::remove_dir_all(dir);
        Err(SnapshotError::Busy)
    }

    /// One try: `None` when the primary rolled its MANIFEST meanwhile.
    fn pin(
        db: &Path,
        dir: &Path,
        options_number: u64,
        inputs: &[String],
    ) -> Result<Option<JobSnapshot>, SnapshotError> {
        let pin_err = |name: &str| {
            let name = name.to_owned();
            move |source: io::Error| SnapshotError::Pin { name, source }
        };
        let current = std::fs::read(db.join("CURRENT")).map_err(pin_err("CURRENT"))?;
        let manifest = String::from_utf8_lossy(&current).trim_end().to_owned();
        if !manifest.starts_with("MANIFEST-") || !is_plain_name(&manifest) {
            return Err(SnapshotError::BadCurrent(manifest));
        }
        match std::fs::hard_link(db.join(&manifest), dir.join(&manifest)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(pin_err(&manifest)(e)),
        }
        let manifest_len = std::fs::metadata(dir.join(&manifest))
            .map_err(pin_err(&manifest))?
            .len();
        if std::fs::read(db.join("CURRENT")).ok().as_deref() != Some(&current[..]) {
            return Ok(None);
        }
        std::fs::write(dir.join("CURRENT"), &current).map_err(pin_err("CURRENT"))?;
        let mut readable = HashMap::new();
        readable.insert("CURRENT".to_owned(), current.len() as u64);
        readable.insert(manifest.clone(), manifest_len);
        let options = format!("OPTIONS-{options_number:06}");
        for name in std::iter::once(&options).chain(inputs) {
            std::fs::hard_link(db.join(name), dir.join(name)).map_err(pin_err(name))?;
            // A link to a symlink is a symlink: never served.
            let meta = std::fs::symlink_metadata(dir.join(name)).map_err(pin_err(name))?;
            if !meta.is_file() {
                let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
                return Err(pin_err(name)(e));
            }
            readable.insert(name.clone(), meta.len());
        }
        // Listed after the MANIFEST's length was pinned: every file its
        // version names was complete by then.
        let mut files: Vec<FileEntry> = readable
            .iter()
            .map(|(name, &size)| FileEntry {
                name: name.clone(),
                size,
                readable: true,
            })
            .collect();
        let pinned: HashSet<&String> = readable.keys().collect();
        for entry in std::fs::read_dir(db).map_err(SnapshotError::List)? {
            let entry = entry.map_err(SnapshotError::List)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.ends_with(".sst") || pinned.contains(&name) || !is_plain_name(&name) {
                continue;
            }
            // A file deleted meanwhile is simply not listed.
            if let Ok(meta) = entry.metadata() {
                if meta.is_file() {
                    files.push(FileEntry {
                        name,
                        size: meta.len(),
                        readable: false,
                    });
                }
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(JobSnapshot {
            dir: dir.to_owned(),
            files,
            readable,
        }))
    }

    /// The job's file list, as the endpoint serves it.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The length `name` may be read up to, when it is a readable file of
    /// the job (never a WAL).
    pub fn readable_len(&self, name: &str) -> Option<u64> {
        if !is_plain_name(name) || is_wal(name) {
            return None;
        }
        self.readable.get(name).copied()
    }

    /// Opens a readable file of the job, following no symlink.
    pub fn open(&self, name: &str) -> io::Result<(std::fs::File, u64)> {
        let len = self
            .readable_len(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.dir.join(name))?;
        Ok((file, len))
    }

    /// Removes the snapshot's directory (the links, never the DB's files).
    pub fn remove(&self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "failed to remove a job snapshot")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_db(dir: &Path) {
        std::fs::write(dir.join("CURRENT"), "MANIFEST-000005\n").unwrap();
        std::fs::write(dir.join("MANIFEST-000005"), vec![1u8; 100]).unwrap();
        std::fs::write(dir.join("OPTIONS-000007"), "[Version]\n").unwrap();
        std::fs::write(dir.join("000010.sst"), vec![2u8; 50]).unwrap();
        std::fs::write(dir.join("000011.sst"), vec![3u8; 70]).unwrap();
        std::fs::write(dir.join("000012.log"), vec![4u8; 10]).unwrap();
    }

    #[test]
    fn pins_exactly_the_job_and_lists_other_tables_by_size() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("db");
        std::fs::create_dir(&db).unwrap();
        fake_db(&db);
        let dir = db.join("farm-output/run/job-00001-00-att-00.in");
        let s = JobSnapshot::take(&db, &dir, 7, &["/000010.sst".into()]).unwrap();
        // The MANIFEST grows after the pin: bytes past the pinned length
        // are never served.
        std::fs::OpenOptions::new()
            .append(true)
            .open(db.join("MANIFEST-000005"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &[9u8; 20]))
            .unwrap();
        assert_eq!(s.readable_len("MANIFEST-000005"), Some(100));
        assert_eq!(s.readable_len("000010.sst"), Some(50));
        assert_eq!(s.readable_len("000011.sst"), None, "not an input");
        assert_eq!(s.readable_len("000012.log"), None, "a WAL");
        for bad in ["../CURRENT", "/etc/passwd", "", ".."] {
            assert_eq!(s.readable_len(bad), None, "{bad}");
            assert!(s.open(bad).is_err());
        }
        let listed: Vec<_> = s
            .files()
            .iter()
            .map(|f| (f.name.as_str(), f.readable))
            .collect();
        assert!(listed.contains(&("000011.sst", false)));
        assert!(!listed.iter().any(|(n, _)| n.ends_with(".log")));
        // The input is pinned: deleting it in the DB leaves the job's copy.
        std::fs::remove_file(db.join("000010.sst")).unwrap();
        assert_eq!(s.open("000010.sst").unwrap().1, 50);
        s.remove();
        assert!(!dir.exists());
        assert!(db.join("000011.sst").exists(), "the DB's files stay");
    }

    #[test]
    fn a_missing_input_or_options_file_is_no_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path();
        fake_db(db);
        let dir = db.join("snap");
        assert!(JobSnapshot::take(db, &dir, 7, &["/000099.sst".into()]).is_err());
        assert!(JobSnapshot::take(db, &dir, 8, &["/000010.sst".into()]).is_err());
        assert!(JobSnapshot::take(db, &dir, 7, &["../x.sst".into()]).is_err());
        assert!(!dir.exists());
    }
}
