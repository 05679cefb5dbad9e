//! etcd: workers register themselves, hosters discover them and learn that
//! an attempt finished without waiting for their next probe.
//!
//! The farm speaks etcd's v3 JSON gateway (`/v3/...` over HTTP or HTTPS)
//! with a blocking client: it needs no generated gRPC code, and the hoster's
//! side runs on plain threads, as RocksDB's callbacks do.
//!
//! - [`config`]: endpoints, root, credentials, TLS files, TTLs; shared by the
//!   worker's `ETCD_*` settings and the hoster's `etcd` JSON object.
//! - [`client`]: the gateway client: leases, put/range/delete, watch streams.
//! - [`follow`]: a thread that lists and then watches a prefix.
//! - [`local`]: a real etcd on loopback, for tests and benchmarks.
//! - [`keys`]: the keys and values under the root: `workers/<addr>` with a
//!   [`keys::Registration`], `dcompact-res/<attempt name>` = `done`.
//!
//! etcd is an accelerator, never a dependency of a compaction: while it is
//! unreachable workers keep serving, hosters keep the workers they knew and
//! probe for results, and both reconnect on their own.

pub mod client;
pub mod config;
pub mod follow;
pub mod keys;
pub mod local;
