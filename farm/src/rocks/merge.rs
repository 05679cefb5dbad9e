//! The hoster's merge operator: a [`MergeOperator`] of the plugin SDK set on
//! the hoster's `rocksdb::Options` through the shim (`cpp/farm_merge.cc`).
//!
//! The crate `rocksdb` can set a merge operator too, but through RocksDB's C
//! API: a panic in its callback aborts the database process (nothing catches
//! it before `extern "C"`), and every failed merge fails the flush or
//! compaction that meets the key, which stops the DB's writes. Here every
//! callback catches unwinds, and a merge function that panicked is reported
//! to RocksDB with `OpFailureScope::kMustMerge`: reads of that key fail with
//! RocksDB's "merge operator failed" status, flushes and compactions keep the
//! key's operands unmerged, and the DB keeps serving and taking writes. A
//! merge function that returns `None` fails the merge as RocksDB's own
//! operators do (RocksDB's default scope).
//!
//! Results are copied into RocksDB's own `std::string`; the operator owns the
//! Rust value and drops it when RocksDB drops the operator.

use super::error::RocksError;
use super::text::{c_str, with_errptr};
use farm_plugin_sdk::abi::{Bytes, Out};
use farm_plugin_sdk::MergeOperator;
use librocksdb_sys::rocksdb_options_t;
use rocksdb::{AsRawPtr, Options};
use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `full_merge`'s answers (`cpp/farm_merge.cc`).
const MERGED: c_int = 1;
const DECLINED: c_int = 0;
const PANICKED: c_int = -1;

type FullMergeFn =
    unsafe extern "C" fn(*mut c_void, Bytes, *const Bytes, *const Bytes, usize, Out) -> c_int;
type PartialMergeFn = unsafe extern "C" fn(*mut c_void, Bytes, Bytes, Bytes, Out) -> c_int;
type ReleaseFn = unsafe extern "C" fn(*mut c_void);

/// `farm_hoster_merge_operator` of the shim.
#[repr(C)]
struct Callbacks {
    state: *mut c_void,
    full_merge: FullMergeFn,
    partial_merge: Option<PartialMergeFn>,
    release: ReleaseFn,
}

extern "C" {
    fn farm_options_set_merge_operator(
        opts: *mut rocksdb_options_t,
        name: *const c_char,
        callbacks: Callbacks,
        errptr: *mut *mut c_char,
    );
}

/// Sets `m` as the merge operator of `opts`, under `M::NAME`.
pub fn set_merge_operator<M: MergeOperator>(opts: &mut Options, m: M) -> Result<(), RocksError> {
    let name = c_str(M::NAME, "merge operator name")?;
    let callbacks = Callbacks {
        state: Box::into_raw(Box::new(m)).cast(),
        full_merge: full_merge::<M>,
        partial_merge: Some(partial_merge::<M>),
        release: release::<M>,
    };
    with_errptr("set merge operator", |err| {
        // SAFETY: `opts` is a live `rocksdb_options_t` borrowed mutably for
        // the call; `name` is live for the call (the shim copies it); the
        // shim takes ownership of `state`, the `Box<M>` leaked above, and
        // frees it once through `release::<M>` (on failure before returning).
        unsafe { farm_options_set_merge_operator(opts.as_raw_ptr(), name.as_ptr(), callbacks, err) }
    })
}

/// The operands of one merge call as slices.
///
/// # Safety
/// `operands` points to `n` live `Bytes` (or `n` is 0), each valid for `'a`.
unsafe fn operand_slices<'a>(operands: *const Bytes, n: usize) -> Vec<&'a [u8]> {
    if n == 0 || operands.is_null() {
        return Vec::new();
    }
    // SAFETY: per the caller, `n` live descriptors of live byte ranges.
    unsafe { std::slice::from_raw_parts(operands, n) }
        .iter()
        // SAFETY: per the caller, each descriptor's bytes are live for `'a`.
        .map(|b| unsafe { b.as_slice() })
        .collect()
}

/// # Safety
/// Called by the shim: `state` is the `Box<M>` of [`set_merge_operator`],
/// live until `release`; the byte ranges and `out` are live for the call.
unsafe extern "C" fn full_merge<M: MergeOperator>(
    state: *mut c_void,
    key: Bytes,
    existing: *const Bytes,
    operands: *const Bytes,
    n: usize,
    out: Out,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per this function's contract.
        let (m, key, existing, ops) = unsafe {
            (
                &*state.cast::<M>(),
                key.as_slice(),
                existing.as_ref().map(|e| e.as_slice()),
                operand_slices(operands, n),
            )
        };
        match m.full_merge(key, existing, &ops) {
            Some(v) => {
                // SAFETY: `out` is the shim's output for this call.
                unsafe { out.set(&v) };
                MERGED
            }
            None => DECLINED,
        }
    }))
    .unwrap_or_else(|_| {
        tracing::error!(merge_operator = M::NAME, "the merge operator panicked");
        PANICKED
    })
}

/// # Safety
/// As [`full_merge`].
unsafe extern "C" fn partial_merge<M: MergeOperator>(
    state: *mut c_void,
    key: Bytes,
    left: Bytes,
    right: Bytes,
    out: Out,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per this function's contract.
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
                // SAFETY: `out` is the shim's output for this call.
                unsafe { out.set(&v) };
                MERGED
            }
            None => DECLINED,
        }
    }))
    // Declining a partial merge is always safe: RocksDB keeps both operands.
    .unwrap_or(DECLINED)
}

/// # Safety
/// Called once by the shim with the `state` of [`set_merge_operator`].
unsafe extern "C" fn release<M: MergeOperator>(state: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the `Box<M>` leaked by `set_merge_operator`, reclaimed once.
        drop(unsafe { Box::from_raw(state.cast::<M>()) });
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::DB;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Appends operands with `,`; panics on the operand `boom`. Counts its
    /// drops, to show the operator releases it.
    struct Append {
        drops: Arc<AtomicUsize>,
    }

    impl Drop for Append {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl MergeOperator for Append {
        const NAME: &'static str = "farm.test.rocks.append";
        const VERSION: u32 = 1;
        fn full_merge(&self, _: &[u8], existing: Option<&[u8]>, ops: &[&[u8]]) -> Option<Vec<u8>> {
            assert!(!ops.contains(&&b"boom"[..]), "the operand says boom");
            let mut parts: Vec<&[u8]> = existing.into_iter().collect();
            parts.extend(ops);
            Some(parts.join(&b","[..]))
        }
    }

    fn options(drops: &Arc<AtomicUsize>) -> Options {
        let mut o = Options::default();
        o.create_if_missing(true);
        set_merge_operator(
            &mut o,
            Append {
                drops: drops.clone(),
            },
        )
        .unwrap();
        o
    }

    #[test]
    fn merges_run_through_the_shim_and_the_operator_is_released() {
        let tmp = tempfile::tempdir().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        {
            let db = DB::open(&options(&drops), tmp.path()).unwrap();
            db.put(b"k", b"a").unwrap();
            db.merge(b"k", b"b").unwrap();
            db.merge(b"k", b"c").unwrap();
            assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"a,b,c"[..]));
            db.flush().unwrap();
            db.compact_range(None::<&[u8]>, None::<&[u8]>);
            assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"a,b,c"[..]));
            assert_eq!(drops.load(Ordering::SeqCst), 0, "alive while the DB is");
        }
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "dropped with the last holder"
        );
    }

    /// A merge function that panics: the read of that key fails with
    /// RocksDB's merge failure, flush and compaction still succeed (the
    /// operands are kept), and the DB keeps serving and taking writes.
    #[test]
    fn a_panicking_merge_fails_the_read_and_never_the_db() {
        let tmp = tempfile::tempdir().unwrap();
        let drops = Arc::new(AtomicUsize::new(0));
        let db = DB::open(&options(&drops), tmp.path()).unwrap();
        db.put(b"bad", b"a").unwrap();
        db.merge(b"bad", b"boom").unwrap();
        db.put(b"good", b"x").unwrap();
        db.merge(b"good", b"y").unwrap();

        let err = db.get(b"bad").expect_err("a panicked merge fails the read");
        assert!(err.to_string().contains("Merge operator failed"), "{err}");
        db.flush().expect("a flush keeps the operands");
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        db.put(b"after", b"1").expect("the DB still takes writes");
        db.flush().expect("and flushes");
        assert_eq!(db.get(b"good").unwrap().as_deref(), Some(&b"x,y"[..]));
        assert!(db.get(b"bad").is_err(), "the operands are still there");
        // Writing a new base value over the key heals it.
        db.put(b"bad", b"fresh").unwrap();
        assert_eq!(db.get(b"bad").unwrap().as_deref(), Some(&b"fresh"[..]));
        let live = db.property_int_value("rocksdb.background-errors").unwrap();
        assert_eq!(live, Some(0), "no background error");
    }
}
