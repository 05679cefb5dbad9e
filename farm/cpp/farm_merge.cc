// The hoster's merge operator (farm/src/rocks/merge.rs): a Rust merge
// function behind a C++ MergeOperator set on the hoster's own Options.
//
// The crate `rocksdb` offers set_merge_operator, but through RocksDB's C API,
// whose operator cannot say how far a failure reaches: RocksDB then treats
// every failed merge as OpFailureScope::kTryMerge, so a merge operator that
// fails (or panics: the Rust side catches the panic and reports it) fails
// the flush or compaction that meets the key, and RocksDB stops the DB's
// writes with a background error. A merge function that panicked is a bug
// in user code, not a property of the data, so this operator reports it with
// OpFailureScope::kMustMerge: reads of that key (Get, MultiGet, iterators)
// fail with RocksDB's "merge operator failed" status, while flushes and
// compactions copy the key's operands unmerged and the DB keeps taking
// writes. A merge function that declines (returns no value) keeps RocksDB's
// default scope, as RocksDB's own operators do.
//
// The operator owns the Rust state and releases it when RocksDB drops the
// operator (with the last Options or DB that holds it). Results are written
// straight into RocksDB's std::string: nothing is allocated on the Rust side
// for RocksDB to free.

#include <memory>
#include <string>
#include <vector>

#include "farm_guard.h"
#include "farm_plugin.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/options.h"

using ROCKSDB_NAMESPACE::Logger;
using ROCKSDB_NAMESPACE::MergeOperator;
using ROCKSDB_NAMESPACE::Options;
using ROCKSDB_NAMESPACE::Slice;

// Identical to the definition in RocksDB's db/c.cc, which keeps this type
// opaque (the crate `rocksdb` hands it out through `AsRawPtr`).
struct rocksdb_options_t {
  Options rep;
};

extern "C" {

// What the Rust side hands over. `full_merge` returns 1 with `out` set,
// 0 when the merge function declined, -1 when it panicked; `partial_merge`
// returns 1 with `out` set or 0 to decline. `release` frees `state`.
struct farm_hoster_merge_operator {
  void* state;
  int (*full_merge)(void* state, farm_bytes key, const farm_bytes* existing,
                    const farm_bytes* operands, size_t num_operands,
                    farm_out out);
  int (*partial_merge)(void* state, farm_bytes key, farm_bytes left,
                       farm_bytes right, farm_out out);
  void (*release)(void* state);
};

}  // extern "C"

namespace {

constexpr int kPanicked = -1;

farm_bytes bytes(const Slice& s) { return farm_bytes{s.data(), s.size()}; }

class HosterMergeOperator final : public MergeOperator {
 public:
  HosterMergeOperator(std::string name, farm_hoster_merge_operator d)
      : name_(std::move(name)), d_(d) {}
  ~HosterMergeOperator() override { d_.release(d_.state); }
  HosterMergeOperator(const HosterMergeOperator&) = delete;
  HosterMergeOperator& operator=(const HosterMergeOperator&) = delete;

  const char* Name() const override { return name_.c_str(); }

  bool FullMergeV2(const MergeOperationInput& in,
                   MergeOperationOutput* out) const override {
    std::vector<farm_bytes> ops;
    ops.reserve(in.operand_list.size());
    for (const auto& s : in.operand_list) ops.push_back(bytes(s));
    farm_bytes existing{};
    const farm_bytes* ep = nullptr;
    if (in.existing_value != nullptr) {
      existing = bytes(*in.existing_value);
      ep = &existing;
    }
    farm::OutString target{&out->new_value};
    farm_out o{&target, farm::set_out_string};
    int r = d_.full_merge(d_.state, bytes(in.key), ep, ops.data(), ops.size(),
                          o);
    if (r == kPanicked) {
      out->new_value.clear();
      out->op_failure_scope = OpFailureScope::kMustMerge;
    }
    return r == 1 && !target.failed;
  }

  bool PartialMerge(const Slice& key, const Slice& left, const Slice& right,
                    std::string* new_value, Logger*) const override {
    if (d_.partial_merge == nullptr) return false;
    farm::OutString target{new_value};
    farm_out o{&target, farm::set_out_string};
    return d_.partial_merge(d_.state, bytes(key), bytes(left), bytes(right),
                            o) == 1 &&
           !target.failed;
  }

 private:
  std::string name_;
  farm_hoster_merge_operator d_;
};

}  // namespace

extern "C" {

// Sets a merge operator named `name` on `opts`. Takes ownership of
// `d.state` in every case: on failure it is released before returning
// (with `errptr` set).
void farm_options_set_merge_operator(rocksdb_options_t* opts,
                                     const char* name,
                                     farm_hoster_merge_operator d,
                                     char** errptr) noexcept {
  std::unique_ptr<HosterMergeOperator> op;
  bool ok = farm::guarded(errptr, [&] {
    op = std::make_unique<HosterMergeOperator>(std::string(name), d);
  });
  if (!ok) {
    d.release(d.state);
    return;
  }
  farm::guarded(errptr, [&] { opts->rep.merge_operator = std::move(op); });
}

}  // extern "C"
