//! End-to-end tests: real `dcompact-worker` processes on 127.0.0.1, real
//! RocksDB databases in temporary directories, data checked against an
//! in-memory model. One test binary (each binary links RocksDB), one module
//! per capability.

mod harness;

mod admission;
mod child_faults;
mod fake_worker;
mod load_balance;
mod malformed_requests;
mod output_check;
mod path_mapping;
mod plugins;
mod remote_compaction;
mod table_shapes;
mod user_classes;
mod worker_killed;
mod zipserver;
