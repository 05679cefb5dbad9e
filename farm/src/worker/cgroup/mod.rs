//! A cgroup of its own for every child of the worker that runs plugin code
//! (each `MULTI_PROCESS` attempt child and the plugin-describing child).
//!
//! What a child's cgroup gives: a real memory limit (`CHILD_MEMORY_LIMIT`,
//! swap included where the host accounts it), a process limit
//! (`CHILD_MAX_PROCESSES`), a CPU weight (`CHILD_CPU_WEIGHT`), and an end
//! that kills every process in it, whether or not it left the child's
//! process group (`setsid`) or was orphaned. When the kernel's OOM handling
//! kills the child inside its cgroup, the attempt ends `out_of_memory`.
//!
//! Lifecycle: at start the worker finds its hierarchies ([`layout`]), and,
//! holding the root's lock, ends and removes what a previous worker on the
//! same `WORKER_DB_ROOT` left ([`home`]); each child gets a cgroup
//! ([`group`]) made with its limits ([`limits`]) before it starts, joins it
//! between fork and exec (`process::setup`), and after the child was reaped
//! the cgroup is emptied and removed ([`kill`]). At a clean stop the
//! worker removes its home.
//!
//! Where no cgroup can be made (no delegated v2 hierarchy and no v1
//! `memory`, `pids`, `freezer`; or `CHILD_CGROUP=off`), children get
//! `RLIMIT_AS` for the memory limit and no process limit, and their
//! descendants are found by the attempt marker in their environment; the
//! worker says so once in its log at start.
//!
//! Failure modes: a cgroup that cannot be made for a child fails that
//! child's start (`spawn_failed`), never the worker; processes that do not
//! die within seconds of SIGKILL (stuck in the kernel) are logged and their
//! cgroup left for the next start to retry.

pub mod error;
pub mod files;
pub mod group;
pub mod home;
pub mod kill;
pub mod layout;
pub mod limits;

#[cfg(test)]
mod host_tests;
