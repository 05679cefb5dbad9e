//! Installing plugin logic on the hoster: the same Rust types the worker
//! loads from the plugin objects (`farm-plugin-sdk`), under the same names,
//! so both sides run identical code. Every installed class is remembered
//! with its version and sent with each job; a worker with another version
//! refuses the job and the hoster compacts locally. The crate's
//! documentation shows [`install_merge_operator`] in a complete example.

use crate::protocol::job::PluginVersion;
use farm_plugin_sdk::{CompactionFilter, Decision, MergeOperator};
use rocksdb::compaction_filter::Decision as RocksDecision;
use rocksdb::{MergeOperands, Options};
use std::sync::{Arc, Mutex};

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
/// it refuses the job and the hoster compacts it locally.
pub fn install_merge_operator<M: MergeOperator>(opts: &mut Options, m: M) {
    let m = Arc::new(m);
    let full = {
        let m = m.clone();
        move |key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands| {
            let ops: Vec<&[u8]> = operands.iter().collect();
            m.full_merge(key, existing, &ops)
        }
    };
    let partial = move |key: &[u8], _existing: Option<&[u8]>, operands: &MergeOperands| {
        let mut ops = operands.iter();
        let mut acc = ops.next()?.to_vec();
        for op in ops {
            acc = m.partial_merge(key, &acc, op)?;
        }
        Some(acc)
    };
    opts.set_merge_operator(M::NAME, full, partial);
    remember(M::NAME, M::VERSION);
}

/// Installs `f` as the compaction filter of `opts`, under the name
/// `F::NAME`, and remembers `F::VERSION` as [`install_merge_operator`] does.
///
/// The `rocksdb` crate takes a changed value only as `&'static [u8]`, so a
/// `Decision::Change` on the hoster leaks its bytes; filters that change
/// values often should not rely on it.
pub fn install_compaction_filter<F: CompactionFilter>(opts: &mut Options, f: F) {
    opts.set_compaction_filter(F::NAME, move |level: u32, key: &[u8], value: &[u8]| match f
        .filter(level, key, value)
    {
        Decision::Keep => RocksDecision::Keep,
        Decision::Remove => RocksDecision::Remove,
        Decision::Change(v) => RocksDecision::Change(Box::leak(v.into_boxed_slice())),
    });
    remember(F::NAME, F::VERSION);
}
