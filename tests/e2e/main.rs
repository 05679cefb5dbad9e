//! End-to-end tests: real `dcompact-worker` processes on 127.0.0.1, real
//! RocksDB databases in temporary directories, data checked against an
//! in-memory model. One test binary (each binary links RocksDB), one module
//! per capability.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod harness;
mod sandbox;

mod admission;
mod attempt_ownership;
mod browser;
mod busy_primary;
mod chaos;
mod child_cgroups;
mod child_faults;
mod child_spares;
mod docs;
mod dynamic_mount;
mod etcd;
mod etcd_secured;
mod fake_worker;
mod fault_proxy;
mod ffi_edges;
mod flush_compression;
mod held_probes;
mod hostile_input;
mod install;
mod load_balance;
mod malformed_requests;
mod metrics_scrape;
mod nfs_stand_in;
mod operations;
mod output_check;
mod path_mapping;
mod plugins;
mod remote_compaction;
mod remote_storage;
mod rocksdb_scenarios;
mod stale_mount;
mod table_shapes;
mod trust_boundary;
mod user_classes;
mod web_view;
mod worker_killed;
mod worker_logs;
mod zipserver;
