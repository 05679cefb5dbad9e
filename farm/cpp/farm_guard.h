// The error convention of every extern "C" function of the farm's C++ shim
// (the same as RocksDB's C API): failure is reported through `errptr`, a
// malloc'ed message the caller frees with farm_free, and no C++ exception
// ever crosses the C boundary: `guarded` catches all of them.
#ifndef FARM_GUARD_H
#define FARM_GUARD_H

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace farm {

// A malloc'ed, NUL-terminated copy of `s` (which may hold NUL bytes), or
// NULL when malloc fails.
inline char* dup_bytes(const std::string& s) noexcept {
  char* out = static_cast<char*>(malloc(s.size() + 1));
  if (out != nullptr) {
    memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
  }
  return out;
}

// Sets `*errptr` to a malloc'ed "<prefix><detail>" (freeing an earlier
// message). Allocates with malloc only, so it is safe in a catch handler.
inline void save_error(char** errptr, const char* prefix,
                       const char* detail = "") noexcept {
  if (errptr == nullptr) return;
  if (*errptr != nullptr) free(*errptr);
  size_t a = strlen(prefix);
  size_t b = strlen(detail);
  char* out = static_cast<char*>(malloc(a + b + 1));
  if (out != nullptr) {
    memcpy(out, prefix, a);
    memcpy(out + a, detail, b + 1);
  }
  *errptr = out;
}

inline void save_error(char** errptr, const std::string& msg) noexcept {
  save_error(errptr, msg.c_str());
}

// Runs `body`, turning a thrown exception into an error message. Returns
// whether the body completed without throwing.
template <typename F>
bool guarded(char** errptr, F&& body) noexcept {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    save_error(errptr, "c++ exception: ", e.what());
  } catch (...) {
    save_error(errptr, "unknown c++ exception");
  }
  return false;
}

// Where a `farm_out` (farm_plugin.h) writes: the std::string RocksDB gave,
// and whether copying into it failed (out of memory), so that the caller
// reports a failure instead of a truncated value. The copy is called from
// plugin code (C or Rust): no exception may leave it.
struct OutString {
  std::string* s;
  bool failed = false;
};

inline void set_out_string(void* ctx, const char* data, size_t len) noexcept {
  auto* o = static_cast<OutString*>(ctx);
  try {
    o->s->assign(data, len);
  } catch (...) {
    o->failed = true;
  }
}

}  // namespace farm

#endif  // FARM_GUARD_H
