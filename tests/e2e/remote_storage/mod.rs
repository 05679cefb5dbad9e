//! The HTTP storage mode (`storage: "http"`, `docs/REMOTE_STORAGE.md`):
//! the worker runs in a private mount namespace where the hoster's
//! directory does not exist, reads each job's files from the hoster's file
//! endpoint and pushes the outputs there. The foundation, the table shapes
//! and the plugin scenario run here as they run on shared storage (the
//! same test bodies, in both `MULTI_PROCESS` modes of the suite); the
//! endpoint's capability rules have tests of their own.

mod busy_primary;
mod capability;
mod source;
mod trimmed_manifest;
mod worker_refusals;

use crate::harness::Storage;

#[test]
fn compactions_run_on_a_worker_that_cannot_see_the_db() {
    crate::remote_compaction::main_scenario(Storage::Http);
}

#[test]
fn table_shapes_survive_a_db_read_over_http() {
    crate::table_shapes::table_shapes(Storage::Http);
}

#[test]
fn plugin_classes_run_on_a_worker_that_cannot_see_the_db() {
    crate::plugins::plugin_scenario(Storage::Http);
}
