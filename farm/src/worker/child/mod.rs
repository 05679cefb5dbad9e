//! MULTI_PROCESS: every attempt in its own child process.
//!
//! The child is the worker binary re-executed as `dcompact-worker --child
//! <attempt dir>` (fork+exec from one long-lived thread, never a bare fork of
//! the multi-threaded supervisor). It reads its job from the attempt
//! directory, runs `OpenAndCompact`, and writes its result to a file that it
//! renames into place; its output goes to `LOG.child`.
//!
//! - [`spec`]: the contract between supervisor and child: file names, the
//!   `child.json` spec, exit codes.
//! - [`entry`]: the child's side: read the spec, compact, write the result;
//!   SIGTERM sets RocksDB's canceled flag.
//! - [`cgroups`]: whether children get cgroups (`CHILD_CGROUP`), decided
//!   at start.
//! - [`limits`]: what a child may use (`CHILD_*` settings), in its cgroup
//!   or as resource limits.
//! - [`spawner`]: the long-lived forking thread; the child's cgroup,
//!   process group, `PR_SET_PDEATHSIG`, the worker's own `LD_PRELOAD`.
//! - [`spare`]: children started ahead of their attempt (`CHILD_SPARES`),
//!   each waiting on its standard input for the attempt it will run.
//! - [`delivery`]: the pipe on which a child says its result is in place,
//!   so that `/probe` answers it before the child has exited.
//! - [`supervise`]: waiting with a timeout and a cancel, the grace period
//!   before SIGKILL, ending every process of the attempt, and the closed
//!   classification of how it ended.
//!
//! Processes are started, waited for and signalled through
//! [`crate::worker::process`]; cgroups come from [`crate::worker::cgroup`].

pub mod cgroups;
pub mod delivery;
pub mod entry;
pub mod limits;
pub mod spare;
pub mod spawner;
pub mod spec;
pub mod supervise;
