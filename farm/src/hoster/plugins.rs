//! Installing plugin logic on the hoster: the same Rust types the worker
//! loads from the plugin objects (`farm-plugin-sdk`), under the same names,
//! so both sides run identical code. Every installed class is remembered
//! with its version and sent with each job; a worker with another version
//! refuses the job and the hoster compacts locally. The crate's
//! documentation shows [`install_merge_operator`] in a complete example.

use crate::protocol::job::PluginVersion;
use crate::rocks::{filter, merge, RocksError};
use farm_plugin_sdk::{CompactionFilter, MergeOperator};
use rocksdb::Options;
use std::sync::Mutex;

static INSTALLED: Mutex<Vec<PluginVersion>> = Mutex::new(Vec::new());

fn remember(name: &str, version: u32) {
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    installed.retain(|p| p.name != name);
    installed.push(PluginVersion {
        name: name.to_owned(),
        version,
    });
}

/// The plugin classes installed in this process, with their versions (the
/// last install of a name wins); sent with every job.
pub fn installed() -> Vec<PluginVersion> {
    INSTALLED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Installs `m` as the merge operator of `opts`, under the name
/// `M::NAME`, and remembers `M::VERSION` for every job: a worker must load
/// a plugin object with the same class in the same version (`PLUGINS`), or
/// it refuses the job and the hoster compacts it locally. A panic in its
/// merge function fails the read of that key and never the database
/// process, nor its flushes and compactions (see [`crate::rocks::merge`]).
pub fn install_merge_operator<M: MergeOperator>(
    opts: &mut Options,
    m: M,
) -> Result<(), RocksError> {
    merge::set_merge_operator(opts, m)?;
    remember(M::NAME, M::VERSION);
    Ok(())
}

/// Installs `f` as the compaction filter of `opts`, under the name
/// `F::NAME`, and remembers `F::VERSION` as [`install_merge_operator`] does.
/// A panic in the filter keeps the entry (see [`crate::rocks::filter`]).
pub fn install_compaction_filter<F: CompactionFilter>(opts: &mut Options, f: F) {
    filter::set_compaction_filter(opts, f);
    remember(F::NAME, F::VERSION);
}
