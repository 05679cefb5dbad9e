//! The `dcompact-worker` daemon.
//!
//! Lifecycle: [`config::WorkerConfig::load`] validates the environment and
//! the optional TOML file; [`server::run`] binds and serves until a drain
//! ([`drain`]: `POST /drain`, SIGUSR1, SIGTERM, a termination notice) has
//! run its course: the worker left etcd, refused new jobs, finished its
//! attempts and saw their results collected.
//!
//! - [`drain`]: what begins a drain, and its state; [`drain_wait`]: its
//!   steps; [`termination_check`]: `TERMINATION_CHECK_URL`.
//! - [`advertise`]: `ADVERTISE_ADDR`, a `host:port` or a URL.
//!
//! - [`server`]: thin HTTP handlers; they validate and call the supervisor.
//! - [`handler_panic`]: a panicking handler ends its own request (500).
//! - [`supervisor`]: owns every attempt's state: admission under
//!   `MAX_PARALLEL_COMPACTIONS`, the bounded waiting queue, results kept for
//!   probing, counters.
//! - [`runner`]: runs one attempt in-process: attempt directory, override from
//!   the job's OPTIONS file, `OpenAndCompact`, result files.
//! - [`open_retry`]: `OpenAndCompact` run again, a bounded number of
//!   times, when its secondary open lost a race with the hoster's primary.
//! - [`admission`]: turns a request body into a job the worker will run, or
//!   a 400/412 answer that names the problem.
//! - [`admission_gate`]: the queue place and the admission permit a
//!   submission holds before anything is read for it.
//! - [`listener`]: accepting HTTP connections under `MAX_CONNECTIONS`,
//!   with header, body and idle timeouts, and a bounded drain.
//! - [`space_guard`]: refuses jobs whose output would not fit with a margin.
//! - [`mounts`]: `NFS_DYNAMIC_MOUNT`: mounts per hoster instance, shared by
//!   its jobs, LRU-evicted, remounted after a stale file handle.
//! - [`paths`]: maps hoster paths into the worker's path space and confines
//!   them to a root from the worker's configuration (the instance's mount,
//!   or one of `HOSTER_ROOTS`).
//! - [`beneath`]: creating, opening and removing files beneath a directory
//!   handle, following no symlink: every file operation made for a request.
//! - [`root_guard`]: the checks that keep the worker off the host's files:
//!   no system directory as a root, `WORKER_DB_ROOT` the worker's own.
//! - [`root_lock`]: one live worker per `WORKER_DB_ROOT` (an `flock` on its
//!   marker), so what a dead predecessor left may be ended.
//! - [`process`]: the worker's child processes: a pid that knows its group,
//!   the setup between fork and exec, waiting against a deadline and a stop
//!   request, `terminate(grace)`, one `extract(ExitStatus)`.
//! - [`cgroup`]: a cgroup of its own for each child that runs plugin code:
//!   memory, process and CPU limits, and an end that kills every process in
//!   it; what a killed predecessor left is ended at start.
//! - [`plugin_catalog`]: which plugin classes the worker runs, in which versions.
//! - [`queue_order`]: which waiting attempt runs next.
//! - [`attempt`]: one attempt, one owner: what a run holds (place, slot,
//!   prepared job and mount lease, cancel flag, deadline, directory) and
//!   its once-only end.
//! - [`input_paths`]: input file names and the OPTIONS file's paths, held
//!   to the mapped DB directory.
//! - [`large_buffers`]: freed request-sized buffers go back to the system.
//! - [`finished_bound`]: how many finished attempts, and how many of their
//!   bytes, the supervisor keeps for probing.
//! - [`attempt_dir`]: `WORKER_DB_ROOT/<attempt name>/` with its owner
//!   marker, `job.json` and `LOG`.
//! - [`local`]: starts a worker binary as a child process (demo, tests).
//! - [`options_file`]: the OPTIONS file as text, to check the override.
//! - [`remote`]: the HTTP storage mode: a job's DB read from the hoster's
//!   file endpoint, its outputs pushed there.
//! - [`retention`]: removes retained attempt directories by age and size.
//! - [`registration`]: the worker's registration in etcd and its "attempt
//!   done" events.
//! - [`zip_link`]: the worker's zipserver (MULTI_PROCESS): started,
//!   restarted, stopped; its socket told to each child; children's counts.
//! - [`outcome`]: the closed classification of how an attempt ended.
//! - [`metrics`]: what `/metrics` serves, in Prometheus text format.
//! - [`web`]: `/stat` and `/list` as HTML, and an attempt's retained files.
//! - [`summary`]: `summary.html`, written into an attempt's directory at its end.
//! - [`selftest`]: `FARM_SELFTEST_DROP_KEYS`, the deliberately wrong worker
//!   of the crash test's self-test.
//! - [`timings`]: when each step of an attempt happened (its fixed cost, in parts).

pub mod admission;
pub mod admission_gate;
pub mod advertise;
pub mod attempt;
pub mod attempt_dir;
pub mod beneath;
pub mod cgroup;
pub mod child;
pub mod config;
pub mod deadline;
pub mod drain;
pub mod drain_wait;
pub mod finished_bound;
pub mod handler_panic;
pub mod input_paths;
pub mod large_buffers;
pub mod listener;
pub mod local;
pub mod metrics;
pub mod mounts;
pub mod open_retry;
pub mod options_file;
pub mod outcome;
pub mod paths;
pub mod plugin_catalog;
pub mod process;
pub mod queue_order;
pub mod registration;
pub mod remote;
pub mod retention;
pub mod root_guard;
pub mod root_lock;
pub mod runner;
pub mod selftest;
pub mod server;
pub mod space_guard;
pub mod stats;
pub mod summary;
pub mod supervisor;
pub mod termination_check;
pub mod timings;
pub mod tombstones;
pub mod web;
pub mod zip_link;
