// What other parts of the shim need of the remote file system
// (farm_remote_fs.cc, docs/REMOTE_STORAGE.md).
#ifndef FARM_REMOTE_FS_H
#define FARM_REMOTE_FS_H

#include <cstdint>
#include <set>
#include <string>

#include "rocksdb/options.h"

namespace farm {

// Whether `path` is below "/.farm-remote/" (a file of a DB read over HTTP).
bool is_remote_path(const std::string& path) noexcept;

// Whether the job owning the remote `path` lets it be read: its inputs and
// metadata are readable, every other live table of the DB is known by its
// size only.
bool remote_file_readable(const std::string& path) noexcept;

// The remote DB at `db_dir` will be opened for a compaction of the tables
// numbered `inputs` of column family `cf_name`, with these options: its
// MANIFEST is then served trimmed (farm_manifest_trim.cc) when the options
// allow it. The options' comparator must outlive the plan
// (farm_remote_forget ends it).
void plan_manifest_trim(const std::string& db_dir,
                        const ROCKSDB_NAMESPACE::ColumnFamilyOptions& options,
                        const std::string& cf_name, const std::set<uint64_t>& inputs);

}  // namespace farm

#endif  // FARM_REMOTE_FS_H
