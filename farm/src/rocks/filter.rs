//! The hoster's compaction filter: a [`CompactionFilter`] of the plugin SDK
//! set on the hoster's `rocksdb::Options` through the crate `rocksdb` (which
//! owns the RocksDB object and keeps it alive with every `Options` and DB).
//!
//! Two edges are closed here. A panic in the filter is caught before it
//! reaches the crate's `extern "C"` callback (where it would abort the
//! database process) and keeps the entry: dropping or changing data on a
//! bug is worse than keeping it, and it is what the worker does with a
//! plugin's panic. A changed value must reach the crate as `&'static [u8]`;
//! instead of leaking every changed value, each thread keeps the last one
//! it handed out, until its next call.

use farm_plugin_sdk::{CompactionFilter, Decision};
use rocksdb::compaction_filter::Decision as RocksDecision;
use rocksdb::Options;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// The changed value this thread handed to RocksDB last.
    static CHANGED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Sets `f` as the compaction filter of `opts`, under `F::NAME`.
pub fn set_compaction_filter<F: CompactionFilter>(opts: &mut Options, f: F) {
    opts.set_compaction_filter(F::NAME, move |level: u32, key: &[u8], value: &[u8]| {
        decide(&f, level, key, value)
    });
}

fn decide<F: CompactionFilter>(f: &F, level: u32, key: &[u8], value: &[u8]) -> RocksDecision {
    let decision = catch_unwind(AssertUnwindSafe(|| f.filter(level, key, value)));
    match decision {
        Ok(Decision::Keep) => RocksDecision::Keep,
        Ok(Decision::Remove) => RocksDecision::Remove,
        Ok(Decision::Change(v)) => RocksDecision::Change(hand_over(v)),
        Err(_) => {
            tracing::error!(
                compaction_filter = F::NAME,
                "the compaction filter panicked; the entry is kept"
            );
            RocksDecision::Keep
        }
    }
}

/// Keeps `v` in this thread's slot (dropping the value handed over before)
/// and lends it to RocksDB.
fn hand_over(v: Vec<u8>) -> &'static [u8] {
    CHANGED.with(|slot| {
        let mut slot = slot.borrow_mut();
        *slot = v;
        // SAFETY: the bytes stay in this thread's slot, untouched, until
        // this thread's next `hand_over` or its exit. The only reader is the
        // crate's filter callback, which RocksDB's C API filter
        // (`rocksdb_compactionfilter_t::Filter` in db/c.cc of the pinned
        // RocksDB, see build.rs) runs on this thread and whose value it
        // copies into its own `std::string` as soon as the callback returns,
        // before this thread can call the filter again. So the `'static`
        // borrow is never used after the bytes are replaced.
        unsafe { std::slice::from_raw_parts(slot.as_ptr(), slot.len()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::DB;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering};

    /// An allocation size no other code of the test binary asks for: the
    /// changed values of the test filter, counted while they live.
    const ODD_SIZE: usize = 7919 * 13;
    static LIVE_ODD: AtomicIsize = AtomicIsize::new(0);

    struct CountOdd;

    // SAFETY: forwards to the system allocator unchanged; only counts.
    unsafe impl GlobalAlloc for CountOdd {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if layout.size() == ODD_SIZE {
                LIVE_ODD.fetch_add(1, Ordering::SeqCst);
            }
            // SAFETY: the caller's layout, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if layout.size() == ODD_SIZE {
                LIVE_ODD.fetch_sub(1, Ordering::SeqCst);
            }
            // SAFETY: allocated by `alloc` above with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOC: CountOdd = CountOdd;

    /// Changes every value to `ODD_SIZE` bytes of `z`; panics on key `boom`;
    /// removes key `drop`.
    struct Rewrite;

    impl CompactionFilter for Rewrite {
        const NAME: &'static str = "farm.test.rocks.rewrite";
        const VERSION: u32 = 1;
        fn filter(&self, _level: u32, key: &[u8], _value: &[u8]) -> Decision {
            match key {
                b"boom" => panic!("the key says boom"),
                b"drop" => Decision::Remove,
                _ => Decision::Change(vec![b'z'; ODD_SIZE]),
            }
        }
    }

    /// 64 changed values: each is freed once RocksDB copied it (a thread
    /// keeps only its last one); a panic keeps its entry; the DB is fine.
    #[test]
    fn changed_values_are_freed_and_a_panic_keeps_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let mut o = Options::default();
        o.create_if_missing(true);
        set_compaction_filter(&mut o, Rewrite);
        let db = DB::open(&o, tmp.path()).unwrap();
        for i in 0..64u32 {
            db.put(format!("key{i:03}"), b"v").unwrap();
        }
        db.put(b"boom", b"kept").unwrap();
        db.put(b"drop", b"gone").unwrap();
        db.flush().unwrap();
        let before = LIVE_ODD.load(Ordering::SeqCst);
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        let held = LIVE_ODD.load(Ordering::SeqCst) - before;

        let changed = db.get_pinned(b"key017").unwrap().expect("present");
        assert_eq!(changed.len(), ODD_SIZE, "the filter changed the value");
        assert!(changed.iter().all(|b| *b == b'z'));
        assert!(
            (0..=2).contains(&held),
            "{held} changed values still allocated after 64 changes"
        );
        assert_eq!(db.get(b"boom").unwrap().as_deref(), Some(&b"kept"[..]));
        assert_eq!(db.get(b"drop").unwrap(), None);
        db.put(b"after", b"1").expect("the DB still takes writes");
    }
}
