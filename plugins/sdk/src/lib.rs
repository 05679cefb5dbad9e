//! # farm-plugin-sdk
//!
//! Write a compaction-farm plugin in Rust: implement [`MergeOperator`] or
//! [`CompactionFilter`] for a type, and export it with [`export_plugin!`]
//! from a `cdylib` crate. The worker loads the `.so` (`PLUGINS`) and runs
//! the logic in its compactions; the hoster installs the very same types on
//! its `rocksdb::Options` with `farm::hoster::plugins`, so both sides run
//! identical code under identical names and versions.
//!
//! ```ignore
//! pub struct Counter;
//! impl farm_plugin_sdk::MergeOperator for Counter {
//!     const NAME: &'static str = "counter";
//!     const VERSION: u32 = 1;
//!     fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> { ... }
//! }
//! farm_plugin_sdk::export_plugin!(merge_operators: [Counter], compaction_filters: []);
//! ```
//!
//! The ABI is plugins/include/farm_plugin.h; [`abi`] mirrors it. No panic
//! of plugin code crosses it: the callbacks and the entry point that
//! [`export_plugin!`] writes catch every unwind (a panicking merge fails
//! that merge, a panicking filter keeps the entry, a panicking registration
//! is refused with [`REGISTER_PANICKED`]).

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod abi;
mod export;

pub use export::{
    guard_register, register_compaction_filter, register_merge_operator, REGISTER_PANICKED,
};

/// A merge operator. Must be deterministic: the hoster and the worker run it
/// on the same data and must agree.
pub trait MergeOperator: Send + Sync + 'static {
    /// The class name RocksDB records in the OPTIONS file.
    const NAME: &'static str;
    /// Changes whenever the logic changes.
    const VERSION: u32;
    /// Merges `operands` (oldest first) onto `existing`; `None` fails the
    /// merge.
    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>>;
    /// Merges two operands into one, or declines with `None`.
    fn partial_merge(&self, _key: &[u8], _left: &[u8], _right: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// What a compaction filter decides for one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    Remove,
    Change(Vec<u8>),
}

/// A compaction filter. Must be deterministic for the same input.
pub trait CompactionFilter: Send + Sync + 'static {
    const NAME: &'static str;
    const VERSION: u32;
    fn filter(&self, level: u32, key: &[u8], value: &[u8]) -> Decision;
}
