//! The worker's HTTP contract (see DESIGN.md, "Wire protocol"): other clients
//! and operators' scripts are written against these types, so fields are only
//! ever added.

pub mod answers;
pub mod attempt;
pub mod job;
pub mod output_dir;
pub mod probe;
