//! The child's side of MULTI_PROCESS: `dcompact-worker --child <attempt dir>`.

use super::spec::{self, ChildSpec};
use crate::protocol::job::Job;
use crate::rocks::open_and_compact::{CancelFlag, Override};
use crate::rocks::plugins::{self, PluginError};
use crate::rocks::RocksError;
use crate::worker::child::delivery;
use crate::worker::open_retry::{Compaction, RetryPolicy};
use crate::worker::options_file::{check_override, OptionsText, OverrideMismatch};
use crate::worker::paths::PathError;
use crate::worker::remote::child::{self as remote_child, ChildRemoteError, ChildSource};
use crate::worker::runner::{deliver as runner_deliver, named_result, AttemptDirs, RunError};
use crate::worker::timings::{now_us, AttemptTimings, CHILD_TIMINGS};
use nix::sys::signal::{SigSet, Signal};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use zipserver::client::ZipClient;
use zipserver::codec;

/// The child's zipserver client, when the worker has a zipserver (one
/// attempt per process, so one client).
static ZIP_CLIENT: OnceLock<Arc<ZipClient>> = OnceLock::new();

/// Why the child could not run its attempt (exit code
/// [`spec::EXIT_SETUP_FAILED`], the message in [`spec::ERROR`]).
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("failed to install the SIGTERM handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error("failed to read {file}: {source}")]
    Read {
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {file}: {source}")]
    Json {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid input: {0}")]
    Input(#[from] base64::DecodeError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Dirs(#[from] PathError),
    #[error(transparent)]
    Rocks(#[from] RocksError),
    #[error("failed to register the zipserver's compression manager: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("failed to read the options file: {0}")]
    OptionsFile(#[source] std::io::Error),
    #[error(transparent)]
    Override(#[from] OverrideMismatch),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("failed to write the result: {0}")]
    Result(#[source] std::io::Error),
    #[error(transparent)]
    Remote(#[from] ChildRemoteError),
}

/// A spare child (`--child-spare`): waits for its attempt, then runs it as
/// [`run`] does (see [`super::spare`]); exits 0 when no attempt comes.
pub fn run_spare() -> i32 {
    let assignment = match super::spare::await_assignment() {
        Ok(Some(a)) => a,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!("a spare child failed to read its attempt: {e}");
            return spec::EXIT_SETUP_FAILED;
        }
    };
    match assignment.take() {
        Ok(()) => run(&assignment.dir),
        Err(e) => fail(
            &assignment.dir,
            spec::EXIT_SETUP_FAILED,
            &format!("a spare child failed to take its attempt: {e}"),
        ),
    }
}

/// Runs the attempt in `dir` and returns the process exit code.
pub fn run(dir: &Path) -> i32 {
    let mut timings = AttemptTimings {
        child_main_us: Some(now_us()),
        ..Default::default()
    };
    let code = compact(dir, &mut timings);
    let counts = serde_json::to_vec(&plugins::counts()).unwrap_or_default();
    if let Err(e) = std::fs::write(dir.join(spec::PLUGIN_COUNTS), counts) {
        eprintln!("failed to write {}: {e}", spec::PLUGIN_COUNTS);
    }
    if let Some(client) = ZIP_CLIENT.get() {
        let mut counts = client.counts();
        counts.blocks_seen = codec::blocks_seen();
        eprintln!("zip counts: {counts:?}");
        let json = serde_json::to_vec(&counts).unwrap_or_default();
        if let Err(e) = std::fs::write(dir.join(spec::ZIP_COUNTS), json) {
            eprintln!("failed to write {}: {e}", spec::ZIP_COUNTS);
        }
    }
    // The last file the child writes: its marks, up to its exit.
    timings.exiting_us = Some(now_us());
    match serde_json::to_vec(&timings) {
        Ok(json) => {
            if let Err(e) = std::fs::write(dir.join(CHILD_TIMINGS), json) {
                eprintln!("failed to write {CHILD_TIMINGS}: {e}");
            }
        }
        Err(e) => eprintln!("failed to encode the timings: {e}"),
    }
    code
}

fn compact(dir: &Path, timings: &mut AttemptTimings) -> i32 {
    // Plugins load before SIGTERM is taken over: one that hangs in its
    // constructor is still ended by SIGTERM's default action, as it was
    // when children preloaded them, instead of waiting for the SIGKILL.
    let child = match load_plugins(dir) {
        Ok(child) => child,
        Err(e) => return fail(dir, spec::EXIT_SETUP_FAILED, &e),
    };
    let cancel = Arc::new(CancelFlag::new());
    if let Err(e) = cancel_on_sigterm(cancel.clone()) {
        let e = SetupError::Signal(e);
        eprintln!("{e}");
        return fail(dir, spec::EXIT_SETUP_FAILED, &e);
    }
    let prepared = match prepare(dir, child) {
        Ok(p) => p,
        Err(e) => return fail(dir, spec::EXIT_SETUP_FAILED, &e),
    };
    let (child, dirs, input, overrides, remote) = prepared;
    timings.prepared_us = Some(now_us());
    eprintln!(
        "child {} compacting {} cf={} into {}",
        std::process::id(),
        child.db.path().display(),
        child.cf_name,
        child.output.path().display()
    );
    let db = dirs.db_path();
    let compaction = Compaction {
        db: &db,
        output: dirs.output.as_fd(),
        input: &input,
        overrides: &overrides,
        cancel: &cancel,
    };
    let log = |line: &str| eprintln!("{line}");
    match compaction.run(RetryPolicy::for_attempt(), &mut timings.open_retries, &log) {
        Ok(result) => {
            timings.compacted_us = Some(now_us());
            let delivered = deliver(dir, &child, &dirs, &result, remote.as_ref(), timings);
            write_remote_counts(dir, remote.as_ref());
            match delivered {
                Ok(()) => spec::EXIT_OK,
                Err(e) => fail(dir, spec::EXIT_SETUP_FAILED, &e),
            }
        }
        Err(_) if cancel.is_set() => {
            eprintln!("child cancelled");
            write_remote_counts(dir, remote.as_ref());
            spec::EXIT_CANCELLED
        }
        Err(e) => {
            write_remote_counts(dir, remote.as_ref());
            fail(dir, spec::EXIT_COMPACTION_FAILED, &e)
        }
    }
}

/// What an HTTP storage attempt fetched and pushed, for the supervisor.
fn write_remote_counts(dir: &Path, remote: Option<&ChildSource>) {
    let Some(r) = remote else { return };
    if let Some(line) = crate::worker::remote::note_manifest(&r.registration, &r.source) {
        eprintln!("{line}");
    }
    let counts = r.source.counts();
    eprintln!("{}", counts.describe());
    let json = serde_json::to_vec(&counts).unwrap_or_default();
    if let Err(e) = std::fs::write(dir.join(spec::REMOTE_COUNTS), json) {
        eprintln!("failed to write {}: {e}", spec::REMOTE_COUNTS);
    }
}

/// The result beside the outputs (`rpc.results`, `compact.done`), then
/// in the attempt directory for the supervisor.
fn deliver(
    dir: &Path,
    child: &ChildSpec,
    dirs: &AttemptDirs,
    result: &[u8],
    remote: Option<&ChildSource>,
    timings: &mut AttemptTimings,
) -> Result<(), SetupError> {
    let spec_remote = child.remote.as_ref();
    let result = named_result(
        result,
        &child.output,
        spec_remote.map(|r| r.hoster_output.as_str()),
    )?;
    let counters = remote.map(|r| r.source.counters());
    let pushing = spec_remote
        .zip(counters.as_deref())
        .map(|(r, c)| (&r.storage, c));
    runner_deliver(pushing, dirs, &result, &child.key)?;
    timings.persisted_us = Some(now_us());
    let tmp = dir.join(spec::RESULT_TMP);
    std::fs::write(&tmp, &result)
        .and_then(|()| std::fs::rename(&tmp, dir.join(spec::RESULT)))
        .map_err(SetupError::Result)?;
    eprintln!("child done: {} result bytes", result.len());
    // The supervisor may answer the result now; without the pipe it learns
    // of it at the exit.
    if let Err(e) = delivery::announce() {
        eprintln!("failed to announce the result on the delivery pipe: {e}");
    }
    Ok(())
}

type Prepared = (
    ChildSpec,
    AttemptDirs,
    Vec<u8>,
    Override,
    Option<ChildSource>,
);

/// `file` in the attempt directory, as JSON.
fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &'static str,
) -> Result<T, SetupError> {
    let bytes =
        std::fs::read(dir.join(file)).map_err(|source| SetupError::Read { file, source })?;
    serde_json::from_slice(&bytes).map_err(|source| SetupError::Json { file, source })
}

/// Reads the child's spec and loads its plugins (`dlopen`).
fn load_plugins(dir: &Path) -> Result<ChildSpec, SetupError> {
    let child: ChildSpec = read_json(dir, spec::CHILD_SPEC)?;
    for p in &child.plugins {
        plugins::load(p)?;
    }
    Ok(child)
}

fn prepare(dir: &Path, child: ChildSpec) -> Result<Prepared, SetupError> {
    let job: Job = read_json(dir, "job.json")?;
    let input = job.decode_input()?;
    let (dirs, mut overrides, text, remote) = match &child.remote {
        Some(r) => {
            let (source, overrides, text) =
                remote_child::open(r, &child.options_file, &child.cf_name)?;
            let dirs = AttemptDirs::open_remote(source.registration.db_path(), &child.output)?;
            (dirs, overrides, text, Some(source))
        }
        None => {
            let dirs = AttemptDirs::open(&child.db, &child.output)?;
            let options_file = dirs.db_path().join(&child.options_file);
            let overrides = Override::from_options_file(&options_file, &child.cf_name)?;
            let text = OptionsText::read(&options_file).map_err(SetupError::OptionsFile)?;
            (dirs, overrides, text, None)
        }
    };
    // With the plugins loaded here, every class the OPTIONS file names must
    // be in the override.
    let loaded = overrides.describe()?;
    check_override(&text, &child.cf_name, &loaded, &|_, _| false)?;
    overrides.set_info_log(&dir.join("LOG.rocksdb"))?;
    overrides.set_option("db_host_id", &child.identity)?;
    crate::worker::selftest::apply(&mut overrides)?;
    if let Some(z) = &child.zip {
        let client = ZIP_CLIENT.get_or_init(|| Arc::new(ZipClient::new(z.clone())));
        // Blocks go to the zipserver; the SSTs stay built-in format.
        let manager = codec::register(Some(client.clone()), z.blocks_in_flight)?;
        overrides.set_option("compression_manager", manager)?;
    }
    Ok((child, dirs, input, overrides, remote))
}

fn fail(dir: &Path, code: i32, error: &dyn std::fmt::Display) -> i32 {
    let message = error.to_string();
    eprintln!("child failed: {message}");
    if let Err(e) = std::fs::write(dir.join(spec::ERROR), message) {
        eprintln!("failed to write {}: {e}", spec::ERROR);
    }
    code
}

/// Blocks SIGTERM in every thread and waits for it on one of its own, which
/// sets the canceled flag: no work happens in a signal handler.
fn cancel_on_sigterm(cancel: Arc<CancelFlag>) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    // Done before any other thread exists, so every later thread inherits
    // the mask.
    set.thread_block()?;
    std::thread::Builder::new()
        .name("sigterm".into())
        .spawn(move || {
            if set.wait().is_ok() {
                eprintln!("child got SIGTERM: cancelling");
                cancel.cancel();
            }
        })?;
    Ok(())
}
