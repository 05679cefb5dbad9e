// What other parts of the shim need of the remote file system
// (farm_remote_fs.cc, docs/REMOTE_STORAGE.md).
#ifndef FARM_REMOTE_FS_H
#define FARM_REMOTE_FS_H

#include <string>

namespace farm {

// Whether `path` is below "/.farm-remote/" (a file of a DB read over HTTP).
bool is_remote_path(const std::string& path) noexcept;

// Whether the job owning the remote `path` lets it be read: its inputs and
// metadata are readable, every other live table of the DB is known by its
// size only.
bool remote_file_readable(const std::string& path) noexcept;

}  // namespace farm

#endif  // FARM_REMOTE_FS_H
