//! Why a remote job's files could not be read or its outputs pushed.

/// A failure of the HTTP storage mode on the worker. Any of them fails the
/// attempt (or refuses the job at admission): the hoster compacts locally.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The worker does not take HTTP jobs (`REMOTE_STORAGE` is off).
    #[error("this worker does not take HTTP storage jobs (REMOTE_STORAGE=false)")]
    Disabled,
    /// The job's `remote.url` is not an `http://` or `https://` URL.
    #[error("remote.url {0:?} is not an http:// or https:// URL without a path")]
    BadUrl(String),
    /// The capability's expiry has passed.
    #[error("the job's capability expired at {0} (unix seconds)")]
    Expired(u64),
    /// The endpoint answered with an error status.
    #[error("{what}: the hoster's file endpoint answered {status}")]
    Status { what: String, status: u16 },
    /// The request did not complete.
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The answer's body could not be read or was not what was asked for.
    #[error("{what}: {source}")]
    Body {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The file list is not JSON of the expected shape, or lies (names
    /// that are not plain, a WAL).
    #[error("the job's file list is unusable: {0}")]
    BadList(String),
    /// A file the job needs is not in its list, or not readable.
    #[error("{0} is not a readable file of this job")]
    NotInJob(String),
    /// A local output could not be read for the push.
    #[error("failed to read output {name}: {source}")]
    Output {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// The result could not be read to find its outputs.
    #[error("failed to read the result: {0}")]
    Result(#[source] crate::rocks::RocksError),
}
