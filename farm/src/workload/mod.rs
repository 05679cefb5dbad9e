//! Workloads for the demo, the end-to-end tests and the benchmarks.
//!
//! - [`model`]: a reproducible write workload with an in-memory model of
//!   what the DB must hold.
//! - [`capture`]: a real compaction input, captured from a hoster together
//!   with a copy of the DB files it reads, to submit to workers directly.
//! - [`expected`]: an expected-state file like `db_stress`'s, which
//!   outlives a SIGKILL of the writer: the chaos test's hoster process
//!   checks every key against it after each reopen.
//! - [`cpu`]: CPU time of this process, a thread, and waited-for children,
//!   as the demo and the benchmarks report it.

pub mod capture;
pub mod cpu;
pub mod expected;
pub mod model;

pub use model::{key, Model, WorkloadSpec, Written};
