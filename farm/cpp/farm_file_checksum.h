// The file checksum a worker writes into every output's metadata: RocksDB's
// own "FileChecksumCrc32c" (the CRC32C of the whole file, 4 bytes big
// endian), computed while the file is written, in hardware where the CPU
// has SSE4.2. The hoster reads each output once and compares
// (farm_file_crc32c, the same CRC over the file as it reads it).
#ifndef FARM_FILE_CHECKSUM_H
#define FARM_FILE_CHECKSUM_H

#include <cstddef>
#include <cstdint>
#include <memory>

#include "rocksdb/file_checksum.h"

namespace farm {

// The name RocksDB's FileChecksumGenCrc32c records with each checksum.
inline constexpr const char* kCrc32cFuncName = "FileChecksumCrc32c";

// The standard CRC32C of `n` bytes at `data`, continuing `crc` (the value
// RocksDB's crc32c::Extend gives).
uint32_t crc32c_extend(uint32_t crc, const char* data, size_t n) noexcept;

// The factory an output is checksummed with: the DB's own when it has one of
// another kind; the farm's hardware CRC32C when it has none or RocksDB's
// CRC32C one (the same values, recorded under the same name).
std::shared_ptr<ROCKSDB_NAMESPACE::FileChecksumGenFactory> output_checksum_factory(
    const std::shared_ptr<ROCKSDB_NAMESPACE::FileChecksumGenFactory>& db_factory);

}  // namespace farm

#endif  // FARM_FILE_CHECKSUM_H
