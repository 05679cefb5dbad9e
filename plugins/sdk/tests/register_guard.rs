//! The entry point `export_plugin!` writes never lets a panic cross
//! `extern "C"`: a registration that panics is refused with
//! `REGISTER_PANICKED`, and the caller (the worker) carries on.

use farm_plugin_sdk::abi::{CompactionFilterV1, MergeOperatorV1, RegistryV1, ABI_VERSION};
use farm_plugin_sdk::{CompactionFilter, Decision, MergeOperator, REGISTER_PANICKED};
use std::ffi::{c_int, CStr};
use std::sync::Mutex;

static ADDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// # Safety
/// Called by the plugin with a descriptor that lives for the process.
unsafe extern "C" fn add_merge_operator(d: *const MergeOperatorV1) -> c_int {
    // SAFETY: per the ABI, a live descriptor with a NUL-terminated name.
    let name = unsafe { CStr::from_ptr((*d).name) };
    ADDED
        .lock()
        .unwrap()
        .push(name.to_string_lossy().into_owned());
    0
}

/// # Safety
/// As `add_merge_operator`.
unsafe extern "C" fn add_compaction_filter(d: *const CompactionFilterV1) -> c_int {
    // SAFETY: per the ABI, a live descriptor with a NUL-terminated name.
    let name = unsafe { CStr::from_ptr((*d).name) };
    ADDED
        .lock()
        .unwrap()
        .push(name.to_string_lossy().into_owned());
    0
}

/// A merge operator that registers fine.
#[derive(Default)]
struct Fine;

impl MergeOperator for Fine {
    const NAME: &'static str = "farm.test.fine";
    const VERSION: u32 = 1;
    fn full_merge(&self, _: &[u8], _: Option<&[u8]>, _: &[&[u8]]) -> Option<Vec<u8>> {
        None
    }
}

/// A compaction filter whose constructor panics.
struct Exploding;

impl Default for Exploding {
    fn default() -> Self {
        panic!("the constructor of the filter panics");
    }
}

impl CompactionFilter for Exploding {
    const NAME: &'static str = "farm.test.exploding";
    const VERSION: u32 = 1;
    fn filter(&self, _: u32, _: &[u8], _: &[u8]) -> Decision {
        Decision::Keep
    }
}

farm_plugin_sdk::export_plugin!(merge_operators: [Fine], compaction_filters: [Exploding]);

#[test]
fn a_registration_that_panics_is_refused_not_unwound() {
    let registry = RegistryV1 {
        abi_version: ABI_VERSION,
        add_merge_operator,
        add_compaction_filter,
    };
    // SAFETY: a live registry of this ABI version.
    let code = unsafe { farm_plugin_register(&registry) };
    assert_eq!(code, REGISTER_PANICKED);
    // The classes before the panic registered; the caller decides.
    assert_eq!(*ADDED.lock().unwrap(), vec!["farm.test.fine".to_owned()]);

    let other = RegistryV1 {
        abi_version: ABI_VERSION + 1,
        ..registry
    };
    // SAFETY: a live registry (of another version, which is refused).
    assert_eq!(unsafe { farm_plugin_register(&other) }, 1);
}
