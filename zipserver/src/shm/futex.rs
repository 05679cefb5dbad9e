//! Sleeping on a word of shared memory until another process changes it,
//! and waking the sleepers: Linux futexes, shared between processes (the
//! word lives in a `MAP_SHARED` mapping, so no `FUTEX_PRIVATE_FLAG`).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` holds `expected`, at most `timeout`. Returns early
/// when woken, when the word differs, on a signal, or at the timeout; the
/// caller re-reads the word either way.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned 32-bit word for the call; the
    // kernel only reads it and the timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes up to `n` sleepers on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, n: u32) -> u32 {
    // SAFETY: `word` is a live, aligned 32-bit word; FUTEX_WAKE reads no
    // other argument.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n.min(i32::MAX as u32) as libc::c_int,
        )
    };
    u32::try_from(r).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_sleeper_wakes_when_the_word_changes() {
        let word = Arc::new(AtomicU32::new(0));
        let sleeper = std::thread::spawn({
            let word = word.clone();
            move || {
                let start = Instant::now();
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0, Duration::from_secs(10));
                }
                start.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::Release);
        wake(&word, 1);
        assert!(sleeper.join().unwrap() < Duration::from_secs(5));
        // A word that already differs returns at once; a timeout returns.
        wait(&word, 0, Duration::from_secs(10));
        let start = Instant::now();
        wait(&word, 1, Duration::from_millis(10));
        assert!(start.elapsed() >= Duration::from_millis(5));
    }
}
