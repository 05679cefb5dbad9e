//! RocksDB's own remote-compaction scenarios (`CompactionServiceTest` in
//! `db/compaction/compaction_service_test.cc`, RocksDB 11.8.1), run through
//! the farm: a real worker between the hoster and `OpenAndCompact`, faults
//! injected from the harness (a proxy, the worker's own limits, the hoster
//! DB's own calls). Each test is named after the scenario it mirrors;
//! `docs/ROCKSDB_SCENARIOS.md` pairs every original assertion with ours and
//! says why the rest do not apply.

pub(crate) mod setup;

mod basic;
mod cancel;
mod damaged_output;
mod deadline;
mod fallback;
mod io_error;
mod job_info;
mod user_logic;
