//  A worker plugin (PLUGINS) that gives dcompact-worker the db_stress class
//  it can serve: DbStressCustomCompressionManager ("DbStressCustom1", what
//  db_crashtest.py's --compression_manager=custom selects), whose custom
//  compression types (kCustomCompressionAA..AC) a worker must be able to
//  decompress and write. The class is header-only
//  (db_stress_compression_manager.h, test_util/testutil.h); this object
//  registers it in RocksDB's ObjectLibrary from a static constructor, in
//  RocksDB's own style, with no farm ABI. It carries no RocksDB of its own:
//  its RocksDB symbols resolve against the worker executable, which exports
//  them (-Wl,--export-dynamic). It is built with hidden visibility, so that
//  none of its inline copies of RocksDB code stands in for the worker's.
//
//  Register() builds on a RocksDB global (GetBuiltinV2CompressionManager()).
//  The worker loads PLUGINS with dlopen, in-process and in each
//  MULTI_PROCESS child, once the binary's own static initialisers have run.
//  Children used to get PLUGINS through LD_PRELOAD instead, which ran this
//  constructor first: every compaction of a child then died of SIGSEGV.

#include "db_stress_tool/db_stress_compression_manager.h"

namespace {

struct Registrar {
  Registrar() { ROCKSDB_NAMESPACE::DbStressCustomCompressionManager::Register(); }
} registrar;

}  // namespace
