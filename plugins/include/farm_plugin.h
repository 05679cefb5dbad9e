/* compaction-farm plugin ABI, version 1.
 *
 * A plugin is a shared object that exports
 *
 *     int farm_plugin_register(const farm_registry_v1 *registry);
 *
 * The worker calls it once after loading the object (PLUGINS, or
 * LD_PRELOAD), in the worker process (in-process attempts) and in every
 * attempt child (MULTI_PROCESS). It adds named classes through the
 * registry's functions and returns 0, or non-zero to refuse to load.
 *
 * Every descriptor, and every string in it, must stay valid and unchanged
 * for the life of the process (static storage). `name` is the class name
 * RocksDB records in the OPTIONS file (the hoster must use the same name);
 * `version` changes whenever the logic changes, so a job planned with other
 * logic is refused rather than run.
 *
 * Callbacks may be called from many threads at once. They must not throw
 * C++ exceptions or unwind across this boundary (the worker catches an
 * exception anyway: a failed merge, a kept entry, a refused registration).
 * Results are returned by calling `out.set(out.ctx, data, len)` once; the
 * bytes are copied.
 */
#ifndef FARM_PLUGIN_H
#define FARM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FARM_PLUGIN_ABI_VERSION 1u

typedef struct farm_bytes {
  const char *data;
  size_t len;
} farm_bytes;

typedef struct farm_out {
  void *ctx;
  void (*set)(void *ctx, const char *data, size_t len);
} farm_out;

/* A merge operator. full_merge returns 1 and sets `out` on success, 0 on
 * failure (RocksDB then fails the compaction, and the hoster compacts
 * locally). `existing` is NULL when the key has no base value.
 * partial_merge may be NULL; when set it merges two operands into one, or
 * returns 0 to decline. */
typedef struct farm_merge_operator_v1 {
  const char *name;
  uint32_t version;
  void *state;
  int (*full_merge)(void *state, farm_bytes key, const farm_bytes *existing,
                    const farm_bytes *operands, size_t num_operands,
                    farm_out out);
  int (*partial_merge)(void *state, farm_bytes key, farm_bytes left,
                       farm_bytes right, farm_out out);
} farm_merge_operator_v1;

/* A compaction filter's decision for one plain value. */
enum farm_filter_decision {
  FARM_FILTER_KEEP = 0,
  FARM_FILTER_REMOVE = 1,
  /* Replace the value with what was passed to `new_value`. */
  FARM_FILTER_CHANGE = 2,
};

typedef struct farm_compaction_filter_v1 {
  const char *name;
  uint32_t version;
  void *state;
  int (*filter)(void *state, int level, farm_bytes key, farm_bytes value,
                farm_out new_value);
} farm_compaction_filter_v1;

typedef struct farm_registry_v1 {
  /* FARM_PLUGIN_ABI_VERSION of the worker. */
  uint32_t abi_version;
  /* Return 0 on success, non-zero if the name is taken by another
   * registration. */
  int (*add_merge_operator)(const farm_merge_operator_v1 *op);
  int (*add_compaction_filter)(const farm_compaction_filter_v1 *filter);
} farm_registry_v1;

/* The entry point every plugin exports. */
typedef int (*farm_plugin_register_fn)(const farm_registry_v1 *registry);
#define FARM_PLUGIN_ENTRY "farm_plugin_register"

#ifdef __cplusplus
}
#endif

#endif /* FARM_PLUGIN_H */
