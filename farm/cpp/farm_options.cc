// Options the hoster's farm client changes that RocksDB's C API cannot:
// what flushes write while the rest of the levels keep theirs.

#include <algorithm>
#include <cstddef>

#include "rocksdb/options.h"

using ROCKSDB_NAMESPACE::CompressionType;
using ROCKSDB_NAMESPACE::Options;

// Identical to the definition in RocksDB's db/c.cc, which keeps this type
// opaque (the crate `rocksdb` hands it out through `AsRawPtr`).
struct rocksdb_options_t {
  Options rep;
};

extern "C" {

// Makes level 0 (what flushes write) use `type` (a CompressionType value)
// and every other level what it used before: the DB's per-level setting
// when it has one, else its `compression`.
void farm_options_set_flush_compression(rocksdb_options_t* opts, unsigned char type) noexcept {
  Options& o = opts->rep;
  if (o.compression_per_level.empty()) {
    o.compression_per_level.assign(static_cast<size_t>(o.num_levels > 0 ? o.num_levels : 1),
                                   o.compression);
  }
  o.compression_per_level[0] = static_cast<CompressionType>(type);
}

// The compression `opts` gives `level` (level 0: what flushes write): its
// per-level setting (the last one for deeper levels, as RocksDB reads it),
// else its `compression`.
unsigned char farm_options_level_compression(const rocksdb_options_t* opts, size_t level) noexcept {
  const auto& per_level = opts->rep.compression_per_level;
  if (per_level.empty()) return static_cast<unsigned char>(opts->rep.compression);
  return static_cast<unsigned char>(per_level[std::min(level, per_level.size() - 1)]);
}

}  // extern "C"
