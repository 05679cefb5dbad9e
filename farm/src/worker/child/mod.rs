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
//! - [`spawner`]: the long-lived forking thread; process group,
//!   `PR_SET_PDEATHSIG`, resource limits, `LD_PRELOAD`.
//! - [`supervise`]: waiting with a timeout and a cancel, the grace period
//!   before SIGKILL, ending every process of the attempt, and the closed
//!   classification of how it ended.
//! - [`exit_wait`]: the supervisor's pause between looks, ended at once by
//!   the child's exit (a pidfd).

pub mod entry;
pub mod exit_wait;
pub mod spawner;
pub mod spec;
pub mod supervise;
