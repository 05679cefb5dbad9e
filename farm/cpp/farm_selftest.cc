// A deliberately wrong worker, for scripts/crashtest.sh --selftest only.
//
// With FARM_SELFTEST_DROP_KEYS=<n> in the worker's environment, every
// compaction the worker runs drops every n-th plain value it sees (a
// compaction filter answering kRemove, wrapped around the column family's
// own filter). The outputs are well-formed SSTs whose every checksum is
// valid and whose sizes match the result, so every check of the hoster
// passes: only a reader that knows what the data should be (db_stress's
// expected state) can see the loss. The crash test's self-test sets the
// variable to prove that its verification catches such a worker; nothing
// else sets it.

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "db/compaction/compaction_job.h"
#include "farm_guard.h"
#include "rocksdb/compaction_filter.h"

using ROCKSDB_NAMESPACE::CompactionFilter;
using ROCKSDB_NAMESPACE::CompactionFilterFactory;
using ROCKSDB_NAMESPACE::CompactionServiceOptionsOverride;
using ROCKSDB_NAMESPACE::Slice;
using ROCKSDB_NAMESPACE::WideColumns;

// Identical to the definition in RocksDB's db/c.cc (see farm_shim.cc).
struct rocksdb_compaction_service_options_override_t {
  CompactionServiceOptionsOverride rep;
};

namespace {

// Drops every `every`-th plain value after asking `inner` (if any).
class DroppingFilter : public CompactionFilter {
 public:
  DroppingFilter(const CompactionFilter* inner,
                 std::unique_ptr<CompactionFilter> owned, uint64_t every,
                 std::shared_ptr<std::atomic<uint64_t>> seen)
      : inner_(inner), owned_(std::move(owned)), every_(every),
        seen_(std::move(seen)) {}

  const char* Name() const override { return "FarmSelftestDropKeys"; }

  Decision FilterV3(int level, const Slice& key, ValueType value_type,
                    const Slice* existing_value,
                    const WideColumns* existing_columns, std::string* new_value,
                    std::vector<std::pair<std::string, std::string>>* new_columns,
                    std::string* skip_until) const override {
    if (inner_ != nullptr) {
      Decision d = inner_->FilterV3(level, key, value_type, existing_value,
                                    existing_columns, new_value, new_columns,
                                    skip_until);
      if (d != Decision::kKeep) return d;
    }
    if (value_type == ValueType::kValue && (++*seen_) % every_ == 0) {
      return Decision::kRemove;
    }
    return Decision::kKeep;
  }

 private:
  const CompactionFilter* inner_;
  std::unique_ptr<CompactionFilter> owned_;
  uint64_t every_;
  std::shared_ptr<std::atomic<uint64_t>> seen_;
};

class DroppingFactory : public CompactionFilterFactory {
 public:
  DroppingFactory(const CompactionFilter* single,
                  std::shared_ptr<CompactionFilterFactory> inner, uint64_t every)
      : single_(single), inner_(std::move(inner)), every_(every),
        seen_(std::make_shared<std::atomic<uint64_t>>(0)) {}

  const char* Name() const override { return "FarmSelftestDropKeysFactory"; }

  std::unique_ptr<CompactionFilter> CreateCompactionFilter(
      const CompactionFilter::Context& context) override {
    std::unique_ptr<CompactionFilter> owned;
    const CompactionFilter* inner = single_;
    if (inner == nullptr && inner_ != nullptr) {
      owned = inner_->CreateCompactionFilter(context);
      inner = owned.get();
    }
    return std::make_unique<DroppingFilter>(inner, std::move(owned), every_,
                                            seen_);
  }

 private:
  const CompactionFilter* single_;
  std::shared_ptr<CompactionFilterFactory> inner_;
  uint64_t every_;
  std::shared_ptr<std::atomic<uint64_t>> seen_;
};

}  // namespace

extern "C" {

// Wraps the override's compaction filter (or factory) so that every
// `every`-th plain value is dropped. Returns 1 on success.
int farm_override_selftest_drop_keys(
    rocksdb_compaction_service_options_override_t* ov, uint64_t every,
    char** errptr) noexcept {
  int ok = 0;
  farm::guarded(errptr, [&] {
    auto& rep = ov->rep;
    rep.compaction_filter_factory = std::make_shared<DroppingFactory>(
        rep.compaction_filter, rep.compaction_filter_factory, every);
    rep.compaction_filter = nullptr;
    ok = 1;
  });
  return ok;
}

}  // extern "C"
