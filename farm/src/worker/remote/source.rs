//! One remote job's files, as the worker reads them: the list fetched
//! once, bytes fetched in ranged GETs of whole [`BLOCK`]s, a read that
//! follows the previous block of the same file fetching up to
//! [`READ_AHEAD`] blocks at once, all through a bounded [`BlockCache`].
//!
//! Only files the list marks readable are ever requested; the list itself
//! is checked (plain names, no WAL, the inputs readable). An answer must
//! be exactly the bytes asked for. Reads of one job are serialised (a
//! remote compaction reads with one thread).

use super::cache::{BlockCache, BlockKey, BLOCK};
use super::counts::{Counters, RemoteCounts};
use super::error::RemoteError;
use crate::protocol::remote::{is_plain_name, is_wal, FileList, RemoteStorage, MAX_RANGE_BYTES};
use crate::rocks::remote_fs::RemoteFiles;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most blocks one read-ahead fetches.
pub const READ_AHEAD: u64 = 8;
/// The cache of one job.
pub const CACHE_BYTES: u64 = 64 << 20;
/// One request's bound.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest file list accepted.
const MAX_LIST_BYTES: u64 = 64 << 20;

struct Entry {
    name: String,
    size: u64,
    readable: bool,
    input: bool,
}

struct ReadState {
    cache: BlockCache,
    /// The last block read of each file.
    last: HashMap<usize, u64>,
}

pub struct RemoteSource {
    storage: RemoteStorage,
    agent: ureq::Agent,
    files: Vec<Entry>,
    by_name: HashMap<String, usize>,
    state: Mutex<ReadState>,
    counters: Arc<Counters>,
}

/// Whether `url` is `http(s)://host[:port]` with no path, query or user.
pub fn check_url(url: &str) -> Result<(), RemoteError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| RemoteError::BadUrl(url.to_owned()))?;
    let ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RemoteError::BadUrl(url.to_owned()))
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RemoteSource {
    /// Fetches the job's file list; `inputs` (plain names) must be readable
    /// in it.
    pub fn open(storage: &RemoteStorage, inputs: &[String]) -> Result<Self, RemoteError> {
        check_url(&storage.url)?;
        if storage.expires_unix <= now_unix() {
            return Err(RemoteError::Expired(storage.expires_unix));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .redirects(0)
            .build();
        let counters = Arc::new(Counters::default());
        let started = Instant::now();
        let what = "GET the job's file list".to_owned();
        let response = agent
            .get(&storage.files_url())
            .set("Authorization", &storage.bearer())
            .call()
            .map_err(|e| http_error(&what, e))?;
        let mut body = Vec::new();
        response
            .into_reader()
            .take(MAX_LIST_BYTES)
            .read_to_end(&mut body)
            .map_err(|source| RemoteError::Body {
                what: what.clone(),
                source,
            })?;
        counters.request(started.elapsed());
        let list: FileList =
            serde_json::from_slice(&body).map_err(|e| RemoteError::BadList(e.to_string()))?;
        let inputs: HashSet<&str> = inputs.iter().map(String::as_str).collect();
        let mut files = Vec::with_capacity(list.files.len());
        let mut by_name = HashMap::with_capacity(list.files.len());
        for f in list.files {
            if !is_plain_name(&f.name) || is_wal(&f.name) || by_name.contains_key(&f.name) {
                return Err(RemoteError::BadList(format!("file name {:?}", f.name)));
            }
            by_name.insert(f.name.clone(), files.len());
            files.push(Entry {
                input: inputs.contains(f.name.as_str()),
                name: f.name,
                size: f.size,
                readable: f.readable,
            });
        }
        for name in ["CURRENT"].into_iter().chain(inputs.iter().copied()) {
            let ok = by_name.get(name).is_some_and(|&i| files[i].readable);
            if !ok {
                return Err(RemoteError::NotInJob(name.to_owned()));
            }
        }
        Ok(RemoteSource {
            storage: storage.clone(),
            agent,
            files,
            by_name,
            state: Mutex::new(ReadState {
                cache: BlockCache::new(CACHE_BYTES),
                last: HashMap::new(),
            }),
            counters,
        })
    }

    /// The whole of a readable file (the OPTIONS file at admission).
    pub fn read_whole(&self, name: &str) -> Result<Vec<u8>, RemoteError> {
        let size = self
            .entry(name)
            .map(|(_, e)| e.size)
            .ok_or_else(|| RemoteError::NotInJob(name.to_owned()))?;
        let mut out = vec![0u8; size as usize];
        let got = self.read_at(name, 0, &mut out)?;
        out.truncate(got);
        Ok(out)
    }

    /// What was fetched so far.
    pub fn counts(&self) -> RemoteCounts {
        self.counters.snapshot()
    }

    /// The counters, for the push to add to.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn entry(&self, name: &str) -> Option<(usize, &Entry)> {
        self.by_name.get(name).map(|&i| (i, &self.files[i]))
    }

    /// Reads into `buf` from `offset` of `name`: the count read.
    pub fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, RemoteError> {
        let (index, entry) = self
            .entry(name)
            .filter(|(_, e)| e.readable)
            .ok_or_else(|| RemoteError::NotInJob(name.to_owned()))?;
        let end = entry.size.min(offset.saturating_add(buf.len() as u64));
        let mut at = offset;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while at < end {
            let block_no = at / BLOCK;
            let block = self.block(&mut state, index, entry, block_no)?;
            let within = (at - block_no * BLOCK) as usize;
            let take = ((end - at) as usize).min(block.len().saturating_sub(within));
            if take == 0 {
                break;
            }
            let dst = (at - offset) as usize;
            buf[dst..dst + take].copy_from_slice(&block[within..within + take]);
            at += take as u64;
        }
        Ok((at - offset) as usize)
    }

    /// Block `block_no` of file `index`, from the cache or fetched (with
    /// the blocks after it when the file is read in order).
    fn block(
        &self,
        state: &mut ReadState,
        index: usize,
        entry: &Entry,
        block_no: u64,
    ) -> Result<Arc<Vec<u8>>, RemoteError> {
        let key: BlockKey = (index, block_no);
        let previous = state.last.insert(index, block_no);
        if let Some(b) = state.cache.get(key) {
            self.counters.lookup(true);
            return Ok(b);
        }
        self.counters.lookup(false);
        let blocks_in_file = entry.size.div_ceil(BLOCK);
        let sequential = previous.is_some_and(|p| p + 1 == block_no);
        let mut count = if sequential { READ_AHEAD } else { 1 };
        count = count.min(blocks_in_file.saturating_sub(block_no)).max(1);
        // Stop before a block already cached.
        for n in 1..count {
            if state.cache.get((index, block_no + n)).is_some() {
                count = n;
                break;
            }
        }
        let start = block_no * BLOCK;
        let stop = ((block_no + count) * BLOCK).min(entry.size);
        let bytes = self.fetch(entry, start, stop)?;
        let mut first = None;
        for (n, chunk) in bytes.chunks(BLOCK as usize).enumerate() {
            let data = Arc::new(chunk.to_vec());
            if n == 0 {
                first = Some(data.clone());
            }
            state.cache.insert((index, block_no + n as u64), data);
        }
        Ok(first.unwrap_or_default())
    }

    /// Bytes `start..stop` of `entry`, exactly.
    fn fetch(&self, entry: &Entry, start: u64, stop: u64) -> Result<Vec<u8>, RemoteError> {
        let len = stop.saturating_sub(start);
        if len == 0 {
            return Ok(Vec::new());
        }
        debug_assert!(len <= MAX_RANGE_BYTES);
        let what = format!("GET {} bytes {start}-{}", entry.name, stop - 1);
        let started = Instant::now();
        let response = self
            .agent
            .get(&self.storage.file_url(&entry.name))
            .set("Authorization", &self.storage.bearer())
            .set("Range", &format!("bytes={start}-{}", stop - 1))
            .call()
            .map_err(|e| http_error(&what, e))?;
        if response.status() != 206 {
            return Err(RemoteError::Status {
                what,
                status: response.status(),
            });
        }
        let mut body = Vec::with_capacity(len as usize);
        response
            .into_reader()
            .take(len + 1)
            .read_to_end(&mut body)
            .map_err(|source| RemoteError::Body {
                what: what.clone(),
                source,
            })?;
        if body.len() as u64 != len {
            return Err(RemoteError::Body {
                what,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} bytes where {len} were asked for", body.len()),
                ),
            });
        }
        self.counters.fetched(len, entry.input, started.elapsed());
        Ok(body)
    }
}

/// A ureq failure as a [`RemoteError`].
pub fn http_error(what: &str, e: ureq::Error) -> RemoteError {
    match e {
        ureq::Error::Status(status, _) => RemoteError::Status {
            what: what.to_owned(),
            status,
        },
        other => RemoteError::Transport {
            what: what.to_owned(),
            source: Box::new(other),
        },
    }
}

impl RemoteFiles for RemoteSource {
    fn size(&self, name: &str) -> Option<u64> {
        self.entry(name).map(|(_, e)| e.size)
    }

    fn read(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, String> {
        self.read_at(name, offset, buf).map_err(|e| {
            tracing::warn!(file = name, offset, error = %e, "remote read failed");
            e.to_string()
        })
    }

    fn names(&self) -> Vec<String> {
        self.files.iter().map(|e| e.name.clone()).collect()
    }

    fn readable(&self, name: &str) -> bool {
        self.entry(name).is_some_and(|(_, e)| e.readable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_fetched_from() {
        assert!(check_url("http://127.0.0.1:7070").is_ok());
        assert!(check_url("https://hoster.example:443").is_ok());
        for bad in [
            "file:///etc/passwd",
            "http://h/path",
            "http://user@h",
            "http://h?x",
            "ftp://h",
            "http://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
