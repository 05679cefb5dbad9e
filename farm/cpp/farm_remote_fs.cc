// The worker's RocksDB FileSystem for the HTTP storage mode
// (docs/REMOTE_STORAGE.md, farm/src/rocks/remote_fs.rs).
//
// A FileSystemWrapper over the default file system. Paths below
// "/.farm-remote/<id>/" name files of a DB the worker cannot mount: they are
// answered by the Rust side (the RemoteSource registered under <id>) through
// three callbacks installed once (size, read, list). Every other path passes
// through unchanged: the output directory and the info log are local.
//
// A DB whose override planned it (plan_manifest_trim) has its MANIFEST
// served trimmed to what the job's compaction needs (farm_manifest_trim.cc).
//
// Below the prefix the DB is read-only: every write, rename, delete, link or
// lock answers NotSupported, so nothing RocksDB does can reach the hoster's
// files but reads of files in the job.
//
// The callbacks never throw (Rust catches its panics at the boundary) and
// report failure through their return value and a malloc'ed message.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "farm_guard.h"
#include "farm_inputs_only.h"
#include "farm_manifest_trim.h"
#include "farm_remote_fs.h"
#include "rocksdb/c.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"

using ROCKSDB_NAMESPACE::CompactionServiceOptionsOverride;
using ROCKSDB_NAMESPACE::Env;
using ROCKSDB_NAMESPACE::FileOptions;
using ROCKSDB_NAMESPACE::FileSystem;
using ROCKSDB_NAMESPACE::FileSystemWrapper;
using ROCKSDB_NAMESPACE::FSDirectory;
using ROCKSDB_NAMESPACE::FSRandomAccessFile;
using ROCKSDB_NAMESPACE::FSSequentialFile;
using ROCKSDB_NAMESPACE::FSWritableFile;
using ROCKSDB_NAMESPACE::IODebugContext;
using ROCKSDB_NAMESPACE::IOOptions;
using ROCKSDB_NAMESPACE::IOStatus;
using ROCKSDB_NAMESPACE::Slice;

// The layout RocksDB's db/c.cc keeps private (as in farm_shim.cc).
struct rocksdb_compaction_service_options_override_t {
  CompactionServiceOptionsOverride rep;
};

extern "C" {
// The size of the file at `path` (a full path below the prefix): >= 0, or
// -1 when the job has no such file.
typedef int64_t (*farm_remote_size_fn)(const char* path, size_t path_len);
// Reads up to `n` bytes at `offset` into `buf`: the count read (0 at the
// end), or -1 with `*errptr` set.
typedef int64_t (*farm_remote_read_fn)(const char* path, size_t path_len, uint64_t offset,
                                       size_t n, char* buf, char** errptr);
// The names in the directory `path`, '\n'-separated, malloc'ed (NULL when
// it is not a directory of a job).
typedef char* (*farm_remote_list_fn)(const char* path, size_t path_len);
// 1 when the job lets the file at `path` be read, else 0.
typedef int (*farm_remote_readable_fn)(const char* path, size_t path_len);
}

namespace {

const char kPrefix[] = "/.farm-remote/";

struct Callbacks {
  farm_remote_size_fn size = nullptr;
  farm_remote_read_fn read = nullptr;
  farm_remote_list_fn list = nullptr;
  farm_remote_readable_fn readable = nullptr;
};

Callbacks& callbacks() {
  static Callbacks c;
  return c;
}

bool is_remote(const std::string& path) {
  return path.compare(0, sizeof(kPrefix) - 1, kPrefix) == 0;
}

IOStatus read_only(const std::string& path) {
  return IOStatus::NotSupported("the remote DB is read-only to the worker", path);
}

IOStatus not_found(const std::string& path) {
  return IOStatus::PathNotFound("not a file of this job", path);
}

// One read through the callback: exactly what it returned, or an IOError.
IOStatus remote_read(const std::string& path, uint64_t offset, size_t n, char* scratch,
                     size_t* got) {
  char* err = nullptr;
  int64_t r = callbacks().read(path.data(), path.size(), offset, n, scratch, &err);
  if (r < 0) {
    std::string msg = err != nullptr ? err : "remote read failed";
    free(err);
    return IOStatus::IOError(path, msg);
  }
  *got = static_cast<size_t>(r);
  return IOStatus::OK();
}

// ---- The trimmed MANIFEST (farm_manifest_trim.cc) ----

// What a planned DB's MANIFEST is served as: built on its first open.
struct ManifestPlan {
  const ROCKSDB_NAMESPACE::Comparator* ucmp = nullptr;
  std::string cf_name;
  std::set<uint64_t> inputs;
  std::mutex mu;
  std::string name;                             // the MANIFEST's path, once opened
  std::shared_ptr<const std::string> trimmed;   // null: served whole
  farm::Trimmed report;                         // without its bytes
};

std::mutex& plans_mu() {
  static std::mutex mu;
  return mu;
}

// By DB directory ("/.farm-remote/<id>").
std::unordered_map<std::string, std::shared_ptr<ManifestPlan>>& plans() {
  static std::unordered_map<std::string, std::shared_ptr<ManifestPlan>> p;
  return p;
}

std::shared_ptr<ManifestPlan> plan_of(const std::string& db_dir) {
  std::lock_guard<std::mutex> l(plans_mu());
  auto it = plans().find(db_dir);
  return it == plans().end() ? nullptr : it->second;
}

// The whole of a remote file, through the callbacks.
IOStatus read_whole(const std::string& path, std::string* out) {
  int64_t size = callbacks().size(path.data(), path.size());
  if (size < 0) return not_found(path);
  out->resize(static_cast<size_t>(size));
  size_t at = 0;
  while (at < out->size()) {
    size_t got = 0;
    IOStatus s = remote_read(path, at, out->size() - at, out->data() + at, &got);
    if (!s.ok()) return s;
    if (got == 0) break;
    at += got;
  }
  out->resize(at);
  return IOStatus::OK();
}

// Trims the MANIFEST `plan.name` of the DB at `db_dir` into the plan.
void build_trimmed(ManifestPlan& plan) {
  std::string whole;
  IOStatus s = read_whole(plan.name, &whole);
  if (!s.ok()) {
    plan.report.why_not = "reading it failed: " + s.ToString();
    return;
  }
  farm::Trimmed t = farm::trim_manifest(std::make_shared<const std::string>(std::move(whole)),
                                        plan.ucmp, plan.cf_name, plan.inputs);
  if (!t.bytes.empty()) plan.trimmed = std::make_shared<const std::string>(std::move(t.bytes));
  t.bytes.clear();
  plan.report = std::move(t);
}

// The trimmed bytes to serve for `path`, or null to serve the file itself.
std::shared_ptr<const std::string> trimmed_manifest(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || path.compare(slash + 1, 9, "MANIFEST-") != 0) return nullptr;
  std::string db_dir = path.substr(0, slash);
  std::shared_ptr<ManifestPlan> plan = plan_of(db_dir);
  if (plan == nullptr) return nullptr;
  std::lock_guard<std::mutex> l(plan->mu);
  if (plan->name.empty()) {
    plan->name = path;
    // The options refused it (trim_refusal): served whole.
    if (plan->ucmp == nullptr) return nullptr;
    // Nothing may throw into RocksDB: a failure serves the MANIFEST whole.
    try {
      build_trimmed(*plan);
    } catch (const std::exception& e) {
      plan->trimmed = nullptr;
      plan->report.why_not = std::string("trimming failed: ") + e.what();
    } catch (...) {
      plan->trimmed = nullptr;
      plan->report.why_not = "trimming failed";
    }
  }
  return plan->name == path ? plan->trimmed : nullptr;
}

class TrimmedRandomAccessFile : public FSRandomAccessFile {
 public:
  explicit TrimmedRandomAccessFile(std::shared_ptr<const std::string> data)
      : data_(std::move(data)) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) const override {
    size_t from = std::min<uint64_t>(offset, data_->size());
    size_t take = std::min(n, data_->size() - from);
    memcpy(scratch, data_->data() + from, take);
    *result = Slice(scratch, take);
    return IOStatus::OK();
  }

 private:
  std::shared_ptr<const std::string> data_;
};

class RemoteSequentialFile : public FSSequentialFile {
 public:
  explicit RemoteSequentialFile(std::string path) : path_(std::move(path)) {}

  IOStatus Read(size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) override {
    size_t got = 0;
    IOStatus s = remote_read(path_, offset_, n, scratch, &got);
    if (!s.ok()) return s;
    offset_ += got;
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }

  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions&, Slice* result,
                          char* scratch, IODebugContext*) override {
    size_t got = 0;
    IOStatus s = remote_read(path_, offset, n, scratch, &got);
    if (!s.ok()) return s;
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }

  IOStatus Skip(uint64_t n) override {
    offset_ += n;
    return IOStatus::OK();
  }

 private:
  std::string path_;
  uint64_t offset_ = 0;
};

class RemoteRandomAccessFile : public FSRandomAccessFile {
 public:
  explicit RemoteRandomAccessFile(std::string path) : path_(std::move(path)) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions&, Slice* result, char* scratch,
                IODebugContext*) const override {
    size_t got = 0;
    IOStatus s = remote_read(path_, offset, n, scratch, &got);
    if (!s.ok()) return s;
    *result = Slice(scratch, got);
    return IOStatus::OK();
  }

  IOStatus Prefetch(uint64_t, size_t, const IOOptions&, IODebugContext*) override {
    // The source reads ahead itself; RocksDB then falls back to reading.
    return IOStatus::NotSupported("prefetch");
  }

 private:
  std::string path_;
};

class RemoteDirectory : public FSDirectory {
 public:
  IOStatus Fsync(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
  IOStatus Close(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
};

class RemoteFileSystem : public FileSystemWrapper {
 public:
  RemoteFileSystem() : FileSystemWrapper(FileSystem::Default()) {}

  static const char* kClassName() { return "FarmRemoteFileSystem"; }
  const char* Name() const override { return kClassName(); }

  IOStatus NewSequentialFile(const std::string& f, const FileOptions& o,
                             std::unique_ptr<FSSequentialFile>* r,
                             IODebugContext* dbg) override {
    if (!is_remote(f)) return target()->NewSequentialFile(f, o, r, dbg);
    if (size_of(f) < 0) return not_found(f);
    if (auto trimmed = trimmed_manifest(f)) {
      *r = farm::string_file(std::move(trimmed));
      return IOStatus::OK();
    }
    r->reset(new RemoteSequentialFile(f));
    return IOStatus::OK();
  }

  IOStatus NewRandomAccessFile(const std::string& f, const FileOptions& o,
                               std::unique_ptr<FSRandomAccessFile>* r,
                               IODebugContext* dbg) override {
    if (!is_remote(f)) return target()->NewRandomAccessFile(f, o, r, dbg);
    if (size_of(f) < 0) return not_found(f);
    if (auto trimmed = trimmed_manifest(f)) {
      r->reset(new TrimmedRandomAccessFile(std::move(trimmed)));
      return IOStatus::OK();
    }
    r->reset(new RemoteRandomAccessFile(f));
    return IOStatus::OK();
  }

  IOStatus FileExists(const std::string& f, const IOOptions& o, IODebugContext* dbg) override {
    if (!is_remote(f)) return target()->FileExists(f, o, dbg);
    if (size_of(f) >= 0 || is_dir(f)) return IOStatus::OK();
    return IOStatus::NotFound(f);
  }

  IOStatus GetFileSize(const std::string& f, const IOOptions& o, uint64_t* size,
                       IODebugContext* dbg) override {
    if (!is_remote(f)) return target()->GetFileSize(f, o, size, dbg);
    int64_t s = size_of(f);
    if (s < 0) return not_found(f);
    auto trimmed = trimmed_manifest(f);
    *size = trimmed ? trimmed->size() : static_cast<uint64_t>(s);
    return IOStatus::OK();
  }

  IOStatus GetFileModificationTime(const std::string& f, const IOOptions& o, uint64_t* t,
                                   IODebugContext* dbg) override {
    if (!is_remote(f)) return target()->GetFileModificationTime(f, o, t, dbg);
    if (size_of(f) < 0) return not_found(f);
    *t = 0;
    return IOStatus::OK();
  }

  IOStatus GetChildren(const std::string& dir, const IOOptions& o,
                       std::vector<std::string>* out, IODebugContext* dbg) override {
    if (!is_remote(dir)) return target()->GetChildren(dir, o, out, dbg);
    char* names = callbacks().list(dir.data(), dir.size());
    if (names == nullptr) return not_found(dir);
    out->clear();
    const char* p = names;
    while (*p != '\0') {
      const char* end = strchr(p, '\n');
      if (end == nullptr) end = p + strlen(p);
      if (end > p) out->emplace_back(p, end - p);
      p = *end == '\0' ? end : end + 1;
    }
    free(names);
    return IOStatus::OK();
  }

  IOStatus NewDirectory(const std::string& name, const IOOptions& o,
                        std::unique_ptr<FSDirectory>* r, IODebugContext* dbg) override {
    if (!is_remote(name)) return target()->NewDirectory(name, o, r, dbg);
    if (!is_dir(name)) return not_found(name);
    r->reset(new RemoteDirectory());
    return IOStatus::OK();
  }

  IOStatus IsDirectory(const std::string& path, const IOOptions& o, bool* is,
                       IODebugContext* dbg) override {
    if (!is_remote(path)) return target()->IsDirectory(path, o, is, dbg);
    if (is_dir(path)) {
      *is = true;
      return IOStatus::OK();
    }
    if (size_of(path) < 0) return not_found(path);
    *is = false;
    return IOStatus::OK();
  }

  IOStatus GetAbsolutePath(const std::string& p, const IOOptions& o, std::string* out,
                           IODebugContext* dbg) override {
    if (!is_remote(p)) return target()->GetAbsolutePath(p, o, out, dbg);
    *out = p;
    return IOStatus::OK();
  }

  // Everything that would change the remote DB.
  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<FSWritableFile>* r, IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->NewWritableFile(f, o, r, dbg);
  }
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<FSWritableFile>* r,
                              IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->ReopenWritableFile(f, o, r, dbg);
  }
  IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                             const FileOptions& o, std::unique_ptr<FSWritableFile>* r,
                             IODebugContext* dbg) override {
    if (is_remote(f) || is_remote(old)) return read_only(f);
    return target()->ReuseWritableFile(f, old, o, r, dbg);
  }
  IOStatus NewRandomRWFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<ROCKSDB_NAMESPACE::FSRandomRWFile>* r,
                           IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->NewRandomRWFile(f, o, r, dbg);
  }
  IOStatus DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->DeleteFile(f, o, dbg);
  }
  IOStatus Truncate(const std::string& f, size_t size, const IOOptions& o,
                    IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->Truncate(f, size, o, dbg);
  }
  IOStatus CreateDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) override {
    if (is_remote(d)) return read_only(d);
    return target()->CreateDir(d, o, dbg);
  }
  IOStatus CreateDirIfMissing(const std::string& d, const IOOptions& o,
                              IODebugContext* dbg) override {
    if (is_remote(d)) {
      // The DB directory exists (remotely): nothing to create.
      return is_dir(d) ? IOStatus::OK() : read_only(d);
    }
    return target()->CreateDirIfMissing(d, o, dbg);
  }
  IOStatus DeleteDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) override {
    if (is_remote(d)) return read_only(d);
    return target()->DeleteDir(d, o, dbg);
  }
  IOStatus RenameFile(const std::string& s, const std::string& t, const IOOptions& o,
                      IODebugContext* dbg) override {
    if (is_remote(s) || is_remote(t)) return read_only(s);
    return target()->RenameFile(s, t, o, dbg);
  }
  IOStatus LinkFile(const std::string& s, const std::string& t, const IOOptions& o,
                    IODebugContext* dbg) override {
    if (is_remote(s) || is_remote(t)) return read_only(s);
    return target()->LinkFile(s, t, o, dbg);
  }
  IOStatus LockFile(const std::string& f, const IOOptions& o, ROCKSDB_NAMESPACE::FileLock** l,
                    IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->LockFile(f, o, l, dbg);
  }
  IOStatus NewLogger(const std::string& f, const IOOptions& o,
                     std::shared_ptr<ROCKSDB_NAMESPACE::Logger>* r,
                     IODebugContext* dbg) override {
    if (is_remote(f)) return read_only(f);
    return target()->NewLogger(f, o, r, dbg);
  }

 private:
  static int64_t size_of(const std::string& f) {
    return callbacks().size(f.data(), f.size());
  }
  // A job's DB directory is "/.farm-remote/<id>": the list callback answers
  // for it (and only for it).
  static bool is_dir(const std::string& d) {
    char* names = callbacks().list(d.data(), d.size());
    if (names == nullptr) return false;
    free(names);
    return true;
  }
};

Env* remote_env() {
  // Created once and never destroyed: overrides hold a raw Env* and may be
  // used until the process exits.
  static Env* env = [] {
    std::shared_ptr<FileSystem> fs = std::make_shared<RemoteFileSystem>();
    return ROCKSDB_NAMESPACE::NewCompositeEnv(fs).release();
  }();
  return env;
}

}  // namespace

namespace farm {

bool is_remote_path(const std::string& path) noexcept { return is_remote(path); }

bool remote_file_readable(const std::string& path) noexcept {
  farm_remote_readable_fn readable = callbacks().readable;
  return readable != nullptr && readable(path.data(), path.size()) == 1;
}

void plan_manifest_trim(const std::string& db_dir,
                        const ROCKSDB_NAMESPACE::ColumnFamilyOptions& options,
                        const std::string& cf_name, const std::set<uint64_t>& inputs) {
  auto plan = std::make_shared<ManifestPlan>();
  plan->cf_name = cf_name;
  plan->inputs = inputs;
  std::string refusal = trim_refusal(options);
  if (refusal.empty()) {
    plan->ucmp = options.comparator;
  } else {
    plan->report.why_not = refusal;
  }
  std::lock_guard<std::mutex> l(plans_mu());
  plans()[db_dir] = std::move(plan);
}

}  // namespace farm

extern "C" {

// Installs the Rust side's callbacks; the first call wins (they are plain
// functions of the binary, the same on every call). Returns 1.
int farm_remote_install(farm_remote_size_fn size, farm_remote_read_fn read,
                        farm_remote_list_fn list, farm_remote_readable_fn readable) noexcept {
  Callbacks& c = callbacks();
  if (c.size == nullptr) {
    c.size = size;
    c.read = read;
    c.list = list;
    c.readable = readable;
    // The default column family of a remote DB opens with the factory of
    // its OPTIONS file: see farm_inputs_only.cc.
    farm::shadow_block_based_table();
  }
  return 1;
}

// Makes the override read the DB through the remote file system, with the
// options and the table factory (farm_inputs_only.cc) that keep the
// secondary open to the job's files: see docs/REMOTE_STORAGE.md. Returns 1, or 0 with `errptr` set when the
// callbacks were never installed.
int farm_override_use_remote_env(rocksdb_compaction_service_options_override_t* ov,
                                 char** errptr) noexcept {
  int ok = 0;
  farm::guarded(errptr, [&] {
    if (callbacks().size == nullptr) {
      farm::save_error(errptr, "the remote file system's callbacks are not installed");
      return;
    }
    ov->rep.env = remote_env();
    ov->rep.options_map["verify_sst_unique_id_in_manifest"] = "false";
    ov->rep.options_map["skip_stats_update_on_db_open"] = "true";
    ov->rep.table_factory = farm::inputs_only(ov->rep.table_factory);
    ok = 1;
  });
  return ok;
}

// The remote env, for loading an OPTIONS file below the prefix.
void* farm_remote_env() noexcept { return remote_env(); }

// Ends the MANIFEST plan of the remote DB at `db_dir` (its job is over).
void farm_remote_forget(const char* db_dir) noexcept {
  std::lock_guard<std::mutex> l(plans_mu());
  plans().erase(db_dir);
}

// How the MANIFEST of the remote DB at `db_dir` was served: 1 trimmed (to
// `*kept` of `*live` tables), 0 whole (`*why` says why, malloc'ed), -1 not
// opened (or never planned).
int farm_remote_trim_report(const char* db_dir, uint64_t* live, uint64_t* kept,
                            char** why) noexcept {
  std::shared_ptr<ManifestPlan> plan = plan_of(db_dir);
  if (plan == nullptr) return -1;
  std::lock_guard<std::mutex> l(plan->mu);
  if (plan->name.empty()) return -1;
  *live = plan->report.live;
  *kept = plan->report.kept;
  if (plan->trimmed != nullptr) return 1;
  *why = farm::dup_bytes(plan->report.why_not);
  return 0;
}

}  // extern "C"
