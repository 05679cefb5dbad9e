//! Large buffers go back to the system when freed.
//!
//! A request body can be as large as `MAX_REQUEST_BYTES` (64 MiB), and a
//! refused one is freed at once. glibc's allocator serves large blocks by
//! `mmap` and unmaps them on free, but after the first such free it raises
//! that threshold to the block's size (up to 32 MiB), so later blocks of
//! that size come from the per-thread arenas, which keep their memory:
//! each request thread then holds on to a few requests' worth. A fixed
//! threshold turns that adjustment off, so every block of at least
//! [`THRESHOLD`] is unmapped when freed and a flood of large refused
//! requests leaves the worker's memory where it was.
//!
//! Smaller blocks freed by finished attempts (RocksDB's buffers, in-process
//! compactions) stay in the arenas of the threads that used them; the
//! worker's sweep hands the free pages of every arena back with
//! [`give_back_free_memory`], so a worker that ran thousands of attempts
//! sits, idle, near where it started.

/// Blocks of at least this size are mapped on their own: 1 MiB.
pub const THRESHOLD: i32 = 1 << 20;

/// Fixes glibc's mmap threshold at [`THRESHOLD`]; `false` where the
/// allocator does not take the setting.
pub fn return_large_buffers() -> bool {
    // SAFETY: `mallopt` only changes allocator parameters; it is called
    // with a valid parameter and value, and glibc serialises it with
    // allocation.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) == 1 }
}

/// Returns the free memory of every malloc arena to the system
/// (`malloc_trim(0)`); `true` when some was returned.
pub fn give_back_free_memory() -> bool {
    // SAFETY: `malloc_trim` only releases memory the allocator holds free;
    // glibc locks each arena while it walks it.
    unsafe { libc::malloc_trim(0) == 1 }
}
