//! DB options the `rocksdb` crate cannot read back or set as the farm needs.

use librocksdb_sys as sys;
use rocksdb::{AsRawPtr, DBCompressionType, Options};

extern "C" {
    fn farm_options_set_flush_compression(opts: *mut sys::rocksdb_options_t, kind: u8);
    fn farm_options_level_compression(opts: *const sys::rocksdb_options_t, level: usize) -> u8;
}

/// `max_background_jobs` as set on `options`.
pub fn max_background_jobs(options: &Options) -> i32 {
    // SAFETY: `options` is a live Options for the call; the getter only
    // reads one field.
    unsafe { sys::rocksdb_options_get_max_background_jobs(options.as_raw_ptr()) }
}

/// The codec a name means: `none`, `snappy`, `lz4`, `zstd` (the ones every
/// build of the workspace has).
pub fn compression_named(name: &str) -> Option<DBCompressionType> {
    match name {
        "none" => Some(DBCompressionType::None),
        "snappy" => Some(DBCompressionType::Snappy),
        "lz4" => Some(DBCompressionType::Lz4),
        "zstd" => Some(DBCompressionType::Zstd),
        _ => None,
    }
}

/// Makes flushes (level 0) write `kind`, every other level keeping its
/// compression (the DB's per-level setting, else its `compression`).
pub fn set_flush_compression(options: &mut Options, kind: DBCompressionType) {
    // SAFETY: `options` is a live Options borrowed mutably for the call; the
    // shim changes only its per-level compression. `DBCompressionType`'s
    // values are RocksDB's `CompressionType` values.
    unsafe { farm_options_set_flush_compression(options.as_raw_ptr(), kind as u8) }
}

/// The compression `options` gives `level` (level 0: what flushes write),
/// as RocksDB's `CompressionType` value.
pub fn level_compression(options: &Options, level: usize) -> u8 {
    // SAFETY: `options` is a live Options for the call; the shim only reads.
    unsafe { farm_options_level_compression(options.as_raw_ptr(), level) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_get_their_own_compression_and_the_levels_keep_theirs() {
        let (zstd, lz4) = (DBCompressionType::Zstd as u8, DBCompressionType::Lz4 as u8);
        let mut o = Options::default();
        o.set_compression_type(DBCompressionType::Zstd);
        assert_eq!(level_compression(&o, 0), zstd);
        set_flush_compression(&mut o, DBCompressionType::Lz4);
        assert_eq!(level_compression(&o, 0), lz4);
        for level in 1..7 {
            assert_eq!(level_compression(&o, level), zstd, "level {level}");
        }
        // A DB with its own per-level setting keeps it past level 0.
        let mut o = Options::default();
        o.set_compression_per_level(&[DBCompressionType::None, DBCompressionType::Snappy]);
        set_flush_compression(&mut o, DBCompressionType::Lz4);
        assert_eq!(level_compression(&o, 0), lz4);
        assert_eq!(level_compression(&o, 1), DBCompressionType::Snappy as u8);
        assert_eq!(level_compression(&o, 5), DBCompressionType::Snappy as u8);
        assert_eq!(compression_named("lz4"), Some(DBCompressionType::Lz4));
        assert_eq!(compression_named("brotli"), None);
    }

    #[test]
    fn reads_back_what_was_set() {
        let mut o = Options::default();
        assert_eq!(max_background_jobs(&o), 2);
        o.set_max_background_jobs(7);
        assert_eq!(max_background_jobs(&o), 7);
    }
}
