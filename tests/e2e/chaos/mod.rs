//! The farm's own chaos test (see `run`): a hoster process killed and
//! opened again while workers, children, zipservers and etcd are killed and
//! the worker's disk fills.
//!
//! - `stand`: etcd, the steady worker (sandboxed, on a small tmpfs) and the
//!   victim worker;
//! - `hoster`: the `chaos-hoster` process and its JSON lines (its expected
//!   state is `farm::workload::expected`, shared with the binary);
//! - `faults`: the fault injector and the counts by kind;
//! - `resources`: the worker's RSS and open files from `/proc`;
//! - `report`: the figures printed at the end; `plot`: the soak's SVG.

mod faults;
mod hoster;
mod plot;
mod report;
mod resources;
mod run;
mod stand;
