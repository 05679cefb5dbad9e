// The worker's half of the plugin ABI (plugins/include/farm_plugin.h):
// classes that plugins register become RocksDB objects, created by name
// from ObjectLibrary::Default(), so RocksDB's own LoadOptionsFromFile finds
// them when the OPTIONS file names them.
//
// Counters of what plugin code did in this process (merges resolved,
// entries dropped or changed) are kept here for the worker's /stat.
//
// No C++ exception leaves this file: every extern "C" function catches all
// of them and reports an error (through `errptr`, or a refusal code), and a
// plugin callback that throws in spite of the ABI counts as a failed merge or
// a kept entry, as a Rust plugin's panic does.

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "farm_guard.h"
#include "farm_plugin.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/utilities/object_registry.h"

using ROCKSDB_NAMESPACE::CompactionFilter;
using ROCKSDB_NAMESPACE::Logger;
using ROCKSDB_NAMESPACE::MergeOperator;
using ROCKSDB_NAMESPACE::ObjectLibrary;
using ROCKSDB_NAMESPACE::Slice;

namespace {

std::atomic<uint64_t> g_merges{0};
std::atomic<uint64_t> g_merge_failures{0};
std::atomic<uint64_t> g_filtered{0};
std::atomic<uint64_t> g_dropped{0};
std::atomic<uint64_t> g_changed{0};

std::mutex g_mu;
// "kind name version" lines of every registration, for the catalog.
std::vector<std::string> g_registered;

farm_bytes bytes(const Slice& s) { return farm_bytes{s.data(), s.size()}; }

class PluginMergeOperator : public MergeOperator {
 public:
  explicit PluginMergeOperator(const farm_merge_operator_v1* d) : d_(d) {}
  const char* Name() const override { return d_->name; }

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
    int ok = 0;
    try {
      ok = d_->full_merge(d_->state, bytes(in.key), ep, ops.data(), ops.size(),
                          o);
    } catch (...) {
      ok = 0;
    }
    if (target.failed) ok = 0;
    (ok ? g_merges : g_merge_failures).fetch_add(1, std::memory_order_relaxed);
    return ok != 0;
  }

  bool PartialMerge(const Slice& key, const Slice& left, const Slice& right,
                    std::string* new_value, Logger*) const override {
    if (d_->partial_merge == nullptr) return false;
    farm::OutString target{new_value};
    farm_out o{&target, farm::set_out_string};
    try {
      return d_->partial_merge(d_->state, bytes(key), bytes(left),
                               bytes(right), o) != 0 &&
             !target.failed;
    } catch (...) {
      return false;  // declining a partial merge is always safe
    }
  }

 private:
  const farm_merge_operator_v1* d_;
};

class PluginCompactionFilter : public CompactionFilter {
 public:
  explicit PluginCompactionFilter(const farm_compaction_filter_v1* d) : d_(d) {}
  const char* Name() const override { return d_->name; }

  bool Filter(int level, const Slice& key, const Slice& existing_value,
              std::string* new_value, bool* value_changed) const override {
    g_filtered.fetch_add(1, std::memory_order_relaxed);
    farm::OutString target{new_value};
    farm_out o{&target, farm::set_out_string};
    int d = FARM_FILTER_KEEP;
    try {
      d = d_->filter(d_->state, level, bytes(key), bytes(existing_value), o);
    } catch (...) {
      // Keeping the entry is the answer that never loses data.
      new_value->clear();
      return false;
    }
    if (d == FARM_FILTER_REMOVE) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (d == FARM_FILTER_CHANGE && target.failed) {
      new_value->clear();  // no room for the new value: keep the old one
      return false;
    }
    if (d == FARM_FILTER_CHANGE) {
      g_changed.fetch_add(1, std::memory_order_relaxed);
      *value_changed = true;
    }
    return false;
  }

 private:
  const farm_compaction_filter_v1* d_;
};

bool taken(const std::string& kind, const char* name) {
  std::string prefix = kind + " " + name + " ";
  for (const auto& r : g_registered) {
    if (r.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

int add_merge_operator(const farm_merge_operator_v1* d) noexcept {
  if (d == nullptr || d->name == nullptr || d->full_merge == nullptr) return 1;
  try {
    std::lock_guard<std::mutex> lock(g_mu);
    if (taken("merge_operator", d->name)) return 1;
    ObjectLibrary::Default()->AddFactory<MergeOperator>(
        d->name, [d](const std::string&, std::unique_ptr<MergeOperator>* guard,
                     std::string*) {
          guard->reset(new PluginMergeOperator(d));
          return guard->get();
        });
    g_registered.push_back(std::string("merge_operator ") + d->name + " " +
                           std::to_string(d->version));
    return 0;
  } catch (...) {
    return 1;
  }
}

int add_compaction_filter(const farm_compaction_filter_v1* d) noexcept {
  if (d == nullptr || d->name == nullptr || d->filter == nullptr) return 1;
  try {
    std::lock_guard<std::mutex> lock(g_mu);
    if (taken("compaction_filter", d->name)) return 1;
    // RocksDB loads compaction filters as static objects: one instance per
    // name, owned here for the life of the process.
    auto* instance = new PluginCompactionFilter(d);
    ObjectLibrary::Default()->AddFactory<CompactionFilter>(
        d->name, [instance](const std::string&,
                            std::unique_ptr<CompactionFilter>*, std::string*) {
          return instance;
        });
    g_registered.push_back(std::string("compaction_filter ") + d->name + " " +
                           std::to_string(d->version));
    return 0;
  } catch (...) {
    return 1;
  }
}

const farm_registry_v1 kRegistry{FARM_PLUGIN_ABI_VERSION, add_merge_operator,
                                 add_compaction_filter};

}  // namespace

extern "C" {

// Calls a plugin's entry point (`farm_plugin_register`) with the worker's
// registry. Returns what it returned; a C++ exception thrown by the plugin
// stops here: the answer is then -1 with `errptr` set.
int farm_plugin_call_register(farm_plugin_register_fn entry,
                              char** errptr) noexcept {
  int code = -1;
  if (entry == nullptr) {
    farm::save_error(errptr, "no entry point");
    return code;
  }
  farm::guarded(errptr, [&] { code = entry(&kRegistry); });
  return code;
}

// "kind name version" lines, one per registered class; malloc'ed.
char* farm_plugin_list(char** errptr) noexcept {
  char* out = nullptr;
  farm::guarded(errptr, [&] {
    std::lock_guard<std::mutex> lock(g_mu);
    std::string text;
    for (const auto& r : g_registered) {
      text += r;
      text += '\n';
    }
    out = farm::dup_bytes(text);
  });
  return out;
}

// Names of the factories registered in ObjectLibrary::Default() for
// `kind` ("merge_operator" or "compaction_filter"), one per line;
// malloc'ed. Lets the worker see classes that C++ plugins registered
// themselves.
char* farm_object_library_names(const char* kind, char** errptr) noexcept {
  char* out = nullptr;
  farm::guarded(errptr, [&] {
    std::vector<std::string> names;
    std::string k(kind);
    if (k == "merge_operator") {
      ObjectLibrary::Default()->GetFactoryNames(MergeOperator::Type(), &names);
    } else if (k == "compaction_filter") {
      ObjectLibrary::Default()->GetFactoryNames(CompactionFilter::Type(),
                                                &names);
    } else {
      throw std::invalid_argument("unknown class kind: " + k);
    }
    std::string text;
    for (const auto& n : names) {
      text += n;
      text += '\n';
    }
    out = farm::dup_bytes(text);
  });
  return out;
}

// What plugin code did in this process so far.
void farm_plugin_counts(uint64_t* merges, uint64_t* merge_failures,
                        uint64_t* filtered, uint64_t* dropped,
                        uint64_t* changed) noexcept {
  *merges = g_merges.load(std::memory_order_relaxed);
  *merge_failures = g_merge_failures.load(std::memory_order_relaxed);
  *filtered = g_filtered.load(std::memory_order_relaxed);
  *dropped = g_dropped.load(std::memory_order_relaxed);
  *changed = g_changed.load(std::memory_order_relaxed);
}

}  // extern "C"
