//  A worker plugin (PLUGINS) that gives dcompact-worker the db_stress class
//  it can serve: DbStressCustomCompressionManager ("DbStressCustom1", what
//  db_crashtest.py's --compression_manager=custom selects), whose custom
//  compression types (kCustomCompressionAA..AC) a worker must be able to
//  decompress and write. The class is header-only
//  (db_stress_compression_manager.h, test_util/testutil.h); this object
//  registers it in RocksDB's ObjectLibrary from the plugin ABI's entry
//  point (plugins/include/farm_plugin.h), which the worker calls once it
//  runs, registering no farm class. It carries no RocksDB of its own: its
//  RocksDB symbols resolve against the worker executable, which exports
//  them (-Wl,--export-dynamic). It is built with hidden visibility so that,
//  preloaded into a MULTI_PROCESS child (LD_PRELOAD), none of its inline
//  copies of RocksDB code stands in for the worker's.
//
//  Registering from a static constructor instead was tried first: every
//  compaction of a MULTI_PROCESS child (where the plugin is preloaded)
//  ended in SIGSEGV, while in-process attempts (dlopen) were fine.
//  Registering from the entry point, which the worker calls once it runs,
//  works in both modes.

#include "db_stress_tool/db_stress_compression_manager.h"

extern "C" __attribute__((visibility("default"))) int farm_plugin_register(
    const void* /*registry*/) {
  try {
    ROCKSDB_NAMESPACE::DbStressCustomCompressionManager::Register();
    return 0;
  } catch (...) {
    return 1;
  }
}
