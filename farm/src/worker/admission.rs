//! Admission checks: from a request body to a job the worker will run.
//!
//! Malformed requests (not JSON, missing fields, an input that is not a
//! RocksDB compaction input, a column family that disagrees with the input)
//! are 400; well-formed jobs the worker will not run (names or paths that
//! leave their roots, an `output_dir` that is the DB itself or already
//! exists (the worker creates it when the attempt runs), a DB the worker
//! cannot see, options it cannot rebuild exactly) are 412. Names and paths
//! are checked first, before the input is read. Nothing is created on disk
//! before a job passes.

use crate::protocol::attempt::AttemptName;
use crate::protocol::job::Job;
use crate::protocol::limits;
use crate::rocks::open_and_compact::{Override, OverrideSummary};
use crate::rocks::serialized::InputInfo;
use crate::worker::beneath::{self, Crossing};
use crate::worker::config::WorkerConfig;
use crate::worker::input_paths::{self, InputPathError};
use crate::worker::mounts::spec::MountSpec;
use crate::worker::mounts::stale::is_stale_handle;
use crate::worker::mounts::table::MountTable;
use crate::worker::options_file::{check_override, plugin_class_names, OptionsText};
use crate::worker::paths::PathMap;
use crate::worker::plugin_catalog::{check_version, Catalog};
use crate::worker::runner::PreparedJob;
use crate::worker::space_guard;
use crate::worker::stats::RejectReason;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// 400.
    #[error("{0}")]
    Malformed(String),
    /// 412.
    #[error("{0}")]
    Refused(String),
}

impl AdmissionError {
    /// What the refusal counts as, and answers (see the server's one
    /// table from a refusal to its HTTP status).
    pub fn reason(&self) -> RejectReason {
        match self {
            AdmissionError::Malformed(_) => RejectReason::Malformed,
            AdmissionError::Refused(_) => RejectReason::Refused,
        }
    }
}

/// With `mounts` (`NFS_DYNAMIC_MOUNT`), the instance's storage is mounted
/// (or its mount shared) before any path is read, and the prepared job
/// holds the mount until its attempt ends.
pub fn admit(
    config: &WorkerConfig,
    catalog: &Catalog,
    mounts: Option<&Arc<MountTable>>,
    body: &[u8],
) -> Result<(Job, AttemptName, PreparedJob), AdmissionError> {
    use AdmissionError::{Malformed, Refused};
    let job: Job =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("invalid job JSON: {e}")))?;
    limits::check_job(&job).map_err(|e| Malformed(e.to_string()))?;
    let name =
        AttemptName::new(&job.key(), &job.hoster_root).map_err(|e| Refused(e.to_string()))?;
    if let Some(remote) = job.remote.clone() {
        // Nothing of the worker's storage is read: no mount, no path.
        return crate::worker::remote::admission::prepare(config, catalog, job, name, &remote);
    }
    let Some(table) = mounts else {
        return prepare(config, catalog, job, name);
    };
    let spec =
        MountSpec::from_job(&job, &config.mount_policy).map_err(|e| Refused(e.to_string()))?;
    let lease = table.acquire(&job.instance_name, &spec).map_err(|e| {
        Refused(format!(
            "failed to mount {spec} on {}: {e}",
            table.target(&job.instance_name).display()
        ))
    })?;
    // A mount gone stale shows first here, reading the DB: remount it once
    // and look again.
    let prepared = match prepare(config, catalog, job.clone(), name.clone()) {
        Err(Refused(why)) if is_stale_handle(&why) => {
            tracing::warn!(instance = %job.instance_name, error = %why, "stale file handle at admission: remounting");
            table
                .remount(&lease)
                .map_err(|e| Refused(format!("{why}; the remount failed: {e}")))?;
            prepare(config, catalog, job, name)
        }
        other => other,
    };
    prepared.map(|(job, name, mut prepared)| {
        prepared.mount = Some(lease);
        (job, name, prepared)
    })
}

/// Admission once the storage is in place: paths, input, options.
fn prepare(
    config: &WorkerConfig,
    catalog: &Catalog,
    job: Job,
    name: AttemptName,
) -> Result<(Job, AttemptName, PreparedJob), AdmissionError> {
    use AdmissionError::Refused;
    let map = PathMap::new(
        config.nfs_mount_root.as_deref(),
        &config.hoster_roots,
        &job.instance_name,
        &job.hoster_root,
    )
    .map_err(|e| Refused(e.to_string()))?;
    let db = map
        .map(&job.dbname, "dbname")
        .map_err(|e| Refused(e.to_string()))?;
    let output = map
        .map(&job.output_dir, "output_dir")
        .map_err(|e| Refused(e.to_string()))?;
    if output == db || job.output_dir == job.hoster_root {
        return Err(Refused(format!(
            "output_dir {} must be a directory of its own, not the DB or hoster_root",
            job.output_dir
        )));
    }
    // The worker creates the output directory itself when the attempt
    // runs, and deletes only what it created: one that exists is someone
    // else's.
    if output.open_dir("output_dir").is_ok() {
        return Err(Refused(format!(
            "output_dir {} already exists: the worker creates it itself",
            job.output_dir
        )));
    }
    let db_dir = db.open_dir("dbname").map_err(|e| Refused(e.to_string()))?;
    match beneath::open_file(&db_dir, Path::new("CURRENT"), Crossing::Mounts) {
        Ok(_) => {}
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Refused(format!(
                "cannot read {}: {e}",
                db.path().join("CURRENT").display()
            )))
        }
        _ => {
            return Err(Refused(format!(
                "dbname {} is not a RocksDB directory on this worker ({} has no CURRENT)",
                job.dbname,
                db.path().display()
            )))
        }
    }
    let (input, info) = read_input(&job)?;
    // The output must fit on its filesystem, with a margin: estimated by
    // the input's size.
    let input_files = input_file_sizes(&db_dir, &info.input_files)?;
    let input_bytes = input_files
        .iter()
        .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
    let db_path = beneath::fd_path(&db_dir);
    space_guard::check(&db_path, input_bytes, config.output_space_margin)
        .map_err(|e| Refused(e.to_string()))?;
    // The override comes from the column family's options in the OPTIONS
    // file the input names, and must carry everything that file says.
    let options_name = format!("OPTIONS-{:06}", info.options_file_number);
    let options_file = db_path.join(&options_name);
    let shown = db.path().join(&options_name);
    let overrides = Override::from_options_file(&options_file, &info.cf_name)
        .map_err(|e| Refused(format!("cannot use {}: {e}", shown.display())))?;
    let loaded = overrides.describe().map_err(|e| {
        Refused(format!(
            "cannot inspect the options of {}: {e}",
            shown.display()
        ))
    })?;
    let text = OptionsText::read(&options_file)
        .map_err(|e| Refused(format!("cannot read {}: {e}", shown.display())))?;
    check_options(catalog, &text, &info.cf_name, &loaded, &job)?;
    let prepared = PreparedJob {
        db,
        output,
        input,
        cf_name: info.cf_name,
        options_file: options_name,
        overrides,
        input_files,
        input_bytes,
        mount: None,
        timings: Default::default(),
        remote: None,
    };
    Ok((job, name, prepared))
}

/// The job's input, decoded and parsed, agreeing with the job's
/// `cf_name` and `output_level`, naming an OPTIONS file number in bounds.
pub(crate) fn read_input(job: &Job) -> Result<(Vec<u8>, InputInfo), AdmissionError> {
    use AdmissionError::{Malformed, Refused};
    let input = job
        .decode_input()
        .map_err(|e| Malformed(format!("compaction_service_input is not base64: {e}")))?;
    let info = InputInfo::parse(&input).map_err(|e| {
        Malformed(format!(
            "compaction_service_input is not a RocksDB compaction input: {e}"
        ))
    })?;
    if info.cf_name != job.cf_name {
        return Err(Malformed(format!(
            "cf_name {:?} differs from the input's column family {:?}",
            job.cf_name, info.cf_name
        )));
    }
    // The queue orders by level: the one the input names is the truth.
    if info.output_level != job.output_level {
        return Err(Malformed(format!(
            "output_level {} differs from the level the input names ({})",
            job.output_level, info.output_level
        )));
    }
    input_paths::check_options_file_number(info.options_file_number)
        .map_err(|e| Refused(e.to_string()))?;
    Ok((input, info))
}

/// The OPTIONS file's text against the override built from it: paths,
/// and plugin classes this worker has in the hoster's version.
pub(crate) fn check_options(
    catalog: &Catalog,
    text: &OptionsText,
    cf_name: &str,
    loaded: &OverrideSummary,
    job: &Job,
) -> Result<(), AdmissionError> {
    use AdmissionError::Refused;
    input_paths::check_options_paths(text, cf_name, &job.dbname)
        .map_err(|e| Refused(e.to_string()))?;
    // Plugin classes must be ones this worker has, in the hoster's version.
    let plugin_kind = |option: &str| match option {
        "merge_operator" => Some("merge_operator"),
        "compaction_filter" => Some("compaction_filter"),
        _ => None,
    };
    for (option, name) in plugin_class_names(text, cf_name) {
        let Some(kind) = plugin_kind(option) else {
            continue;
        };
        match catalog.version(kind, name) {
            Ok(Some(version)) => check_version(kind, name, version, &job.plugins)
                .map_err(|e| Refused(e.to_string()))?,
            Ok(None) => {}
            // Built-in classes load in this process; others wait for the catalog.
            Err(why)
                if loaded
                    .classes
                    .iter()
                    .any(|(o, n)| *o == option && n.is_empty()) =>
            {
                return Err(Refused(format!("{option}={name}: {why}")));
            }
            Err(_) => {}
        }
    }
    let known = |option: &str, name: &str| {
        plugin_kind(option).is_some_and(|kind| matches!(catalog.version(kind, name), Ok(Some(_))))
    };
    check_override(text, cf_name, loaded, &known).map_err(|e| Refused(e.to_string()))?;
    Ok(())
}

/// The input's SST files with their sizes: each must be a plain file name
/// in the DB directory (RocksDB writes them as `/<number>.sst`), opened
/// beneath it (412 otherwise); a file that is missing counts 0 (RocksDB
/// says so when the attempt runs).
fn input_file_sizes(db: &OwnedFd, files: &[String]) -> Result<Vec<(String, u64)>, AdmissionError> {
    files
        .iter()
        .map(|f| {
            let name = input_paths::input_file_name(f)
                .map_err(|e: InputPathError| AdmissionError::Refused(e.to_string()))?;
            let size = beneath::open_file(db, Path::new(name), Crossing::Mounts)
                .and_then(|file| file.metadata())
                .map_or(0, |m| m.len());
            Ok((name.to_owned(), size))
        })
        .collect()
}
