// The MANIFEST a worker opens a DB read over HTTP with: the job's own
// MANIFEST less the live tables the compaction cannot be affected by
// (farm_manifest_trim.cc, docs/REMOTE_STORAGE.md "The trimmed MANIFEST").
#ifndef FARM_MANIFEST_TRIM_H
#define FARM_MANIFEST_TRIM_H

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "rocksdb/comparator.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"

namespace farm {

// Why a MANIFEST of a column family with these options must be opened
// whole: empty when it may be trimmed.
std::string trim_refusal(const ROCKSDB_NAMESPACE::ColumnFamilyOptions& options);

struct Trimmed {
  // The trimmed MANIFEST; empty when `why_not` says why there is none.
  std::string bytes;
  std::string why_not;
  // Live tables of the DB, and those the trimmed MANIFEST still names.
  uint64_t live = 0;
  uint64_t kept = 0;
};

// Trims `manifest` (the bytes of a MANIFEST file, a log of VersionEdits)
// for a compaction of the tables numbered `inputs` of column family
// `cf_name`, whose user comparator is `ucmp`. See the .cc for what is kept.
Trimmed trim_manifest(std::shared_ptr<const std::string> manifest,
                      const ROCKSDB_NAMESPACE::Comparator* ucmp, const std::string& cf_name,
                      const std::set<uint64_t>& inputs);

// A sequential file that reads `data`.
std::unique_ptr<ROCKSDB_NAMESPACE::FSSequentialFile> string_file(
    std::shared_ptr<const std::string> data);

}  // namespace farm

#endif  // FARM_MANIFEST_TRIM_H
