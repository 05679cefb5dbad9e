//! Turning Rust types into ABI descriptors that live for the process.

use crate::abi::{self, Bytes, CompactionFilterV1, MergeOperatorV1, Out, RegistryV1};
use crate::{CompactionFilter, Decision, MergeOperator};
use std::ffi::{c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

unsafe extern "C" fn full_merge<M: MergeOperator>(
    state: *mut c_void,
    key: Bytes,
    existing: *const Bytes,
    operands: *const Bytes,
    n: usize,
    out: Out,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `state` is the leaked `M` of `register_merge_operator`;
        // the worker passes live byte ranges for the call.
        let (m, key, existing, ops) = unsafe {
            let ops: Vec<&[u8]> = if n == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(operands, n)
                    .iter()
                    .map(|b| b.as_slice())
                    .collect()
            };
            (
                &*state.cast::<M>(),
                key.as_slice(),
                existing.as_ref().map(|e| e.as_slice()),
                ops,
            )
        };
        match m.full_merge(key, existing, &ops) {
            Some(v) => {
                // SAFETY: the worker's output for this call.
                unsafe { out.set(&v) };
                1
            }
            None => 0,
        }
    }))
    .unwrap_or(0)
}

unsafe extern "C" fn partial_merge<M: MergeOperator>(
    state: *mut c_void,
    key: Bytes,
    left: Bytes,
    right: Bytes,
    out: Out,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `full_merge`.
        let (m, key, left, right) = unsafe {
            (
                &*state.cast::<M>(),
                key.as_slice(),
                left.as_slice(),
                right.as_slice(),
            )
        };
        match m.partial_merge(key, left, right) {
            Some(v) => {
                // SAFETY: the worker's output for this call.
                unsafe { out.set(&v) };
                1
            }
            None => 0,
        }
    }))
    .unwrap_or(0)
}

unsafe extern "C" fn filter<F: CompactionFilter>(
    state: *mut c_void,
    level: c_int,
    key: Bytes,
    value: Bytes,
    out: Out,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `state` is the leaked `F`; live byte ranges for the call.
        let (f, key, value) = unsafe { (&*state.cast::<F>(), key.as_slice(), value.as_slice()) };
        match f.filter(level.max(0) as u32, key, value) {
            Decision::Keep => abi::FILTER_KEEP,
            Decision::Remove => abi::FILTER_REMOVE,
            Decision::Change(v) => {
                // SAFETY: the worker's output for this call.
                unsafe { out.set(&v) };
                abi::FILTER_CHANGE
            }
        }
    }))
    // A panicking filter keeps the entry: dropping data on a bug is worse.
    .unwrap_or(abi::FILTER_KEEP)
}

fn leak_name(name: &str) -> *const std::ffi::c_char {
    Box::leak(
        CString::new(name)
            .expect("class names have no NUL")
            .into_boxed_c_str(),
    )
    .as_ptr()
}

/// Registers `m` with the worker's registry; the descriptor lives for the
/// process. Returns the registry's answer (0 = registered).
///
/// # Safety
/// `registry` is the pointer the worker passed to `farm_plugin_register`.
pub unsafe fn register_merge_operator<M: MergeOperator>(
    registry: *const RegistryV1,
    m: M,
) -> c_int {
    let d = Box::leak(Box::new(MergeOperatorV1 {
        name: leak_name(M::NAME),
        version: M::VERSION,
        state: Box::into_raw(Box::new(m)).cast(),
        full_merge: full_merge::<M>,
        partial_merge: Some(partial_merge::<M>),
    }));
    // SAFETY: per the caller; `d` lives forever.
    unsafe { ((*registry).add_merge_operator)(d) }
}

/// Registers `f`; see [`register_merge_operator`].
///
/// # Safety
/// `registry` is the pointer the worker passed to `farm_plugin_register`.
pub unsafe fn register_compaction_filter<F: CompactionFilter>(
    registry: *const RegistryV1,
    f: F,
) -> c_int {
    let d = Box::leak(Box::new(CompactionFilterV1 {
        name: leak_name(F::NAME),
        version: F::VERSION,
        state: Box::into_raw(Box::new(f)).cast(),
        filter: filter::<F>,
    }));
    // SAFETY: per the caller; `d` lives forever.
    unsafe { ((*registry).add_compaction_filter)(d) }
}

/// What `farm_plugin_register` returns when registering panicked (a
/// constructor, or a class name with a NUL byte): the worker refuses the
/// object instead of the panic unwinding into it.
pub const REGISTER_PANICKED: c_int = 4;

/// Runs the body of `farm_plugin_register`, turning a panic into
/// [`REGISTER_PANICKED`]: no unwind may cross `extern "C"`.
pub fn guard_register(body: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(REGISTER_PANICKED)
}

/// Exports `farm_plugin_register` for the listed types (each constructed
/// with `Default`). It answers 0 when every class registered, 1 for a
/// registry of another ABI version, 2 or 3 when the registry refused a
/// merge operator or a compaction filter, [`REGISTER_PANICKED`] when
/// registering panicked.
#[macro_export]
macro_rules! export_plugin {
    (merge_operators: [$($m:ty),* $(,)?], compaction_filters: [$($f:ty),* $(,)?]) => {
        /// The plugin entry point (plugins/include/farm_plugin.h).
        ///
        /// # Safety
        /// Called by the worker with its registry.
        #[no_mangle]
        pub unsafe extern "C" fn farm_plugin_register(
            registry: *const $crate::abi::RegistryV1,
        ) -> ::std::ffi::c_int {
            $crate::guard_register(|| {
                // SAFETY: the worker passes a live registry (or NULL).
                if registry.is_null() || unsafe { (*registry).abi_version } != $crate::abi::ABI_VERSION {
                    return 1;
                }
                $(
                    // SAFETY: as above.
                    if unsafe { $crate::register_merge_operator::<$m>(registry, <$m>::default()) } != 0 {
                        return 2;
                    }
                )*
                $(
                    // SAFETY: as above.
                    if unsafe { $crate::register_compaction_filter::<$f>(registry, <$f>::default()) } != 0 {
                        return 3;
                    }
                )*
                0
            })
        }
    };
}
