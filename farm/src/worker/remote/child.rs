//! An HTTP storage attempt's child: its own [`RemoteSource`] (a fresh list
//! and cache), registered for RocksDB, and the override built from the
//! job's OPTIONS file read through it.

use super::error::RemoteError;
use super::source::RemoteSource;
use crate::rocks::open_and_compact::Override;
use crate::rocks::remote_fs::{self, Registration};
use crate::rocks::RocksError;
use crate::worker::child::spec::ChildRemote;
use crate::worker::options_file::OptionsText;
use std::sync::Arc;

/// Why a child could not open its job's files.
#[derive(Debug, thiserror::Error)]
pub enum ChildRemoteError {
    #[error("remote storage: {0}")]
    Remote(#[from] RemoteError),
    #[error("remote options file: {0}")]
    Rocks(#[from] RocksError),
}

/// The job's files, readable by RocksDB while this lives.
pub struct ChildSource {
    pub source: Arc<RemoteSource>,
    pub registration: Registration,
}

/// Opens the job's files and builds the override from `options_file`
/// (its name in the DB) for column family `cf_name`; also returns that
/// file's text, for the same checks as admission.
pub fn open(
    remote: &ChildRemote,
    options_file: &str,
    cf_name: &str,
) -> Result<(ChildSource, Override, OptionsText), ChildRemoteError> {
    let source = Arc::new(RemoteSource::open(&remote.storage, &remote.inputs)?);
    let registration = remote_fs::register(source.clone());
    let overrides =
        Override::from_remote_options_file(&registration, options_file, cf_name, &remote.inputs)?;
    let text = OptionsText::parse(&String::from_utf8_lossy(&source.read_whole(options_file)?));
    Ok((
        ChildSource {
            source,
            registration,
        },
        overrides,
        text,
    ))
}
