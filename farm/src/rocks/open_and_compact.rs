//! The worker side: `DB::OpenAndCompact` on the hoster's files.
//!
//! RocksDB replaces env, comparator, merge operator, compaction filter(s),
//! prefix extractor, table factory, SST partitioner, listeners, statistics,
//! info log and property collectors with the override's values *even when
//! they are left unset*. A null table factory crashes, a default one drops the
//! hoster's table options. So the override is always built from the column
//! family's options in the OPTIONS file the input names
//! ([`Override::from_options_file`]).

use super::error::RocksError;
use super::ffi;
use super::text::{c_path, c_str, call_lines, with_errptr};
use librocksdb_sys as sys;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// A `CompactionServiceOptionsOverride`, owned.
pub struct Override {
    raw: NonNull<sys::rocksdb_compaction_service_options_override_t>,
}

// SAFETY: the override is a plain C++ struct of shared_ptrs and strings with
// no thread affinity; the farm only mutates it through `&mut self`.
unsafe impl Send for Override {}

impl Override {
    /// Builds the override for column family `cf_name` from the OPTIONS file
    /// at `options_file`.
    pub fn from_options_file(options_file: &Path, cf_name: &str) -> Result<Self, RocksError> {
        let file = c_path(options_file, "options file path")?;
        let cf = c_str(cf_name, "column family name")?;
        let raw = with_errptr("load options file", |err| {
            // SAFETY: both strings are live NUL-terminated C strings for the call.
            unsafe { ffi::farm_override_from_options_file(file.as_ptr(), cf.as_ptr(), err) }
        })?;
        Override::from_raw(raw, "load options file")
    }

    /// Takes ownership of an override the shim created.
    pub(super) fn from_raw(
        raw: *mut sys::rocksdb_compaction_service_options_override_t,
        operation: &'static str,
    ) -> Result<Self, RocksError> {
        let raw = NonNull::new(raw).ok_or(RocksError::Answer {
            operation,
            detail: "no override and no error".into(),
        })?;
        Ok(Override { raw })
    }

    /// Sends RocksDB's log of the job to the file at `path`.
    pub fn set_info_log(&mut self, path: &Path) -> Result<(), RocksError> {
        let p = c_path(path, "info log path")?;
        with_errptr("open info log", |err| {
            // SAFETY: `raw` is a live override; `p` is live for the call.
            unsafe { ffi::farm_override_set_info_log(self.raw.as_ptr(), p.as_ptr(), err) }
        })?;
        Ok(())
    }

    /// What the override makes RocksDB use, for comparison with the
    /// OPTIONS file's text.
    pub fn describe(&self) -> Result<OverrideSummary, RocksError> {
        const OP: &str = "describe override";
        let l = call_lines(OP, |err| {
            // SAFETY: `raw` is a live override.
            unsafe { ffi::farm_override_describe(self.raw.as_ptr(), err) }
        })?;
        Ok(OverrideSummary {
            table_factory: l.raw("table_factory")?.to_owned(),
            filter_policy: l.hex_string("filter_policy")?,
            table_options: l.hex_string("table_options")?,
            classes: CLASS_OPTIONS
                .iter()
                .map(|k| Ok((*k, l.hex_string(k)?)))
                .collect::<Result<_, RocksError>>()?,
        })
    }

    /// Sets one serializable option in the override's `options_map` (for
    /// example `db_host_id`, which stamps output SSTs with their writer).
    pub fn set_option(&mut self, key: &str, value: &str) -> Result<(), RocksError> {
        let k = c_str(key, "option name")?;
        let v = c_str(value, "option value")?;
        // SAFETY: `raw` is a live override; RocksDB copies both strings.
        unsafe {
            sys::rocksdb_compaction_service_options_override_set_option(
                self.raw.as_ptr(),
                k.as_ptr(),
                v.as_ptr(),
            )
        };
        Ok(())
    }
}

impl Override {
    /// Makes every compaction run with this override drop every
    /// `every`-th plain value while its outputs stay well-formed: the
    /// deliberately wrong worker of the crash test's self-test
    /// (`FARM_SELFTEST_DROP_KEYS`, [`crate::worker::selftest`]), never
    /// anything else.
    pub fn drop_every_nth_value(&mut self, every: u64) -> Result<(), RocksError> {
        with_errptr("install the self-test's dropping filter", |err| {
            // SAFETY: `raw` is a live override owned by `self`; the shim only
            // replaces its compaction filter fields.
            unsafe { ffi::farm_override_selftest_drop_keys(self.raw.as_ptr(), every, err) }
        })?;
        Ok(())
    }
}

impl Drop for Override {
    fn drop(&mut self) {
        // SAFETY: `raw` was created by the shim with `new` of the same struct
        // that RocksDB's destroy function deletes, and is destroyed once.
        unsafe { sys::rocksdb_compaction_service_options_override_destroy(self.raw.as_ptr()) }
    }
}

/// What an [`Override`] makes RocksDB use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideSummary {
    /// The table factory's name, e.g. `BlockBasedTable`.
    pub table_factory: String,
    /// The filter policy's id with its parameters (`bloomfilter:10:false`),
    /// empty when there is none.
    pub filter_policy: String,
    /// The table factory's options as RocksDB serializes them.
    pub table_options: String,
    /// The name of each user class, by its option name (`merge_operator`,
    /// `compaction_filter`, ...); empty when there is none.
    pub classes: Vec<(&'static str, String)>,
}

/// The column family options that name a user class.
pub const CLASS_OPTIONS: [&str; 6] = [
    "comparator",
    "merge_operator",
    "compaction_filter",
    "compaction_filter_factory",
    "prefix_extractor",
    "sst_partitioner_factory",
];

/// The `OpenAndCompactOptions::canceled` flag: set it from any thread and the
/// running compaction stops at its next check.
pub struct CancelFlag {
    raw: NonNull<u8>,
    /// A Rust-side mirror of the flag, so reading it needs no FFI.
    set: AtomicBool,
}

// SAFETY: the flag is a heap-allocated std::atomic<bool>; every access goes
// through RocksDB's atomic load/store.
unsafe impl Send for CancelFlag {}
// SAFETY: as above; shared access is atomic.
unsafe impl Sync for CancelFlag {}

impl CancelFlag {
    pub fn new() -> Self {
        // SAFETY: returns a new heap-allocated atomic, owned by us.
        let raw = unsafe { sys::rocksdb_open_and_compact_canceled_create() };
        CancelFlag {
            raw: NonNull::new(raw).expect("operator new throws rather than returning NULL"),
            set: AtomicBool::new(false),
        }
    }

    /// Whether [`CancelFlag::cancel`] was called.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    pub fn cancel(&self) {
        self.set.store(true, Ordering::Release);
        // SAFETY: `raw` is a live atomic; the store is atomic.
        unsafe { sys::rocksdb_open_and_compact_canceled_set(self.raw.as_ptr(), 1) }
    }
}

impl Default for CancelFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CancelFlag {
    fn drop(&mut self) {
        // SAFETY: created by canceled_create, destroyed once; no compaction
        // holds it any more because `open_and_compact` borrows it.
        unsafe { sys::rocksdb_open_and_compact_canceled_destroy(self.raw.as_ptr()) }
    }
}

/// Runs one compaction described by `input` against the DB at `db_path`,
/// writing outputs into `output_dir`. Returns RocksDB's serialized result.
pub fn open_and_compact(
    db_path: &Path,
    output_dir: &Path,
    input: &[u8],
    overrides: &Override,
    canceled: &CancelFlag,
    allow_resumption: bool,
) -> Result<Vec<u8>, RocksError> {
    let db = c_path(db_path, "db path")?;
    let out = c_path(output_dir, "output dir")?;
    // SAFETY: creates options owned here and destroyed below.
    let options = unsafe { sys::rocksdb_open_and_compact_options_create() };
    // SAFETY: `options` is live; `canceled` outlives the call (borrowed).
    unsafe {
        sys::rocksdb_open_and_compact_options_set_canceled(options, canceled.raw.as_ptr());
        sys::rocksdb_open_and_compact_options_set_allow_resumption(options, allow_resumption as u8);
    }
    let mut len = 0usize;
    let result = with_errptr("open and compact", |err| {
        // SAFETY: every pointer is live for the duration of the call; RocksDB
        // copies `input` and returns a malloc'ed buffer of `len` bytes.
        unsafe {
            sys::rocksdb_open_and_compact_with_options(
                options,
                db.as_ptr(),
                out.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                &mut len,
                overrides.raw.as_ptr(),
                err,
            )
        }
    });
    // SAFETY: destroyed once, after the call that used it.
    unsafe { sys::rocksdb_open_and_compact_options_destroy(options) };
    let result = result?;
    if result.is_null() {
        return Err(RocksError::Answer {
            operation: "open and compact",
            detail: "no result and no error".into(),
        });
    }
    // SAFETY: a malloc'ed buffer of `len` bytes (plus NUL) that is ours.
    let bytes = unsafe { std::slice::from_raw_parts(result.cast::<u8>(), len) }.to_vec();
    // SAFETY: RocksDB allocated it with malloc; freed once after the copy.
    unsafe { ffi::farm_free(result.cast()) };
    Ok(bytes)
}
