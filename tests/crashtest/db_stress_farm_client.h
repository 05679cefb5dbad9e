//  A client of compaction-farm's worker protocol (docs/PROTOCOL.md) for
//  db_stress: with it, db_stress's remote-compaction worker threads hand each
//  job to a `dcompact-worker` over HTTP instead of calling
//  DB::OpenAndCompact in-process. It copies what the farm's own hoster
//  client does (farm/src/hoster/service.rs, verify.rs): submit to a worker
//  (the next one on a refusal, a busy answer or an unreachable worker),
//  probe until the attempt ends, collect a finished result from the output
//  directory when the worker is gone, cancel what it gives up on, and check
//  every output file (plain name, present, the size the result states,
//  every block's checksum) before the result goes to RocksDB. Whatever goes
//  wrong becomes a failed status, which db_stress turns into a local
//  compaction (--remote_compaction_failure_fall_back_to_local=1).
//
//  Configuration, from the environment (scripts/crashtest.sh sets it):
//    FARM_WORKERS     comma-separated host:port of workers (required: when
//                     unset, db_stress runs OpenAndCompact in-process as
//                     before)
//    FARM_HOSTER_ROOT the hoster root the workers have in HOSTER_ROOTS
//                     (the crash test's DB parent directory)
//    FARM_CLIENT_LOG  a file to which one line per job is appended: where it
//                     ran and why (optional)
//    FARM_WAIT_SECS   how long to wait for one attempt (default 120)

#pragma once

#include <functional>
#include <string>

#include "rocksdb/options.h"
#include "rocksdb/status.h"

namespace ROCKSDB_NAMESPACE {

// Whether FARM_WORKERS is set.
bool FarmEnabled();

// Runs the compaction `input` of `info` on a farm worker, its outputs in a
// new directory whose name starts with `output_dir`. On success `*result`
// is RocksDB's serialized result, verified, naming the directory the
// outputs are in. `should_stop` is polled while waiting: when it answers
// true the attempt is cancelled.
Status FarmCompact(const CompactionServiceJobInfo& info,
                   const std::string& input, const std::string& output_dir,
                   std::string* result,
                   const std::function<bool()>& should_stop);

}  // namespace ROCKSDB_NAMESPACE
