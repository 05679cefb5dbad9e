//! The child's side of MULTI_PROCESS: `dcompact-worker --child <attempt dir>`.

use super::spec::{self, ChildSpec};
use crate::protocol::job::Job;
use crate::rocks::open_and_compact::{open_and_compact, CancelFlag, Override};
use crate::rocks::plugins;
use crate::worker::options_file::{check_override, OptionsText};
use crate::worker::runner::{named_result, persist_result, AttemptDirs};
use crate::worker::timings::{now_us, AttemptTimings, CHILD_TIMINGS};
use nix::sys::signal::{SigSet, Signal};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use zipserver::client::ZipClient;
use zipserver::codec;

/// The child's zipserver client, when the worker has a zipserver (one
/// attempt per process, so one client).
static ZIP_CLIENT: OnceLock<Arc<ZipClient>> = OnceLock::new();

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
    let cancel = Arc::new(CancelFlag::new());
    if let Err(e) = cancel_on_sigterm(cancel.clone()) {
        eprintln!("failed to install the SIGTERM handler: {e}");
        return fail(
            dir,
            spec::EXIT_SETUP_FAILED,
            &format!("failed to install the SIGTERM handler: {e}"),
        );
    }
    let prepared = match prepare(dir) {
        Ok(p) => p,
        Err(e) => return fail(dir, spec::EXIT_SETUP_FAILED, &e),
    };
    let (child, dirs, input, overrides) = prepared;
    timings.prepared_us = Some(now_us());
    eprintln!(
        "child {} compacting {} cf={} into {}",
        std::process::id(),
        child.db.path().display(),
        child.cf_name,
        child.output.path().display()
    );
    match open_and_compact(
        &dirs.db_path(),
        &dirs.output_path(),
        &input,
        &overrides,
        &cancel,
        false,
    ) {
        Ok(result) => {
            timings.compacted_us = Some(now_us());
            let result = match named_result(&result, &child.output) {
                Ok(r) => r,
                Err(e) => return fail(dir, spec::EXIT_SETUP_FAILED, &e),
            };
            if let Err(e) = persist_result(&dirs.output, &result, &child.key) {
                return fail(dir, spec::EXIT_SETUP_FAILED, &e);
            }
            timings.persisted_us = Some(now_us());
            let tmp = dir.join(spec::RESULT_TMP);
            let written = std::fs::write(&tmp, &result)
                .and_then(|()| std::fs::rename(&tmp, dir.join(spec::RESULT)));
            match written {
                Ok(()) => {
                    eprintln!("child done: {} result bytes", result.len());
                    spec::EXIT_OK
                }
                Err(e) => fail(
                    dir,
                    spec::EXIT_SETUP_FAILED,
                    &format!("failed to write the result: {e}"),
                ),
            }
        }
        Err(_) if cancel.is_set() => {
            eprintln!("child cancelled");
            spec::EXIT_CANCELLED
        }
        Err(e) => fail(dir, spec::EXIT_COMPACTION_FAILED, &e.to_string()),
    }
}

type Prepared = (ChildSpec, AttemptDirs, Vec<u8>, Override);

fn prepare(dir: &Path) -> Result<Prepared, String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("failed to read {name}: {e}"))
    };
    let child: ChildSpec = serde_json::from_slice(&read(spec::CHILD_SPEC)?)
        .map_err(|e| format!("invalid {}: {e}", spec::CHILD_SPEC))?;
    let job: Job =
        serde_json::from_slice(&read("job.json")?).map_err(|e| format!("invalid job.json: {e}"))?;
    let input = job
        .decode_input()
        .map_err(|e| format!("invalid input: {e}"))?;
    for p in &child.plugins {
        plugins::load(p).map_err(|e| e.to_string())?;
    }
    let dirs = AttemptDirs::open(&child.db, &child.output).map_err(|e| e.to_string())?;
    let options_file = dirs.db_path().join(&child.options_file);
    let mut overrides =
        Override::from_options_file(&options_file, &child.cf_name).map_err(|e| e.to_string())?;
    // With the plugins loaded here, every class the OPTIONS file names must
    // be in the override.
    let loaded = overrides.describe().map_err(|e| e.to_string())?;
    let text = OptionsText::read(&options_file)
        .map_err(|e| format!("failed to read the options file: {e}"))?;
    check_override(&text, &child.cf_name, &loaded, &|_, _| false)?;
    overrides
        .set_info_log(&dir.join("LOG.rocksdb"))
        .map_err(|e| e.to_string())?;
    overrides
        .set_option("db_host_id", &child.identity)
        .map_err(|e| e.to_string())?;
    crate::worker::selftest::apply(&mut overrides)?;
    if let Some(z) = &child.zip {
        let client = ZIP_CLIENT.get_or_init(|| Arc::new(ZipClient::new(z.clone())));
        // Blocks go to the zipserver; the SSTs stay built-in format.
        let manager =
            codec::register(Some(client.clone()), z.blocks_in_flight).map_err(|e| e.to_string())?;
        overrides
            .set_option("compression_manager", manager)
            .map_err(|e| e.to_string())?;
    }
    Ok((child, dirs, input, overrides))
}

fn fail(dir: &Path, code: i32, message: &str) -> i32 {
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
