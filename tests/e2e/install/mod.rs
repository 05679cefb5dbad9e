//! Installing and starting a farm as an operator does: the Debian package
//! of the optimised build (`scripts/package.sh`) and the per-NUMA-node
//! start script (`scripts/start_workers.sh`).
//!
//! - [`deb`]: builds the package once per test process and unpacks it
//!   (`dpkg -x`) into a fresh temporary root for each test.
//! - [`contents`]: the package's files, modes, conffiles and control fields.
//! - [`unit`]: `systemd-analyze verify` passes the unit template without a
//!   warning, its instance names the packaged worker.
//! - [`env_file`]: the packaged `worker.env` documents every setting the
//!   worker reads, and names nothing else.
//! - [`packaged_worker`]: the unpacked worker, with the unpacked plugins,
//!   runs a hoster's demo-like workload: compactions remote on both counts,
//!   the worker's identity on every live SST, data and plugin results equal
//!   their models.
//! - [`start_workers`]: the command lines for a fake two-node topology; a
//!   real start on this machine's nodes, `/health`, `stop`, nothing left.

mod contents;
pub mod deb;
mod env_file;
mod packaged_worker;
mod start_workers;
mod unit;
