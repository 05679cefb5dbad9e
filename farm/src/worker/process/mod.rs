//! The worker's child processes, in one place (after nextest's runner).
//!
//! Every process the worker starts and waits for goes through this module:
//! attempt children and the plugin-describing child (`child/`,
//! `plugin_catalog`), and a worker binary started by the demo and the tests
//! (`local`). The zipserver sidecar and the mount helper can use it too.
//!
//! - [`pid`]: [`pid::ChildPid`], a pid that knows whether it stands for one
//!   process or for the process group it leads, so a signal reaches what
//!   it should.
//! - [`setup`]: [`setup::ChildSetup`], what happens between fork and exec
//!   (written once): joining cgroups, a process group of its own, dying
//!   with the worker, resource limits, nice.
//! - [`running`]: [`running::Running`], a started child: a wait against a
//!   deadline and a stop request, `terminate(grace)` (SIGTERM, the grace,
//!   SIGKILL), and a kill when dropped unreaped.
//! - [`exit_wait`]: the pause between a wait's looks, ended at once by the
//!   child's exit (a pidfd).
//! - [`exit`]: [`exit::extract`], the one place an `ExitStatus` becomes a
//!   closed [`exit::Exit`] (a code or a named signal).
//! - [`marked`]: processes found by a marker in their environment (through
//!   `procfs`), for where no cgroup holds a child's descendants.
//! - [`reap`]: reaping adopted orphans (the worker is their subreaper).
//!
//! Failure modes: a child that ignores SIGTERM is killed when the grace is
//! over ([`running::Terminated::escalated`] says so, and callers log it); a
//! child that cannot be started is an `io::Error` from the spawn; a pid that
//! is already gone (ESRCH) is not an error when signalling.

pub mod exit;
pub mod exit_wait;
pub mod marked;
pub mod pid;
pub mod reap;
pub mod running;
pub mod setup;
