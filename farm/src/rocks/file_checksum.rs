//! The whole-file checksum of an output SST.
//!
//! A worker's compaction writes every output with a file checksum generator
//! (`farm/cpp/farm_file_checksum.cc`) that computes RocksDB's own
//! `FileChecksumCrc32c`: the CRC32C of every byte of the file as RocksDB
//! appends it, stored as 4 big-endian bytes in the output's metadata (and so
//! in the result, and in the hoster's MANIFEST once installed, exactly as a
//! DB with RocksDB's `FileChecksumGenCrc32cFactory` records it). When the
//! DB's OPTIONS name another checksum factory, the worker uses that one and
//! the hoster falls back to checking block checksums.
//!
//! The hoster reads each output back in large sequential reads and computes
//! the same CRC32C in hardware ([`file_crc32c`], in the shim, so that it runs
//! optimised whatever the build profile; three streams of the CPU's `crc32`
//! instruction at once, joined exactly); any byte changed, lost or added
//! between the worker's writer and the hoster's read gives another value (or
//! another length). The tests check the shim's CRC32C against an
//! independent implementation (the `crc32c` crate).

use super::error::RocksError;
use super::ffi;
use super::text::{c_path, with_errptr};
use std::path::Path;

/// The name RocksDB records with a CRC32C file checksum.
pub const CRC32C_FUNC_NAME: &str = "FileChecksumCrc32c";

/// An output's file checksum as a result states it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileChecksum {
    /// The generator's name; empty when the output has no checksum.
    pub func_name: String,
    pub value: Vec<u8>,
}

impl FileChecksum {
    /// The CRC32C this checksum states, when it is one.
    pub fn crc32c(&self) -> Option<u32> {
        if self.func_name != CRC32C_FUNC_NAME {
            return None;
        }
        let bytes: [u8; 4] = self.value.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }
}

/// What [`file_crc32c`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCrc {
    pub crc32c: u32,
    pub bytes: u64,
}

/// The CRC32C of the whole file at `path` (read in 192 KiB reads: large
/// enough that system calls do not count, small enough to stay in the
/// core's cache), and how many bytes it holds.
pub fn file_crc32c(path: &Path) -> Result<FileCrc, RocksError> {
    let c = c_path(path, "sst path")?;
    let (mut crc, mut bytes) = (0u32, 0u64);
    let ok = with_errptr("read the file checksum", |err| {
        // SAFETY: `c` is a live NUL-terminated path; `crc` and `bytes` are
        // live for the call and written only on success.
        unsafe { ffi::farm_file_crc32c(c.as_ptr(), &mut crc, &mut bytes, err) }
    })?;
    if ok != 1 {
        return Err(RocksError::Answer {
            operation: "read the file checksum",
            detail: "failed without a message".into(),
        });
    }
    Ok(FileCrc { crc32c: crc, bytes })
}

/// The CRC32C the workers' generator computes of `data` (the shim's
/// implementation, which the hoster's check must agree with).
pub fn generator_crc32c(data: &[u8]) -> u32 {
    // SAFETY: `data` is a live slice for the call; the shim only reads it.
    unsafe { ffi::farm_crc32c_extend(0, data.as_ptr().cast(), data.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_and_the_hoster_compute_the_standard_crc32c() {
        // RFC 3720's check value of "123456789".
        assert_eq!(generator_crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        const READ_SIZE: usize = 1 << 20;
        let mut data = vec![0u8; 3 * READ_SIZE + 13];
        let mut x = 0x9e37_79b9_u32;
        for b in &mut data {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        // 24 KiB: three stripes of the shim's three-way CRC.
        for len in [
            0,
            1,
            7,
            8,
            9,
            4095,
            24_575,
            24_576,
            24_577,
            49_159,
            READ_SIZE + 1,
            data.len(),
        ] {
            assert_eq!(
                generator_crc32c(&data[..len]),
                crc32c::crc32c(&data[..len]),
                "length {len}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.sst");
        std::fs::write(&path, &data).unwrap();
        let read = file_crc32c(&path).unwrap();
        assert_eq!(read.bytes, data.len() as u64);
        assert_eq!(read.crc32c, crc32c::crc32c(&data));
        data[READ_SIZE + 5] ^= 1;
        std::fs::write(&path, &data).unwrap();
        assert_ne!(file_crc32c(&path).unwrap().crc32c, read.crc32c);
        assert!(file_crc32c(&dir.path().join("missing.sst")).is_err());
    }

    #[test]
    fn only_a_four_byte_crc32c_is_read_as_one() {
        let c = |name: &str, value: &[u8]| FileChecksum {
            func_name: name.into(),
            value: value.to_vec(),
        };
        assert_eq!(
            c(CRC32C_FUNC_NAME, &[0xe3, 0x06, 0x92, 0x83]).crc32c(),
            Some(0xe306_9283)
        );
        assert_eq!(c(CRC32C_FUNC_NAME, &[1, 2, 3]).crc32c(), None);
        assert_eq!(c("FileChecksumSha1", &[1, 2, 3, 4]).crc32c(), None);
        assert_eq!(c("", &[]).crc32c(), None);
    }
}
