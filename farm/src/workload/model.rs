//! A reproducible write workload with an in-memory model of what the DB must
//! hold: random puts (with overwrites), point deletes and range deletes.
//! The demo runs it at a million keys; the end-to-end tests run it and then
//! compare a full scan of every column family with the model.

use rocksdb::{ColumnFamily, IteratorMode, DB};
use std::collections::BTreeMap;

/// Overwrites the tail `share` of `value` with words from a small
/// vocabulary: text that compresses about as well as typical records.
fn fill_text(rng: &mut fastrand::Rng, value: &mut [u8], share: f64) {
    const WORDS: [&str; 16] = [
        "compaction ",
        "level ",
        "key ",
        "value ",
        "farm ",
        "worker ",
        "table ",
        "block ",
        "merge ",
        "filter ",
        "snapshot ",
        "range ",
        "delete ",
        "output ",
        "input ",
        "file ",
    ];
    let n = ((value.len() as f64) * share.clamp(0.0, 1.0)) as usize;
    let start = value.len() - n;
    let mut i = start;
    while i < value.len() {
        let w = WORDS[rng.usize(0..WORDS.len())].as_bytes();
        let m = w.len().min(value.len() - i);
        value[i..i + m].copy_from_slice(&w[..m]);
        i += m;
    }
}

/// What to write.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// Operations in all.
    pub ops: u64,
    /// Keys are drawn from `0..key_space`, so `ops > key_space` overwrites.
    pub key_space: u64,
    pub value_size: usize,
    /// Every n-th operation is a point delete (0: none).
    pub delete_every: u64,
    /// Every n-th operation is a range delete of up to 50 keys (0: none).
    pub range_delete_every: u64,
    pub seed: u64,
    /// The share (0.0 to 1.0) of each value that is text a compressor can
    /// shrink; the rest is random bytes. 0: values are incompressible.
    pub compressible: f64,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            ops: 200_000,
            key_space: 100_000,
            value_size: 100,
            delete_every: 10,
            range_delete_every: 5_000,
            seed: 1,
            compressible: 0.0,
        }
    }
}

/// Counts of what a run wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub puts: u64,
    pub deletes: u64,
    pub range_deletes: u64,
    pub bytes: u64,
}

pub fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

/// The expected contents of one column family.
#[derive(Debug, Clone, Default)]
pub struct Model {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Model {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.map.keys().map(Vec::as_slice)
    }

    /// Runs `spec` against `cf` of `db` and mirrors it in the model. A write
    /// error is returned at once: the farm must never make a write fail.
    pub fn write(
        &mut self,
        db: &DB,
        cf: &ColumnFamily,
        spec: &WorkloadSpec,
    ) -> Result<Written, rocksdb::Error> {
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        let mut w = Written::default();
        let mut value = vec![0u8; spec.value_size];
        for op in 1..=spec.ops {
            let i = rng.u64(0..spec.key_space);
            if spec.range_delete_every > 0 && op % spec.range_delete_every == 0 {
                let end = (i + rng.u64(1..50)).min(spec.key_space);
                let (from, to) = (key(i), key(end));
                db.delete_range_cf(cf, &from, &to)?;
                let doomed: Vec<Vec<u8>> =
                    self.map.range(from..to).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    self.map.remove(&k);
                }
                w.range_deletes += 1;
            } else if spec.delete_every > 0 && op % spec.delete_every == 0 {
                let k = key(i);
                db.delete_cf(cf, &k)?;
                self.map.remove(&k);
                w.deletes += 1;
            } else {
                let k = key(i);
                rng.fill(&mut value);
                fill_text(&mut rng, &mut value, spec.compressible);
                // A readable prefix makes mismatches easy to read in a failure.
                let tag = format!("v{op}:");
                let n = tag.len().min(value.len());
                value[..n].copy_from_slice(&tag.as_bytes()[..n]);
                db.put_cf(cf, &k, &value)?;
                w.bytes += (k.len() + value.len()) as u64;
                self.map.insert(k, value.clone());
                w.puts += 1;
            }
        }
        Ok(w)
    }

    /// Scans `cf` in full and compares it with the model, key by key.
    /// Returns the number of keys, or the first difference.
    pub fn check(&self, db: &DB, cf: &ColumnFamily) -> Result<u64, Mismatch> {
        let lossy = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let mut expected = self.map.iter();
        let mut n = 0u64;
        for item in db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|source| Mismatch::Scan { after: n, source })?;
            match expected.next() {
                Some((ek, ev)) if ek.as_slice() == &*k && ev.as_slice() == &*v => n += 1,
                Some((ek, _)) if ek.as_slice() == &*k => {
                    return Err(Mismatch::Value { key: lossy(&k) })
                }
                Some((ek, _)) => {
                    return Err(Mismatch::Key {
                        found: lossy(&k),
                        expected: lossy(ek),
                    })
                }
                None => return Err(Mismatch::Extra { key: lossy(&k) }),
            }
        }
        if let Some((ek, _)) = expected.next() {
            return Err(Mismatch::Missing { key: lossy(ek) });
        }
        Ok(n)
    }
}

/// The first difference between a DB and its model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("scan failed after {after} keys: {source}")]
    Scan {
        after: u64,
        #[source]
        source: rocksdb::Error,
    },
    #[error("value of {key} differs")]
    Value { key: String },
    #[error("DB has {found} where the model has {expected}")]
    Key { found: String, expected: String },
    #[error("DB has extra key {key}")]
    Extra { key: String },
    #[error("DB lacks key {key}")]
    Missing { key: String },
}
