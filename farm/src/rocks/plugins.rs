//! Loading plugins (`plugins/include/farm_plugin.h`) and reading what they
//! registered. The C++ side (`cpp/farm_plugins.cc`) turns each registered
//! class into a RocksDB object that `LoadOptionsFromFile` creates by name.

use super::text::take_c_string;
use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[repr(C)]
struct Registry {
    _private: [u8; 0],
}

extern "C" {
    fn farm_plugin_registry() -> *const Registry;
    fn farm_plugin_list() -> *mut c_char;
    fn farm_object_library_names(kind: *const c_char) -> *mut c_char;
    fn farm_plugin_counts(
        merges: *mut u64,
        merge_failures: *mut u64,
        filtered: *mut u64,
        dropped: *mut u64,
        changed: *mut u64,
    );
}

type RegisterFn = unsafe extern "C" fn(*const Registry) -> c_int;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("failed to load plugin {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("plugin {path} refused to register (returned {code}; a class name may be taken)")]
    Refused { path: PathBuf, code: i32 },
}

/// The kinds of class plugins provide.
pub const KINDS: [&str; 2] = ["merge_operator", "compaction_filter"];

/// A class a plugin registered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginClass {
    /// `merge_operator` or `compaction_filter`.
    pub kind: String,
    pub name: String,
    /// 0: unversioned (a C++ plugin that registered itself in RocksDB's
    /// `ObjectLibrary`).
    pub version: u32,
}

/// What plugin code did in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginCounts {
    pub merges: u64,
    pub merge_failures: u64,
    pub filtered: u64,
    pub dropped: u64,
    pub changed: u64,
}

impl PluginCounts {
    pub fn add(&mut self, o: &PluginCounts) {
        self.merges += o.merges;
        self.merge_failures += o.merge_failures;
        self.filtered += o.filtered;
        self.dropped += o.dropped;
        self.changed += o.changed;
    }
}

static LOADED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a thread-local NUL-terminated string.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-NULL, NUL-terminated, valid until the next dl call.
        unsafe { std::ffi::CStr::from_ptr(e) }
            .to_string_lossy()
            .into_owned()
    }
}

/// What loading an object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Its `farm_plugin_register` ran (now or at an earlier load).
    Registered,
    /// It has no entry point: it is only loaded, like any `LD_PRELOAD`
    /// object (a C++ plugin that registers itself in RocksDB's
    /// `ObjectLibrary` from a constructor, an allocator, ...).
    NoEntry,
}

/// Loads the object at `path` (once per process) and, when it is a farm
/// plugin, lets it register its classes.
pub fn load(path: &Path) -> Result<Loaded, PluginError> {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    let loaded = loaded.get_or_insert_with(HashSet::new);
    if loaded.contains(&canonical) {
        return Ok(Loaded::Registered);
    }
    let load_err = |message: String| PluginError::Load {
        path: path.to_owned(),
        message,
    };
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(canonical.as_os_str().as_bytes())
        .map_err(|_| load_err("path has a NUL byte".into()))?;
    // SAFETY: dlopen with a valid path; an already loaded (preloaded)
    // object returns its existing handle. The handle is never closed: the
    // plugin's classes live as long as the process.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        return Err(load_err(dl_error()));
    }
    let symbol = c"farm_plugin_register";
    // SAFETY: dlsym on a live handle with a NUL-terminated name.
    let entry: *mut c_void = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
    if entry.is_null() {
        loaded.insert(canonical);
        return Ok(Loaded::NoEntry);
    }
    // SAFETY: the ABI (farm_plugin.h) defines the entry's signature.
    let register: RegisterFn = unsafe { std::mem::transmute::<*mut c_void, RegisterFn>(entry) };
    // SAFETY: the registry is a static of the C++ side; the plugin calls
    // back into it during this call.
    let code = unsafe { register(farm_plugin_registry()) };
    if code != 0 {
        return Err(PluginError::Refused {
            path: path.to_owned(),
            code,
        });
    }
    loaded.insert(canonical);
    Ok(Loaded::Registered)
}

/// Every class registered in this process.
pub fn registered() -> Vec<PluginClass> {
    // SAFETY: returns a malloc'ed string owned by the caller.
    let text = unsafe { take_c_string(farm_plugin_list()) }.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some(PluginClass {
                kind: parts.next()?.to_owned(),
                name: parts.next()?.to_owned(),
                version: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// The names RocksDB's `ObjectLibrary` can create for `kind`.
pub fn object_library_names(kind: &str) -> Vec<String> {
    let Ok(c) = CString::new(kind) else {
        return Vec::new();
    };
    // SAFETY: `c` is live for the call; returns a malloc'ed string we own.
    let text = unsafe { take_c_string(farm_object_library_names(c.as_ptr())) }.unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

/// Loads `paths` and returns every class they added: those registered
/// through the farm ABI with their versions, and those C++ plugins
/// registered themselves in `ObjectLibrary` (version 0).
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<PluginClass>, PluginError> {
    let before: Vec<(&str, Vec<String>)> = KINDS
        .iter()
        .map(|k| (*k, object_library_names(k)))
        .collect();
    for p in paths {
        load(p)?;
    }
    let mut classes = registered();
    for (kind, known) in before {
        for name in object_library_names(kind) {
            if !known.contains(&name) && !classes.iter().any(|c| c.kind == kind && c.name == name) {
                classes.push(PluginClass {
                    kind: kind.to_owned(),
                    name,
                    version: 0,
                });
            }
        }
    }
    Ok(classes)
}

/// What plugin code did in this process so far.
pub fn counts() -> PluginCounts {
    let mut c = PluginCounts::default();
    // SAFETY: five live out-pointers.
    unsafe {
        farm_plugin_counts(
            &mut c.merges,
            &mut c.merge_failures,
            &mut c.filtered,
            &mut c.dropped,
            &mut c.changed,
        )
    };
    c
}
