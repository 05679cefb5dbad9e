// Options the hoster's farm client changes that RocksDB's C API cannot:
// what flushes write while the rest of the levels keep theirs.

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

// Level 0's compression as `opts` stands: what flushes write.
unsigned char farm_options_flush_compression(const rocksdb_options_t* opts) noexcept {
  const Options& o = opts->rep;
  return static_cast<unsigned char>(o.compression_per_level.empty() ? o.compression
                                                                    : o.compression_per_level[0]);
}

}  // extern "C"
