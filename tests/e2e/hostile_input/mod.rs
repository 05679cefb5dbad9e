//! Hostile input, round two: requests made as an attacker would, with a
//! real RocksDB directory and a real compaction input, against a worker in
//! the sandbox (`crate::sandbox`) with a fresh root; a worker that lies
//! about its result, against a real hoster; and generated jobs against
//! admission and queue ordering.

mod attempt_overflow;
mod fuzz;
mod input_traversal;
mod log_forgery;
mod lying_worker;
mod oversized_fields;
mod self_raised_priority;
mod worker;
