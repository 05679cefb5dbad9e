// The table factory a worker opens a DB read over HTTP with
// (farm_inputs_only.cc, docs/REMOTE_STORAGE.md).
#ifndef FARM_INPUTS_ONLY_H
#define FARM_INPUTS_ONLY_H

#include <memory>

#include "rocksdb/table.h"

namespace farm {

// Wraps `inner` (the column family's own factory): tables of the remote DB
// that the job may read open through `inner`, every other table opens as a
// placeholder that reads nothing and fails any read. Writes (the outputs)
// go through `inner` unchanged.
std::shared_ptr<ROCKSDB_NAMESPACE::TableFactory> inputs_only(
    std::shared_ptr<ROCKSDB_NAMESPACE::TableFactory> inner);

// From now on, every "BlockBasedTable" this process creates from text (an
// OPTIONS file, an option string) is created wrapped, as inputs_only() would
// wrap it. Called once a process reads remote DBs; idempotent.
void shadow_block_based_table() noexcept;

// The factory an override describes: `factory` itself, or the one it wraps
// when it is an inputs_only() wrapper.
const ROCKSDB_NAMESPACE::TableFactory* described_factory(
    const ROCKSDB_NAMESPACE::TableFactory* factory) noexcept;

}  // namespace farm

#endif  // FARM_INPUTS_ONLY_H
