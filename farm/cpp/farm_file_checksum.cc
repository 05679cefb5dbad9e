// The farm's CRC32C file checksum generator (see farm_file_checksum.h).
//
// RocksDB's own FileChecksumGenCrc32c gives the same values, but RocksDB is
// compiled for baseline x86-64 here, so its CRC32C runs in software (about
// 1 GiB/s); this one uses the SSE4.2 instruction when the CPU has it (three
// streams at once over large buffers), and RocksDB's function otherwise.

#include "farm_file_checksum.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "farm_guard.h"

#include "util/crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace farm {
namespace {

// Large buffers are taken as three stripes of kStripe bytes at a time, each
// its own chain of crc32 instructions, so the CPU runs three at once (the
// instruction issues every cycle but takes three). The register is linear
// in what it starts from, so the three are joined exactly:
// crc(A B) = shift(crc(A)) ^ crc0(B), where crc0 starts from 0 and shift is
// what kStripe zero bytes do to a register.
constexpr size_t kStripe = 8 << 10;

#if defined(__x86_64__)
// The CRC32C register (no inversions) after `n` bytes at `p`, one 8-byte
// step at a time: each step waits for the one before (3 cycles).
__attribute__((target("sse4.2"))) uint32_t crc_register(uint32_t reg, const char* p,
                                                        size_t n) noexcept {
  uint64_t c = reg;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, static_cast<uint8_t>(*p));
    ++p;
    --n;
  }
  return c32;
}

// `shift` as four tables, one per byte of the register.
struct StripeShift {
  uint32_t table[4][256];

  uint32_t operator()(uint32_t reg) const noexcept {
    return table[0][reg & 0xff] ^ table[1][(reg >> 8) & 0xff] ^
           table[2][(reg >> 16) & 0xff] ^ table[3][reg >> 24];
  }
};

__attribute__((target("sse4.2"))) StripeShift make_stripe_shift() noexcept {
  uint32_t bit[32];
  for (int i = 0; i < 32; ++i) {
    uint64_t c = uint64_t{1} << i;
    for (size_t k = 0; k < kStripe; k += 8) c = _mm_crc32_u64(c, 0);
    bit[i] = static_cast<uint32_t>(c);
  }
  StripeShift s{};
  for (int byte = 0; byte < 4; ++byte) {
    for (int v = 0; v < 256; ++v) {
      uint32_t out = 0;
      for (int b = 0; b < 8; ++b) {
        if ((v >> b) & 1) out ^= bit[8 * byte + b];
      }
      s.table[byte][v] = out;
    }
  }
  return s;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(uint32_t crc, const char* p,
                                                        size_t n) noexcept {
  uint32_t reg = ~crc;
  if (n >= 3 * kStripe) {
    static const StripeShift shift = make_stripe_shift();
    do {
      uint64_t a = reg, b = 0, c = 0;
      for (size_t i = 0; i < kStripe; i += 8) {
        uint64_t x, y, z;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + kStripe + i, 8);
        memcpy(&z, p + 2 * kStripe + i, 8);
        a = _mm_crc32_u64(a, x);
        b = _mm_crc32_u64(b, y);
        c = _mm_crc32_u64(c, z);
      }
      reg = shift(shift(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^
            static_cast<uint32_t>(c);
      p += 3 * kStripe;
      n -= 3 * kStripe;
    } while (n >= 3 * kStripe);
  }
  return ~crc_register(reg, p, n);
}

bool have_sse42() noexcept {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}
#endif

class Crc32cGenerator : public ROCKSDB_NAMESPACE::FileChecksumGenerator {
 public:
  void Update(const char* data, size_t n) override { crc_ = crc32c_extend(crc_, data, n); }

  void Finalize() override {
    // Big endian, as RocksDB's FileChecksumGenCrc32c stores it.
    out_.clear();
    for (int shift = 24; shift >= 0; shift -= 8) {
      out_.push_back(static_cast<char>((crc_ >> shift) & 0xff));
    }
  }

  std::string GetChecksum() const override { return out_; }

  const char* Name() const override { return kCrc32cFuncName; }

 private:
  uint32_t crc_ = 0;
  std::string out_;
};

class Crc32cFactory : public ROCKSDB_NAMESPACE::FileChecksumGenFactory {
 public:
  std::unique_ptr<ROCKSDB_NAMESPACE::FileChecksumGenerator> CreateFileChecksumGenerator(
      const ROCKSDB_NAMESPACE::FileChecksumGenContext& context) override {
    const std::string& asked = context.requested_checksum_func_name;
    if (!asked.empty() && asked != kCrc32cFuncName) return nullptr;
    return std::make_unique<Crc32cGenerator>();
  }

  const char* Name() const override { return "FarmFileChecksumGenCrc32cFactory"; }
};

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const char* data, size_t n) noexcept {
#if defined(__x86_64__)
  if (have_sse42()) return crc32c_sse42(crc, data, n);
#endif
  return ROCKSDB_NAMESPACE::crc32c::Extend(crc, data, n);
}

std::shared_ptr<ROCKSDB_NAMESPACE::FileChecksumGenFactory> output_checksum_factory(
    const std::shared_ptr<ROCKSDB_NAMESPACE::FileChecksumGenFactory>& db_factory) {
  if (db_factory != nullptr &&
      strcmp(db_factory->Name(), "FileChecksumGenCrc32cFactory") != 0) {
    return db_factory;
  }
  static const auto farm_factory = std::make_shared<Crc32cFactory>();
  return farm_factory;
}

}  // namespace farm

extern "C" {

// The standard CRC32C of `len` bytes at `data` continuing `crc`: the
// generator's own function.
uint32_t farm_crc32c_extend(uint32_t crc, const char* data, size_t len) noexcept {
  return farm::crc32c_extend(crc, data, len);
}

// The CRC32C of the whole file at `path` and its length: the hoster's check
// of an output. Read 192 KiB at a time (eight rounds of the three stripes:
// few system calls, and the buffer stays in the core's cache between the
// copy and the CRC). Returns 1, or 0 with `errptr` set.
int farm_file_crc32c(const char* path, uint32_t* crc, uint64_t* bytes,
                     char** errptr) noexcept {
  int ok = 0;
  farm::guarded(errptr, [&] {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      farm::save_error(errptr, "failed to open: ", strerror(errno));
      return;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    constexpr size_t kRead = 24 * farm::kStripe;
    std::unique_ptr<char[]> buf(new char[kRead]);
    uint32_t c = 0;
    uint64_t n = 0;
    for (;;) {
      ssize_t got = read(fd, buf.get(), kRead);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        farm::save_error(errptr, "failed to read: ", strerror(errno));
        close(fd);
        return;
      }
      if (got == 0) break;
      c = farm::crc32c_extend(c, buf.get(), static_cast<size_t>(got));
      n += static_cast<uint64_t>(got);
    }
    close(fd);
    *crc = c;
    *bytes = n;
    ok = 1;
  });
  return ok;
}

}  // extern "C"
