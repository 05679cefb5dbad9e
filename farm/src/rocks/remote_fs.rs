//! The worker's RocksDB file system for the HTTP storage mode
//! (`cpp/farm_remote_fs.cc`, `docs/REMOTE_STORAGE.md`): a DB the worker
//! cannot mount is opened at a path `/.farm-remote/<id>`, and every read
//! below it calls back into the [`RemoteFiles`] registered under `<id>`.
//!
//! [`register`] returns a [`Registration`]: while it lives, RocksDB can
//! read the job's files at [`Registration::db_path`]; dropping it makes
//! every later read fail (a compaction still running then fails and the
//! hoster compacts locally). Each callback catches any panic and answers
//! "no such file", "not readable" or a read error.

use super::error::RocksError;
use super::open_and_compact::Override;
use super::text::{c_path, c_str, take_c_string, with_errptr};
use std::collections::HashMap;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The directory every remote DB is opened below.
pub const PREFIX: &str = "/.farm-remote/";

/// A job's files as the worker reads them: sizes from the job's list,
/// bytes fetched on demand.
pub trait RemoteFiles: Send + Sync {
    /// The size of file `name`, `None` when the job has no such file.
    fn size(&self, name: &str) -> Option<u64>;
    /// Reads into `buf` from `offset` of file `name`: the count read (less
    /// than `buf.len()` only at the file's end).
    fn read(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, String>;
    /// The names in the DB directory.
    fn names(&self) -> Vec<String>;
    /// Whether the job lets file `name` be read (its inputs and metadata);
    /// the other live tables are known by their size only, and RocksDB
    /// opens them as placeholders that read nothing
    /// (`cpp/farm_inputs_only.cc`).
    fn readable(&self, name: &str) -> bool;
}

type Sources = Mutex<HashMap<u64, Arc<dyn RemoteFiles>>>;

fn sources() -> &'static Sources {
    static SOURCES: OnceLock<Sources> = OnceLock::new();
    SOURCES.get_or_init(Default::default)
}

fn lock(s: &Sources) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<dyn RemoteFiles>>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A job's files, readable by RocksDB at [`Registration::db_path`] until
/// dropped.
pub struct Registration {
    id: u64,
}

impl Registration {
    /// The path to open the DB at.
    pub fn db_path(&self) -> PathBuf {
        PathBuf::from(format!("{PREFIX}{:016x}", self.id))
    }
}

/// How the secondary open was given the job's MANIFEST
/// (`cpp/farm_manifest_trim.cc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestServed {
    /// Without the live tables the compaction cannot be affected by:
    /// `kept` of the DB's `live` tables are still named.
    Trimmed { live: u64, kept: u64 },
    /// Whole, and why.
    Whole(String),
}

impl Registration {
    /// How the MANIFEST was served; `None` before the DB was opened.
    pub fn manifest_served(&self) -> Option<ManifestServed> {
        let dir = c_path(&self.db_path(), "remote DB path").ok()?;
        let (mut live, mut kept, mut why) = (0u64, 0u64, std::ptr::null_mut());
        // SAFETY: a live C string and three slots the call fills.
        let answer =
            unsafe { ffi::farm_remote_trim_report(dir.as_ptr(), &mut live, &mut kept, &mut why) };
        // SAFETY: `why` is NULL or a malloc'ed string the call handed over.
        let why = unsafe { take_c_string(why) }.unwrap_or_default();
        match answer {
            1 => Some(ManifestServed::Trimmed { live, kept }),
            0 => Some(ManifestServed::Whole(why)),
            _ => None,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(sources()).remove(&self.id);
        if let Ok(dir) = c_path(&self.db_path(), "remote DB path") {
            // SAFETY: a live C string for the call.
            unsafe { ffi::farm_remote_forget(dir.as_ptr()) };
        }
    }
}

/// Makes `files` readable through the remote file system.
pub fn register(files: Arc<dyn RemoteFiles>) -> Registration {
    install_callbacks();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed) ^ (u64::from(std::process::id()) << 40);
    lock(sources()).insert(id, files);
    Registration { id }
}

impl Override {
    /// Builds the override for column family `cf_name` from the OPTIONS
    /// file `options_name` of the remote DB `db`, read through the remote
    /// file system; the override then reads the DB through it too, with
    /// the options that keep the secondary open to the job's files
    /// (`verify_sst_unique_id_in_manifest=false`,
    /// `skip_stats_update_on_db_open=true`), and its MANIFEST trimmed to
    /// what a compaction of `inputs` (plain SST names) needs
    /// (`cpp/farm_manifest_trim.cc`).
    pub fn from_remote_options_file(
        db: &Registration,
        options_name: &str,
        cf_name: &str,
        inputs: &[String],
    ) -> Result<Self, RocksError> {
        install_callbacks();
        let file = c_path(&db.db_path().join(options_name), "options file path")?;
        let cf = c_str(cf_name, "column family name")?;
        // An input that is not a table name leaves no input known: the
        // MANIFEST is then opened whole.
        let numbers: Vec<u64> = inputs
            .iter()
            .map(|n| n.strip_suffix(".sst").and_then(|n| n.parse().ok()))
            .collect::<Option<_>>()
            .unwrap_or_default();
        let raw = with_errptr("load remote options file", |err| {
            // SAFETY: both strings are live NUL-terminated C strings and
            // `numbers` a live slice for the call.
            unsafe {
                ffi::farm_override_from_remote_options_file(
                    file.as_ptr(),
                    cf.as_ptr(),
                    numbers.as_ptr(),
                    numbers.len(),
                    err,
                )
            }
        })?;
        Override::from_raw(raw, "load remote options file")
    }
}

/// The id and file name of a path below [`PREFIX`]: `None` for any other
/// path, and `Some((id, ""))` for the DB directory itself.
fn split(path: &str) -> Option<(u64, &str)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (id, name) = rest.split_once('/').unwrap_or((rest, ""));
    let id = u64::from_str_radix(id, 16).ok()?;
    // RocksDB joins names with one '/': anything deeper is no job's file.
    (!name.contains('/')).then_some((id, name))
}

fn source_of(path: &str) -> Option<(Arc<dyn RemoteFiles>, String)> {
    let (id, name) = split(path)?;
    let source = lock(sources()).get(&id).cloned()?;
    Some((source, name.to_owned()))
}

/// # Safety
/// `path` points at `len` readable bytes.
unsafe fn path_arg<'a>(path: *const c_char, len: usize) -> Option<&'a str> {
    if path.is_null() {
        return None;
    }
    // SAFETY: the shim passes a std::string's data and size, live for the call.
    let bytes = unsafe { std::slice::from_raw_parts(path.cast::<u8>(), len) };
    std::str::from_utf8(bytes).ok()
}

extern "C" fn size_callback(path: *const c_char, len: usize) -> i64 {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the shim passes a live string and its length.
        let path = unsafe { path_arg(path, len) }?;
        let (source, name) = source_of(path)?;
        if name.is_empty() {
            return None;
        }
        source.size(&name).and_then(|s| i64::try_from(s).ok())
    }));
    answer.ok().flatten().unwrap_or(-1)
}

extern "C" fn read_callback(
    path: *const c_char,
    len: usize,
    offset: u64,
    n: usize,
    buf: *mut c_char,
    errptr: *mut *mut c_char,
) -> i64 {
    let answer = catch_unwind(AssertUnwindSafe(|| -> Result<usize, String> {
        // SAFETY: the shim passes a live string and its length.
        let path = unsafe { path_arg(path, len) }.ok_or("unreadable path")?;
        let (source, name) = source_of(path).ok_or("not a file of a registered job")?;
        if buf.is_null() {
            return Err("no buffer".into());
        }
        // SAFETY: RocksDB's scratch buffer holds at least `n` bytes and is
        // ours until the call returns.
        let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), n) };
        source.read(&name, offset, out)
    }));
    let message = match answer {
        Ok(Ok(got)) => return i64::try_from(got).unwrap_or(-1),
        Ok(Err(e)) => e,
        Err(_) => "the remote read panicked".to_owned(),
    };
    set_error(errptr, &message);
    -1
}

extern "C" fn readable_callback(path: *const c_char, len: usize) -> i32 {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the shim passes a live string and its length.
        let path = unsafe { path_arg(path, len) }?;
        let (source, name) = source_of(path)?;
        Some(!name.is_empty() && source.readable(&name))
    }));
    i32::from(answer.ok().flatten().unwrap_or(false))
}

extern "C" fn list_callback(path: *const c_char, len: usize) -> *mut c_char {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the shim passes a live string and its length.
        let path = unsafe { path_arg(path.cast(), len) }?;
        let (source, name) = source_of(path.trim_end_matches('/'))?;
        name.is_empty().then(|| source.names().join("\n"))
    }));
    match answer.ok().flatten() {
        Some(text) => malloc_string(&text),
        None => std::ptr::null_mut(),
    }
}

/// A `malloc`ed copy of `text` (the shim frees it), NULL when out of memory.
fn malloc_string(text: &str) -> *mut c_char {
    // SAFETY: malloc of len+1 bytes, checked for NULL before writing.
    let p = unsafe { libc::malloc(text.len() + 1) }.cast::<u8>();
    if !p.is_null() {
        // SAFETY: `p` holds len+1 bytes; the source is `text`'s bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), p, text.len());
            *p.add(text.len()) = 0;
        }
    }
    p.cast()
}

fn set_error(errptr: *mut *mut c_char, message: &str) {
    if errptr.is_null() {
        return;
    }
    let text = message.replace('\0', " ");
    // SAFETY: the shim passes a pointer to its NULL-initialised message slot.
    unsafe { *errptr = malloc_string(&text) };
}

fn install_callbacks() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // SAFETY: plain functions of this binary, valid for its lifetime.
        unsafe {
            ffi::farm_remote_install(
                size_callback,
                read_callback,
                list_callback,
                readable_callback,
            )
        };
    });
}

/// Whether `path` is below [`PREFIX`] (a remote DB's path).
pub fn is_remote(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with(PREFIX))
}

mod ffi {
    use librocksdb_sys::rocksdb_compaction_service_options_override_t;
    use std::ffi::{c_char, c_int};

    pub type SizeFn = extern "C" fn(*const c_char, usize) -> i64;
    pub type ReadFn =
        extern "C" fn(*const c_char, usize, u64, usize, *mut c_char, *mut *mut c_char) -> i64;
    pub type ListFn = extern "C" fn(*const c_char, usize) -> *mut c_char;
    pub type ReadableFn = extern "C" fn(*const c_char, usize) -> c_int;

    extern "C" {
        pub fn farm_remote_install(
            size: SizeFn,
            read: ReadFn,
            list: ListFn,
            readable: ReadableFn,
        ) -> c_int;
        pub fn farm_remote_forget(db_dir: *const c_char);
        pub fn farm_remote_trim_report(
            db_dir: *const c_char,
            live: *mut u64,
            kept: *mut u64,
            why: *mut *mut c_char,
        ) -> c_int;
        pub fn farm_override_from_remote_options_file(
            options_file: *const c_char,
            cf_name: *const c_char,
            inputs: *const u64,
            n_inputs: usize,
            errptr: *mut *mut c_char,
        ) -> *mut rocksdb_compaction_service_options_override_t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_below_the_prefix_name_a_job() {
        assert_eq!(
            split("/.farm-remote/00000000000000ff/CURRENT"),
            Some((255, "CURRENT"))
        );
        assert_eq!(split("/.farm-remote/ff"), Some((255, "")));
        assert_eq!(split("/.farm-remote/ff/a/b"), None);
        assert_eq!(split("/.farm-remote/zz/CURRENT"), None);
        assert_eq!(split("/data/db/CURRENT"), None);
    }
}
