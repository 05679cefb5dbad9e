// The zipserver's C++ half (zipserver/src/codec/).
//
// Client side: `FarmZipServer`, a CompressionManager registered by name in
// ObjectLibrary::Default() and selected with `compression_manager=FarmZipServer`.
// It wraps RocksDB's built-in V2 manager and keeps its CompatibilityName(), so
// the SSTs it writes are plain built-in SSTs. Its compressor hands each block
// to a transport installed from Rust (which sends it to the zipserver); when the
// transport declines (unreachable, too slow, refused) the wrapped built-in
// compressor does the work in-process.
//
// Server side: a built-in V2 compressor created from the same parameters, so
// the bytes a client gets back are exactly the built-in compressor's.
//
// Every extern "C" function is noexcept and reports failure through `errptr`
// (farm/cpp/farm_guard.h): no C++ exception crosses into Rust.

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "farm_guard.h"
#include "rocksdb/advanced_compression.h"
#include "rocksdb/utilities/object_registry.h"

using ROCKSDB_NAMESPACE::CacheEntryRole;
using ROCKSDB_NAMESPACE::CompressionManager;
using ROCKSDB_NAMESPACE::CompressionManagerWrapper;
using ROCKSDB_NAMESPACE::CompressionOptions;
using ROCKSDB_NAMESPACE::CompressionType;
using ROCKSDB_NAMESPACE::Compressor;
using ROCKSDB_NAMESPACE::Decompressor;
using ROCKSDB_NAMESPACE::FilterBuildingContext;
using ROCKSDB_NAMESPACE::ObjectLibrary;
using ROCKSDB_NAMESPACE::Slice;
using ROCKSDB_NAMESPACE::Status;

extern "C" {

// What decides the built-in compressor's output: the compression type and
// the CompressionOptions fields the built-in compressors read.
struct zipserver_params {
  uint8_t type;
  uint8_t checksum;
  int32_t level;
  int32_t window_bits;
  int32_t strategy;
  uint32_t max_dict_bytes;
  uint32_t zstd_max_train_bytes;
  uint32_t parallel_threads;
  uint32_t max_compressed_bytes_per_kb;
};

// Compresses `in` remotely into `out` (capacity `*out_size`). Returns 1 with
// `*out_size` and `*out_type` set as Compressor::CompressBlock would, or 0
// when the block must be compressed in-process.
typedef int (*zipserver_transport_fn)(const zipserver_params* params,
                                      const char* in, size_t in_len, char* out,
                                      size_t* out_size, uint8_t* out_type);

}  // extern "C"

namespace {

constexpr const char* kManagerName = "FarmZipServer";

std::atomic<zipserver_transport_fn> g_transport{nullptr};
// Blocks of one table builder that may be at the zipserver at once.
std::atomic<uint32_t> g_in_flight{0};
// Blocks that reached a FarmZipServer compressor, remote or not.
std::atomic<uint64_t> g_blocks{0};

zipserver_params params_of(const CompressionOptions& o, CompressionType type) {
  zipserver_params p{};
  p.type = static_cast<uint8_t>(type);
  p.checksum = o.checksum ? 1 : 0;
  p.level = o.level;
  p.window_bits = o.window_bits;
  p.strategy = o.strategy;
  p.max_dict_bytes = o.max_dict_bytes;
  p.zstd_max_train_bytes = o.zstd_max_train_bytes;
  p.parallel_threads = o.parallel_threads;
  p.max_compressed_bytes_per_kb =
      static_cast<uint32_t>(o.max_compressed_bytes_per_kb);
  return p;
}

CompressionOptions options_of(const zipserver_params& p) {
  CompressionOptions o;
  o.checksum = p.checksum != 0;
  o.level = p.level;
  o.window_bits = p.window_bits;
  o.strategy = p.strategy;
  o.max_dict_bytes = p.max_dict_bytes;
  o.zstd_max_train_bytes = p.zstd_max_train_bytes;
  o.parallel_threads = p.parallel_threads;
  o.max_compressed_bytes_per_kb = static_cast<int>(p.max_compressed_bytes_per_kb);
  return o;
}

// Sends blocks to the zipserver; the wrapped built-in compressor is the
// in-process fallback and owns the working areas.
class ZipCompressor final : public Compressor {
 public:
  ZipCompressor(std::unique_ptr<Compressor> inner, zipserver_params params)
      : inner_(std::move(inner)), params_(params) {}

  const char* Name() const override { return "FarmZipCompressor"; }
  DictConfig GetDictGuidance(CacheEntryRole role) const override {
    return inner_->GetDictGuidance(role);
  }
  Slice GetSerializedDict() const override { return inner_->GetSerializedDict(); }
  CompressionType GetPreferredCompressionType() const override {
    return inner_->GetPreferredCompressionType();
  }
  // A block at the zipserver costs this process a wait, not CPU: ask
  // RocksDB's parallel compression for enough threads to keep several
  // blocks in flight, so the table builder does not stall on each round
  // trip (RocksDB lets a Compressor override parallel_threads this way).
  uint32_t GetRecommendedParallelThreads() const override {
    uint32_t in_flight = g_in_flight.load(std::memory_order_relaxed);
    if (in_flight > 1 && g_transport.load(std::memory_order_relaxed) != nullptr) {
      return in_flight;
    }
    return inner_->GetRecommendedParallelThreads();
  }
  std::unique_ptr<Compressor> Clone() const override {
    return std::make_unique<ZipCompressor>(inner_->Clone(), params_);
  }
  // A compressor specialized with a dictionary stays in-process: the
  // zipserver compresses without dictionaries.
  std::unique_ptr<Compressor> MaybeCloneSpecialized(
      CacheEntryRole role, DictConfigArgs&& dict) const override {
    return inner_->MaybeCloneSpecialized(role, std::move(dict));
  }
  ManagedWorkingArea ObtainWorkingArea() override {
    return inner_->ObtainWorkingArea();
  }
  std::shared_ptr<Decompressor> GetOptimizedDecompressor() const override {
    return inner_->GetOptimizedDecompressor();
  }

  Status CompressBlock(Slice data, char* out, size_t* out_size,
                       CompressionType* out_type,
                       ManagedWorkingArea* wa) override {
    g_blocks.fetch_add(1, std::memory_order_relaxed);
    zipserver_transport_fn transport = g_transport.load(std::memory_order_acquire);
    // RocksDB may offer no output room at all (a NULL buffer of size 0, when
    // max_compressed_bytes_per_kb leaves none for a small block): the
    // built-in compressor declines such a block without touching `out`.
    if (transport != nullptr && out != nullptr && *out_size > 0) {
      size_t size = *out_size;
      uint8_t type = 0;
      if (transport(&params_, data.data(), data.size(), out, &size, &type) == 1) {
        *out_size = size;
        *out_type = static_cast<CompressionType>(type);
        return Status::OK();
      }
    }
    return inner_->CompressBlock(data, out, out_size, out_type, wa);
  }

 private:
  std::unique_ptr<Compressor> inner_;
  zipserver_params params_;
};

std::unique_ptr<Compressor> wrap(std::unique_ptr<Compressor> inner,
                                 const CompressionOptions& opts) {
  if (inner == nullptr) return nullptr;  // no compression: nothing to send
  zipserver_params p = params_of(opts, inner->GetPreferredCompressionType());
  return std::make_unique<ZipCompressor>(std::move(inner), p);
}

class ZipManager final : public CompressionManagerWrapper {
 public:
  ZipManager()
      : CompressionManagerWrapper(
            ROCKSDB_NAMESPACE::GetBuiltinV2CompressionManager()) {}
  const char* Name() const override { return kManagerName; }
  std::unique_ptr<Compressor> GetCompressorForSST(
      const FilterBuildingContext& ctx, const CompressionOptions& opts,
      CompressionType preferred) override {
    return wrap(wrapped_->GetCompressorForSST(ctx, opts, preferred), opts);
  }
  std::unique_ptr<Compressor> GetCompressor(const CompressionOptions& opts,
                                            CompressionType type) override {
    return wrap(wrapped_->GetCompressor(opts, type), opts);
  }
};

// A built-in compressor with its working area, for one zipserver thread.
struct ServerCompressor {
  std::unique_ptr<Compressor> compressor;
  Compressor::ManagedWorkingArea working_area;
};

}  // namespace

extern "C" {

// Registers FarmZipServer (once per process) and installs `transport`
// (NULL: every block is compressed in-process); `in_flight` > 1 asks RocksDB
// for that many parallel compression threads per table builder. Returns the
// name, or NULL with `errptr` set.
const char* zipserver_register(zipserver_transport_fn transport,
                               uint32_t in_flight, char** errptr) noexcept {
  static std::once_flag once;
  bool ok = farm::guarded(errptr, [] {
    std::call_once(once, [] {
      ObjectLibrary::Default()->AddFactory<CompressionManager>(
          kManagerName,
          [](const std::string&, std::unique_ptr<CompressionManager>* guard,
             std::string*) {
            guard->reset(new ZipManager());
            return guard->get();
          });
    });
  });
  if (!ok) return nullptr;
  g_in_flight.store(in_flight, std::memory_order_relaxed);
  g_transport.store(transport, std::memory_order_release);
  return kManagerName;
}

// Blocks that reached a FarmZipServer compressor in this process.
uint64_t zipserver_blocks_seen() noexcept {
  return g_blocks.load(std::memory_order_relaxed);
}

// A built-in compressor for `params`; NULL with `*errptr` unset when those
// parameters mean "no compression".
void* zipserver_compressor_new(const zipserver_params* params,
                               char** errptr) noexcept {
  ServerCompressor* out = nullptr;
  farm::guarded(errptr, [&] {
    auto c = ROCKSDB_NAMESPACE::GetBuiltinV2CompressionManager()->GetCompressor(
        options_of(*params), static_cast<CompressionType>(params->type));
    if (c == nullptr) return;
    auto s = std::make_unique<ServerCompressor>();
    s->working_area = c->ObtainWorkingArea();
    s->compressor = std::move(c);
    out = s.release();
  });
  return out;
}

// Compresses as Compressor::CompressBlock. Returns 1 on success.
int zipserver_compress(void* handle, const char* in, size_t in_len, char* out,
                       size_t* out_size, uint8_t* out_type,
                       char** errptr) noexcept {
  int ok = 0;
  farm::guarded(errptr, [&] {
    auto* s = static_cast<ServerCompressor*>(handle);
    CompressionType type = ROCKSDB_NAMESPACE::kNoCompression;
    Status st = s->compressor->CompressBlock(Slice(in, in_len), out, out_size,
                                             &type, &s->working_area);
    if (!st.ok()) {
      farm::save_error(errptr, "compression failed: " + st.ToString());
      return;
    }
    *out_type = static_cast<uint8_t>(type);
    ok = 1;
  });
  return ok;
}

void zipserver_compressor_free(void* handle) noexcept {
  delete static_cast<ServerCompressor*>(handle);
}

}  // extern "C"
