//! The worker's Prometheus metrics (`GET /metrics`).
//!
//! - [`attempts`]: counters and histograms the supervisor updates as
//!   attempts are accepted, rejected, started and ended.
//! - [`snapshot`]: a collector that reads a stats snapshot at scrape time
//!   (mount and zipserver counters plug in the same way).
//! - [`http`]: the HTTP listener's connections and timeouts.
//! - [`queue`]: the supervisor's queue as gauges, through [`snapshot`].
//! - [`mounts`]: the mount table of `NFS_DYNAMIC_MOUNT`, through [`snapshot`].
//! - [`remote`]: what HTTP storage attempts fetched and pushed, through
//!   [`snapshot`].
//! - [`zip`]: what attempt children sent to the zipserver, through [`snapshot`].

pub mod attempts;
pub mod http;
pub mod mounts;
pub mod queue;
pub mod remote;
pub mod snapshot;
pub mod zip;
