//! Loading plugins (`plugins/include/farm_plugin.h`) and reading what they
//! registered. The C++ side (`cpp/farm_plugins.cc`) turns each registered
//! class into a RocksDB object that `LoadOptionsFromFile` creates by name.
//!
//! Objects are opened with `libloading` (`RTLD_NOW | RTLD_GLOBAL`: C++
//! plugins resolve RocksDB's symbols from the worker, and later objects may
//! use earlier ones) and stay loaded for the life of the process: the
//! classes they registered are used until it ends. A plugin's entry point is
//! called by the C++ side, which stops any C++ exception it throws; a Rust
//! plugin's panic is stopped by the SDK's entry point.

use super::error::RocksError;
use super::text::{call_text, with_errptr};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `farm_plugin_register_fn` of the ABI; the registry is opaque here.
type RegisterFn = unsafe extern "C" fn(registry: *const c_void) -> c_int;

extern "C" {
    fn farm_plugin_call_register(entry: RegisterFn, errptr: *mut *mut c_char) -> c_int;
    fn farm_plugin_list(errptr: *mut *mut c_char) -> *mut c_char;
    fn farm_object_library_names(kind: *const c_char, errptr: *mut *mut c_char) -> *mut c_char;
    fn farm_plugin_counts(
        merges: *mut u64,
        merge_failures: *mut u64,
        filtered: *mut u64,
        dropped: *mut u64,
        changed: *mut u64,
    );
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("failed to load plugin {path}: {source}")]
    Load {
        path: PathBuf,
        #[source]
        source: libloading::Error,
    },
    #[error("plugin {path} refused to register (returned {code}; a class name may be taken)")]
    Refused { path: PathBuf, code: i32 },
    #[error("plugin {path} failed while registering: {source}")]
    Threw {
        path: PathBuf,
        #[source]
        source: RocksError,
    },
    #[error("failed to list the registered classes: {0}")]
    List(#[source] RocksError),
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

/// Every object loaded, by canonical path, with what loading it did. The
/// libraries are never dropped: their code runs until the process ends.
static LOADED: Mutex<Option<HashMap<PathBuf, (Library, Loaded)>>> = Mutex::new(None);

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
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some((_, how)) = loaded.get(&canonical) {
        return Ok(*how);
    }
    // SAFETY: loading runs the object's initialisers: a plugin is trusted
    // code by configuration (PLUGINS), loaded in a process (the describing
    // child, an attempt child, or the worker without MULTI_PROCESS) that
    // exists to run it. An object preloaded with LD_PRELOAD returns its
    // existing handle.
    let library =
        unsafe { Library::open(Some(&canonical), RTLD_NOW | RTLD_GLOBAL) }.map_err(|source| {
            PluginError::Load {
                path: path.to_owned(),
                source,
            }
        })?;
    match register(&library, path) {
        Ok(how) => {
            loaded.insert(canonical, (library, how));
            Ok(how)
        }
        Err(e) => {
            // Never unloaded, even now: classes it registered before it
            // failed point into it.
            std::mem::forget(library);
            Err(e)
        }
    }
}

/// Calls the object's `farm_plugin_register`, when it has one.
fn register(library: &Library, path: &Path) -> Result<Loaded, PluginError> {
    // SAFETY: the ABI (farm_plugin.h) gives `farm_plugin_register` this
    // signature; a missing symbol is an error, not a NULL function.
    let Ok(entry) = (unsafe { library.get::<RegisterFn>(FARM_PLUGIN_ENTRY) }) else {
        return Ok(Loaded::NoEntry);
    };
    let code = with_errptr("farm_plugin_register", |err| {
        // SAFETY: `entry` is the plugin's entry point, live while `library`
        // is (never unloaded); the shim calls it with its registry and
        // stops any C++ exception it throws.
        unsafe { farm_plugin_call_register(*entry, err) }
    })
    .map_err(|source| PluginError::Threw {
        path: path.to_owned(),
        source,
    })?;
    if code != 0 {
        return Err(PluginError::Refused {
            path: path.to_owned(),
            code,
        });
    }
    Ok(Loaded::Registered)
}

/// The entry point every plugin exports (`FARM_PLUGIN_ENTRY`).
const FARM_PLUGIN_ENTRY: &[u8] = b"farm_plugin_register\0";

/// Every class registered in this process.
pub fn registered() -> Result<Vec<PluginClass>, PluginError> {
    let text = call_text("list plugin classes", |err| {
        // SAFETY: returns a malloc'ed string owned by the caller, or NULL
        // with `err` set.
        unsafe { farm_plugin_list(err) }
    })
    .map_err(PluginError::List)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some(PluginClass {
                kind: parts.next()?.to_owned(),
                name: parts.next()?.to_owned(),
                version: parts.next()?.parse().ok()?,
            })
        })
        .collect())
}

/// The names RocksDB's `ObjectLibrary` can create for `kind` (one of
/// [`KINDS`]).
pub fn object_library_names(kind: &str) -> Result<Vec<String>, PluginError> {
    let c = CString::new(kind).map_err(|_| PluginError::List(RocksError::Nul { what: "kind" }))?;
    // SAFETY: `c` is live for the call.
    let text = unsafe { library_names(c.as_ptr()) }.map_err(PluginError::List)?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// # Safety
/// `kind` is NULL or a live NUL-terminated string.
unsafe fn library_names(kind: *const c_char) -> Result<String, RocksError> {
    call_text("list object library names", |err| {
        // SAFETY: per the caller; returns a malloc'ed string owned by the
        // caller, or NULL with `err` set (also when `kind` is NULL or
        // unknown: the shim reports the exception that raises).
        unsafe { farm_object_library_names(kind, err) }
    })
}

/// Loads `paths` and returns every class they added: those registered
/// through the farm ABI with their versions, and those C++ plugins
/// registered themselves in `ObjectLibrary` (version 0).
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<PluginClass>, PluginError> {
    let before: Vec<(&str, Vec<String>)> = KINDS
        .iter()
        .map(|k| Ok((*k, object_library_names(k)?)))
        .collect::<Result<_, PluginError>>()?;
    for p in paths {
        load(p)?;
    }
    let mut classes = registered()?;
    for (kind, known) in before {
        for name in object_library_names(kind)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A C++ exception inside the shim comes back as an error: a NULL kind
    /// makes `std::string` throw, an unknown kind is refused.
    #[test]
    fn a_cpp_exception_in_the_shim_becomes_an_error() {
        // SAFETY: NULL is within `library_names`' contract.
        let e = unsafe { library_names(std::ptr::null()) }.unwrap_err();
        assert!(e.to_string().contains("c++ exception"), "{e}");
        let e = object_library_names("comparator").unwrap_err();
        assert!(e.to_string().contains("unknown class kind"), "{e}");
        assert!(object_library_names("merge_operator").is_ok());
        assert!(registered().is_ok());
    }
}
