//! The HTTP storage mode's contract (`docs/REMOTE_STORAGE.md`): the
//! `remote` object of a job, the hoster's file endpoint's paths and
//! answers, and the names a job may read and write.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/jobs/<job>/files` | [`FileList`] |
//! | `GET /v1/jobs/<job>/files/<name>` with `Range: bytes=a-b` | `206`, exactly those bytes of a readable file |
//! | `PUT /v1/jobs/<job>/out/<name>` | `201`: one output file, created once |
//!
//! Every request carries `Authorization: Bearer <token>`; a wrong token, an
//! unknown job or an expired capability is `401` or `404`, before anything
//! is read.

use serde::{Deserialize, Serialize};

/// The path prefix of every job on the file endpoint.
pub const JOBS: &str = "/v1/jobs";
/// The largest range one request may ask for.
pub const MAX_RANGE_BYTES: u64 = 16 << 20;

/// A job's `remote` object: where its files are and the capability that
/// reads them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStorage {
    /// The hoster's file endpoint: `http://host:port` (no path).
    pub url: String,
    /// The job's public id on that endpoint (hex).
    pub job: String,
    /// The capability: 256 random bits, hex. Never logged.
    pub token: String,
    /// When the capability ends, in seconds since the Unix epoch.
    pub expires_unix: u64,
}

impl std::fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStorage")
            .field("url", &self.url)
            .field("job", &self.job)
            .field("token", &"<redacted>")
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

impl RemoteStorage {
    /// The URL of the job's file list.
    pub fn files_url(&self) -> String {
        format!(
            "{}{JOBS}/{}/files",
            self.url.trim_end_matches('/'),
            self.job
        )
    }

    /// The URL of one file of the job.
    pub fn file_url(&self, name: &str) -> String {
        format!("{}/{name}", self.files_url())
    }

    /// The URL an output named `name` is pushed to.
    pub fn output_url(&self, name: &str) -> String {
        format!(
            "{}{JOBS}/{}/out/{name}",
            self.url.trim_end_matches('/'),
            self.job
        )
    }

    /// The header value that presents the capability.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// This object with the token left out (for `job.json`).
    pub fn redacted(&self) -> RemoteStorage {
        RemoteStorage {
            token: "<redacted>".into(),
            ..self.clone()
        }
    }
}

/// The answer of `GET /v1/jobs/<job>/files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    pub files: Vec<FileEntry>,
}

/// One file of a job's DB directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// A plain file name in the DB directory.
    pub name: String,
    /// Its size (for the MANIFEST: the length pinned at schedule time).
    pub size: u64,
    /// Whether its bytes may be read: `CURRENT`, the MANIFEST, the OPTIONS
    /// file and the inputs. Other live SSTs are listed with their size
    /// only: the secondary open checks sizes, never their content.
    #[serde(default)]
    pub readable: bool,
}

/// Whether `name` is a plain file name: not empty, no `/`, no NUL, not `.`
/// or `..`, printable ASCII only.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Whether `name` is a file a worker may push: an SST (`<digits>.sst`),
/// `rpc.results` or `compact.done`.
pub fn is_output_name(name: &str) -> bool {
    use super::output_dir::{COMPACT_DONE, RPC_RESULTS};
    if name == RPC_RESULTS || name == COMPACT_DONE {
        return true;
    }
    name.strip_suffix(".sst")
        .is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` is a WAL: never part of a job.
pub fn is_wal(name: &str) -> bool {
    name.ends_with(".log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_outputs_are_few() {
        for bad in ["", ".", "..", "a/b", "/etc/passwd", "../x", "a\0b", "a b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        assert!(is_plain_name("000012.sst") && is_plain_name("MANIFEST-000005"));
        for ok in ["000123.sst", "rpc.results", "compact.done"] {
            assert!(is_output_name(ok), "{ok}");
        }
        for bad in [
            ".sst",
            "x.sst",
            "CURRENT",
            "../1.sst",
            "1.sst/",
            "000001.log",
        ] {
            assert!(!is_output_name(bad), "{bad}");
        }
        assert!(is_wal("000007.log"));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let r = RemoteStorage {
            url: "http://127.0.0.1:1".into(),
            job: "ab".into(),
            token: "secret-token".into(),
            expires_unix: 1,
        };
        assert!(!format!("{r:?}").contains("secret-token"));
        assert_eq!(
            r.file_url("CURRENT"),
            "http://127.0.0.1:1/v1/jobs/ab/files/CURRENT"
        );
        assert_eq!(
            r.output_url("1.sst"),
            "http://127.0.0.1:1/v1/jobs/ab/out/1.sst"
        );
    }
}
