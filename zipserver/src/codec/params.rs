//! What decides a built-in compressor's output, and what one compression
//! gives back.

/// The compression type and the `CompressionOptions` fields RocksDB's
/// built-in compressors read. Same layout as `zipserver_params` in the shim.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ZipParams {
    /// RocksDB's `CompressionType` value (1 Snappy, 4 LZ4, 7 ZSTD, ...).
    pub kind: u8,
    pub checksum: u8,
    pub level: i32,
    pub window_bits: i32,
    pub strategy: i32,
    pub max_dict_bytes: u32,
    pub zstd_max_train_bytes: u32,
    pub parallel_threads: u32,
    pub max_compressed_bytes_per_kb: u32,
}

/// Bytes of [`ZipParams`] on the wire and in a ring slot.
pub const PARAMS_LEN: usize = 30;

impl ZipParams {
    /// The wire form: `kind`, `checksum`, then seven little-endian words.
    pub fn encode(&self) -> [u8; PARAMS_LEN] {
        let mut b = [0u8; PARAMS_LEN];
        b[0] = self.kind;
        b[1] = self.checksum;
        let words = [
            self.level as u32,
            self.window_bits as u32,
            self.strategy as u32,
            self.max_dict_bytes,
            self.zstd_max_train_bytes,
            self.parallel_threads,
            self.max_compressed_bytes_per_kb,
        ];
        for (i, w) in words.iter().enumerate() {
            b[2 + 4 * i..6 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    pub fn decode(b: &[u8; PARAMS_LEN]) -> ZipParams {
        let w =
            |i: usize| u32::from_le_bytes([b[2 + 4 * i], b[3 + 4 * i], b[4 + 4 * i], b[5 + 4 * i]]);
        ZipParams {
            kind: b[0],
            checksum: b[1],
            level: w(0) as i32,
            window_bits: w(1) as i32,
            strategy: w(2) as i32,
            max_dict_bytes: w(3),
            zstd_max_train_bytes: w(4),
            parallel_threads: w(5),
            max_compressed_bytes_per_kb: w(6),
        }
    }
}

/// The result of compressing one block, as RocksDB's
/// `Compressor::CompressBlock` gives it: with `kind` 0 (no compression),
/// `size` is 0 (bypassed) or 1 (rejected) and no bytes were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    pub size: usize,
    pub kind: u8,
}

impl Compressed {
    /// Bytes written to the output buffer.
    pub fn bytes(&self) -> usize {
        if self.kind == 0 {
            0
        } else {
            self.size
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip() {
        let p = ZipParams {
            kind: 7,
            checksum: 1,
            level: -3,
            window_bits: -14,
            strategy: 2,
            max_dict_bytes: 5,
            zstd_max_train_bytes: 6,
            parallel_threads: 1,
            max_compressed_bytes_per_kb: 896,
        };
        assert_eq!(ZipParams::decode(&p.encode()), p);
    }
}
