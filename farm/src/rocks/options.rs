//! DB options the `rocksdb` crate can set but not read back.

use librocksdb_sys as sys;
use rocksdb::{AsRawPtr, Options};

/// `max_background_jobs` as set on `options`.
pub fn max_background_jobs(options: &Options) -> i32 {
    // SAFETY: `options` is a live Options for the call; the getter only
    // reads one field.
    unsafe { sys::rocksdb_options_get_max_background_jobs(options.as_raw_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_set() {
        let mut o = Options::default();
        assert_eq!(max_background_jobs(&o), 2);
        o.set_max_background_jobs(7);
        assert_eq!(max_background_jobs(&o), 7);
    }
}
