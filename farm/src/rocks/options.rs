//! DB options the `rocksdb` crate can set but not read back.

use librocksdb_sys as sys;
use rocksdb::{AsRawPtr, DBCompressionType, Options};

extern "C" {
    fn farm_options_set_flush_compression(opts: *mut sys::rocksdb_options_t, kind: u8);
    fn farm_options_flush_compression(opts: *const sys::rocksdb_options_t) -> u8;
}

/// `max_background_jobs` as set on `options`.
pub fn max_background_jobs(options: &Options) -> i32 {
    // SAFETY: `options` is a live Options for the call; the getter only
    // reads one field.
    unsafe { sys::rocksdb_options_get_max_background_jobs(options.as_raw_ptr()) }
}

/// Makes flushes (level 0) write `kind`, every other level keeping its
/// compression (the DB's per-level setting, else its `compression`).
pub fn set_flush_compression(options: &mut Options, kind: DBCompressionType) {
    // SAFETY: `options` is a live Options borrowed mutably for the call; the
    // shim changes only its per-level compression. `DBCompressionType`'s
    // values are RocksDB's `CompressionType` values.
    unsafe { farm_options_set_flush_compression(options.as_raw_ptr(), kind as u8) }
}

/// What flushes write, as RocksDB's `CompressionType` value.
pub fn flush_compression(options: &Options) -> u8 {
    // SAFETY: `options` is a live Options for the call; the shim only reads.
    unsafe { farm_options_flush_compression(options.as_raw_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_get_their_own_compression_and_the_levels_keep_theirs() {
        let mut o = Options::default();
        o.set_compression_type(DBCompressionType::Zstd);
        assert_eq!(flush_compression(&o), DBCompressionType::Zstd as u8);
        set_flush_compression(&mut o, DBCompressionType::Lz4);
        assert_eq!(flush_compression(&o), DBCompressionType::Lz4 as u8);
        // A DB with its own per-level setting keeps it past level 0.
        let mut o = Options::default();
        o.set_compression_per_level(&[DBCompressionType::None, DBCompressionType::Snappy]);
        set_flush_compression(&mut o, DBCompressionType::Lz4);
        assert_eq!(flush_compression(&o), DBCompressionType::Lz4 as u8);
    }

    #[test]
    fn reads_back_what_was_set() {
        let mut o = Options::default();
        assert_eq!(max_background_jobs(&o), 2);
        o.set_max_background_jobs(7);
        assert_eq!(max_background_jobs(&o), 7);
    }
}
