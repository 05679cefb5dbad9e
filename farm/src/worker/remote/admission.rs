//! Admission of an HTTP storage job: nothing of the worker's own storage
//! is read and no path of the job is mapped. The job's file list and its
//! OPTIONS file are fetched from the hoster's endpoint; the override is
//! built from that file through the remote file system and checked as in
//! the shared mode. The prepared job holds the [`RemoteSource`] (and its
//! registration) for an in-process attempt.

use super::source::RemoteSource;
use crate::protocol::attempt::AttemptName;
use crate::protocol::job::Job;
use crate::protocol::remote::RemoteStorage;
use crate::rocks::open_and_compact::Override;
use crate::rocks::remote_fs::{self, Registration, PREFIX};
use crate::worker::admission::{check_options, read_input, AdmissionError};
use crate::worker::config::WorkerConfig;
use crate::worker::input_paths;
use crate::worker::options_file::OptionsText;
use crate::worker::paths::Mapped;
use crate::worker::plugin_catalog::Catalog;
use crate::worker::runner::PreparedJob;
use crate::worker::space_guard;
use std::path::PathBuf;
use std::sync::Arc;

/// The local output directory of an attempt, inside its attempt directory.
pub const OUTPUT: &str = "output";

/// What an HTTP storage attempt holds beyond a shared-mode one.
pub struct RemotePrepared {
    pub storage: RemoteStorage,
    /// The input files' plain names (the child opens its own source).
    pub inputs: Vec<String>,
    pub source: Arc<RemoteSource>,
    /// Keeps the source readable at `registration.db_path()`.
    pub registration: Registration,
}

pub fn prepare(
    config: &WorkerConfig,
    catalog: &Catalog,
    job: Job,
    name: AttemptName,
    storage: &RemoteStorage,
) -> Result<(Job, AttemptName, PreparedJob), AdmissionError> {
    use AdmissionError::Refused;
    if !config.remote_storage {
        return Err(Refused(super::error::RemoteError::Disabled.to_string()));
    }
    let (input, info) = read_input(&job)?;
    let inputs = info
        .input_files
        .iter()
        .map(|f| input_paths::input_file_name(f).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Refused(e.to_string()))?;
    let source = RemoteSource::open(storage, &inputs)
        .map(Arc::new)
        .map_err(|e| Refused(format!("remote storage: {e}")))?;
    let input_files: Vec<(String, u64)> = inputs
        .iter()
        .map(|n| {
            (
                n.clone(),
                crate::rocks::remote_fs::RemoteFiles::size(&*source, n).unwrap_or(0),
            )
        })
        .collect();
    let input_bytes = input_files
        .iter()
        .fold(0u64, |sum, (_, size)| sum.saturating_add(*size));
    // The outputs are written on the worker's own disk before the push.
    space_guard::check(
        &config.worker_db_root,
        input_bytes,
        config.output_space_margin,
    )
    .map_err(|e| Refused(e.to_string()))?;
    let options_name = format!("OPTIONS-{:06}", info.options_file_number);
    let registration = remote_fs::register(source.clone());
    let overrides =
        Override::from_remote_options_file(&registration, &options_name, &info.cf_name, &inputs)
            .map_err(|e| Refused(format!("cannot use the job's {options_name}: {e}")))?;
    let loaded = overrides
        .describe()
        .map_err(|e| Refused(format!("cannot inspect the options of {options_name}: {e}")))?;
    let bytes = source
        .read_whole(&options_name)
        .map_err(|e| Refused(format!("cannot read the job's {options_name}: {e}")))?;
    let text = OptionsText::parse(&String::from_utf8_lossy(&bytes));
    check_options(catalog, &text, &info.cf_name, &loaded, &job)?;
    let db_path = registration.db_path();
    let prepared = PreparedJob {
        db: Mapped {
            base: PathBuf::from(PREFIX.trim_end_matches('/')),
            rel: db_path.file_name().map(PathBuf::from).unwrap_or_default(),
        },
        output: Mapped {
            base: config.worker_db_root.clone(),
            rel: PathBuf::from(name.as_str()).join(OUTPUT),
        },
        input,
        cf_name: info.cf_name,
        options_file: options_name,
        overrides,
        input_files,
        input_bytes,
        mount: None,
        timings: Default::default(),
        remote: Some(RemotePrepared {
            storage: storage.clone(),
            inputs,
            source,
            registration,
        }),
    };
    Ok((job, name, prepared))
}
