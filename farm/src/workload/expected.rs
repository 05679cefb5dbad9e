//! An expected-state file, as RocksDB's `db_stress` keeps one: for every key
//! of a fixed key space, the state the DB acknowledged last and the state of
//! a write in flight, persisted so that it outlives a SIGKILL of the process
//! that writes the DB.
//!
//! A writer calls [`ExpectedState::begin`] for each key of a write before
//! the write, and [`ExpectedState::commit`] once the (synced) write returned.
//! After a crash, every key must hold either its committed state or, when a
//! write was in flight, that write's state: [`ExpectedState::verify`] checks
//! a whole column family against that rule, and [`ExpectedState::resolve`]
//! then takes what the DB holds as the new committed state.
//!
//! A key's state is a version: 0 means absent, `v > 0` means the value
//! [`value_of`]`(key, v)`, which is derived from the key and the version
//! alone, so a value read back names its own version and is checked byte
//! for byte.
//!
//! The file is a header (magic, key space) and one record of two
//! little-endian `u32` per key (committed, pending), written in place with
//! `pwrite`: the page cache keeps it across a kill of the writer.

use super::model::key;
use rocksdb::{IteratorMode, DB};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"FARMEXP1";
const HEADER: u64 = 16;
const RECORD: u64 = 8;
/// `pending` when no write is in flight.
const NONE: u32 = u32::MAX;

#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    #[error("failed to open expected state {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an expected-state file for {key_space} keys")]
    Format { path: PathBuf, key_space: u64 },
    #[error("failed to write expected state: {0}")]
    Write(#[source] std::io::Error),
    #[error("versions exhausted: a key reached u32::MAX - 1")]
    Exhausted,
}

/// One key's persisted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The version the DB acknowledged last (0: absent).
    pub committed: u32,
    /// The version of a write in flight, if any.
    pub pending: Option<u32>,
}

/// What [`ExpectedState::verify`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verified {
    /// Keys of the key space checked (all of them).
    pub keys: u64,
    /// Keys present in the DB.
    pub present: u64,
    /// Keys with a write in flight that the DB holds.
    pub pending_applied: u64,
    /// Keys with a write in flight that the DB does not hold.
    pub pending_lost: u64,
}

/// The first key whose DB state is neither the committed nor the pending one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {index}: the DB holds {found}, expected version {committed} (pending {pending:?})")]
pub struct Mismatch {
    pub index: u64,
    /// What the DB holds, described.
    pub found: String,
    pub committed: u32,
    pub pending: Option<u32>,
}

/// The persisted expected state of `key_space` keys.
#[derive(Debug)]
pub struct ExpectedState {
    file: File,
    records: Vec<Record>,
    /// The highest version in any record: the next write uses one more.
    last_version: u32,
}

impl ExpectedState {
    /// Opens the file at `path`, creating it (every key absent) when missing.
    pub fn open(path: &Path, key_space: u64) -> Result<Self, ExpectedError> {
        let open_err = |source| ExpectedError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(open_err)?;
        let len = HEADER + key_space * RECORD;
        let size = file.metadata().map_err(open_err)?.len();
        if size == 0 {
            let mut header = [0u8; HEADER as usize];
            header[..8].copy_from_slice(MAGIC);
            header[8..].copy_from_slice(&key_space.to_le_bytes());
            file.write_all_at(&header, 0)
                .map_err(ExpectedError::Write)?;
            file.set_len(len).map_err(ExpectedError::Write)?;
        }
        let mut bytes = vec![0u8; len as usize];
        let format = || ExpectedError::Format {
            path: path.to_owned(),
            key_space,
        };
        file.read_exact_at(&mut bytes, 0).map_err(|_| format())?;
        if &bytes[..8] != MAGIC || bytes[8..16] != key_space.to_le_bytes() {
            return Err(format());
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let records: Vec<Record> = (0..key_space as usize)
            .map(|i| {
                let at = (HEADER + i as u64 * RECORD) as usize;
                let pending = word(at + 4);
                Record {
                    committed: word(at),
                    pending: (pending != NONE).then_some(pending),
                }
            })
            .collect();
        let last_version = records
            .iter()
            .map(|r| r.committed.max(r.pending.unwrap_or(0)))
            .max()
            .unwrap_or(0);
        Ok(ExpectedState {
            file,
            records,
            last_version,
        })
    }

    pub fn key_space(&self) -> u64 {
        self.records.len() as u64
    }

    pub fn record(&self, index: u64) -> Record {
        self.records[index as usize]
    }

    /// A version no key has held yet.
    pub fn next_version(&mut self) -> Result<u32, ExpectedError> {
        if self.last_version >= NONE - 1 {
            return Err(ExpectedError::Exhausted);
        }
        self.last_version += 1;
        Ok(self.last_version)
    }

    fn store(&mut self, index: u64, r: Record) -> Result<(), ExpectedError> {
        let mut bytes = [0u8; RECORD as usize];
        bytes[..4].copy_from_slice(&r.committed.to_le_bytes());
        bytes[4..].copy_from_slice(&r.pending.unwrap_or(NONE).to_le_bytes());
        self.file
            .write_all_at(&bytes, HEADER + index * RECORD)
            .map_err(ExpectedError::Write)?;
        self.records[index as usize] = r;
        Ok(())
    }

    /// Records that a write giving key `index` the state `version` (0:
    /// delete) is about to be sent. Called again for the same key before
    /// [`ExpectedState::commit`], the later state wins (a batch that writes
    /// a key twice).
    pub fn begin(&mut self, index: u64, version: u32) -> Result<(), ExpectedError> {
        let committed = self.records[index as usize].committed;
        self.store(
            index,
            Record {
                committed,
                pending: Some(version),
            },
        )
    }

    /// Records that the write in flight for key `index` was acknowledged.
    pub fn commit(&mut self, index: u64) -> Result<(), ExpectedError> {
        let r = self.records[index as usize];
        let committed = r.pending.unwrap_or(r.committed);
        self.store(
            index,
            Record {
                committed,
                pending: None,
            },
        )
    }

    /// Scans the default column family of `db` in full and checks every key of the key space
    /// against its record: the committed state, or the pending one when a
    /// write was in flight. A key outside the key space, or a value that is
    /// not [`value_of`] its key and version, is a mismatch too. Returns the
    /// versions found (index by key) with the counts.
    pub fn verify(&self, db: &DB) -> Result<(Verified, Vec<u32>), Mismatch> {
        let mut found = vec![0u32; self.records.len()];
        for item in db.iterator(IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.mismatch(u64::MAX, format!("a scan error: {e}")))?;
            let index = parse_key(&k)
                .filter(|i| *i < self.key_space())
                .ok_or_else(|| {
                    self.mismatch(
                        u64::MAX,
                        format!(
                            "a key outside the key space: {}",
                            String::from_utf8_lossy(&k)
                        ),
                    )
                })?;
            let version = parse_version(index, &v)
                .filter(|ver| *ver > 0 && value_of(index, *ver) == *v)
                .ok_or_else(|| self.mismatch(index, describe(&v)))?;
            found[index as usize] = version;
        }
        let mut out = Verified {
            keys: self.key_space(),
            ..Verified::default()
        };
        for (i, (r, v)) in self.records.iter().zip(&found).enumerate() {
            out.present += u64::from(*v > 0);
            match r.pending {
                Some(p) if p == *v && p != r.committed => out.pending_applied += 1,
                Some(p) if r.committed == *v && p != r.committed => out.pending_lost += 1,
                _ if r.committed == *v || r.pending == Some(*v) => {}
                _ => {
                    let what = if *v == 0 {
                        "nothing".to_owned()
                    } else {
                        format!("version {v}")
                    };
                    return Err(self.mismatch(i as u64, what));
                }
            }
        }
        Ok((out, found))
    }

    fn mismatch(&self, index: u64, found: String) -> Mismatch {
        let r = self.records.get(index as usize).copied().unwrap_or(Record {
            committed: 0,
            pending: None,
        });
        Mismatch {
            index,
            found,
            committed: r.committed,
            pending: r.pending,
        }
    }

    /// After [`ExpectedState::verify`]: takes the versions the DB holds as
    /// committed, clearing every write in flight.
    pub fn resolve(&mut self, found: &[u32]) -> Result<(), ExpectedError> {
        for (i, v) in found.iter().enumerate() {
            let r = self.records[i];
            if r.pending.is_some() || r.committed != *v {
                self.store(
                    i as u64,
                    Record {
                        committed: *v,
                        pending: None,
                    },
                )?;
            }
        }
        Ok(())
    }
}

fn parse_key(k: &[u8]) -> Option<u64> {
    let digits = k.strip_prefix(b"key")?;
    if digits.len() != 12 {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The version named by a value's prefix `k<index>v<version>:`.
fn parse_version(index: u64, v: &[u8]) -> Option<u32> {
    let prefix = format!("k{index}v");
    let rest = v.strip_prefix(prefix.as_bytes())?;
    let end = rest.iter().position(|b| *b == b':')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn describe(v: &[u8]) -> String {
    let head = &v[..v.len().min(24)];
    format!(
        "a foreign value of {} bytes starting {:?}",
        v.len(),
        String::from_utf8_lossy(head)
    )
}

/// The key of index `index` ([`key`]).
pub fn key_of(index: u64) -> Vec<u8> {
    key(index)
}

/// The value of key `index` at `version`: a readable prefix naming both,
/// then 64 to 511 bytes, half text a compressor can shrink, half random.
pub fn value_of(index: u64, version: u32) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(index.rotate_left(32) ^ u64::from(version));
    let mut v = format!("k{index}v{version}:").into_bytes();
    let n = rng.usize(64..512);
    for i in 0..n {
        v.push(if i % 2 == 0 {
            b"farm compaction worker "[i / 2 % 23]
        } else {
            rng.u8(..)
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::Options;

    fn db(dir: &Path) -> DB {
        let mut o = Options::default();
        o.create_if_missing(true);
        DB::open(&o, dir.join("db")).unwrap()
    }

    #[test]
    fn survives_reopen_and_accepts_either_side_of_a_write_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected");
        let db = db(dir.path());
        let mut s = ExpectedState::open(&path, 10).unwrap();
        let v1 = s.next_version().unwrap();
        s.begin(3, v1).unwrap();
        db.put(key_of(3), value_of(3, v1)).unwrap();
        s.commit(3).unwrap();
        // A write in flight that never reached the DB, one that did.
        let v2 = s.next_version().unwrap();
        s.begin(3, v2).unwrap();
        let v3 = s.next_version().unwrap();
        s.begin(4, v3).unwrap();
        db.put(key_of(4), value_of(4, v3)).unwrap();
        drop(s);

        let mut s = ExpectedState::open(&path, 10).unwrap();
        assert_eq!(
            s.record(3),
            Record {
                committed: v1,
                pending: Some(v2)
            }
        );
        let (got, found) = s.verify(&db).unwrap();
        assert_eq!(
            got,
            Verified {
                keys: 10,
                present: 2,
                pending_applied: 1,
                pending_lost: 1
            }
        );
        s.resolve(&found).unwrap();
        assert_eq!(s.record(4).pending, None);
        assert_eq!(s.next_version().unwrap(), v3 + 1);
    }

    #[test]
    fn a_lost_acknowledged_write_or_a_wrong_value_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let mut s = ExpectedState::open(&dir.path().join("expected"), 10).unwrap();
        let v = s.next_version().unwrap();
        s.begin(5, v).unwrap();
        s.commit(5).unwrap();
        assert_eq!(s.verify(&db).unwrap_err().index, 5, "acknowledged, absent");
        db.put(key_of(5), value_of(5, v + 1)).unwrap();
        assert_eq!(
            s.verify(&db).unwrap_err().index,
            5,
            "a version never written"
        );
        let mut wrong = value_of(5, v);
        *wrong.last_mut().unwrap() ^= 1;
        db.put(key_of(5), wrong).unwrap();
        assert!(s.verify(&db).unwrap_err().found.contains("foreign"));
        db.put(key_of(5), value_of(5, v)).unwrap();
        db.put(b"other", b"x").unwrap();
        assert!(s.verify(&db).unwrap_err().found.contains("outside"));
        assert!(ExpectedState::open(&dir.path().join("expected"), 11).is_err());
    }
}
