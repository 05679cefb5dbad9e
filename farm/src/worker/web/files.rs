//! `GET /attempts/<attempt name>/<file>`: an attempt's retained files.
//!
//! Only the files an operator needs for a post-mortem are served, and only
//! from below `WORKER_DB_ROOT`: the request names a relative path whose
//! parts are plain names (no `.`, `..`, empty parts or NUL), the file name
//! is one of [`SERVED`], and the resolved path (symbolic links followed)
//! must still lie below the root's resolved path.

use std::path::{Path, PathBuf};

/// The files of an attempt directory the web view serves.
pub const SERVED: [&str; 5] = [
    "LOG",
    "LOG.child",
    "LOG.rocksdb",
    "summary.html",
    "job.json",
];

/// Why a file is not served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error(
        "not an attempt file: {0:?} (served: LOG, LOG.child, LOG.rocksdb, summary.html, job.json)"
    )]
    NotServed(String),
    #[error("invalid path part {0:?}")]
    BadPart(String),
    #[error("{0} resolves outside WORKER_DB_ROOT")]
    Outside(String),
    #[error("no such file: {0}")]
    Missing(String),
}

/// The served file's path, for the request path `rest` (after `/attempts/`).
pub fn resolve(root: &Path, rest: &str) -> Result<PathBuf, FileError> {
    let (dir, file) = rest.rsplit_once('/').unwrap_or(("", rest));
    if !SERVED.contains(&file) {
        return Err(FileError::NotServed(file.to_owned()));
    }
    let mut path = root.to_path_buf();
    for part in dir.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(FileError::BadPart(part.to_owned()));
        }
        path.push(part);
    }
    path.push(file);
    let real = path
        .canonicalize()
        .map_err(|_| FileError::Missing(rest.to_owned()))?;
    let real_root = root
        .canonicalize()
        .map_err(|_| FileError::Missing(rest.to_owned()))?;
    if !real.starts_with(&real_root) {
        return Err(FileError::Outside(rest.to_owned()));
    }
    if !real.is_file() {
        return Err(FileError::Missing(rest.to_owned()));
    }
    Ok(real)
}

/// The `Content-Type` of a served file.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_to_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let att = root.join("e2e/1/db/job-00001-00/att-00");
        std::fs::create_dir_all(&att).unwrap();
        std::fs::write(att.join("LOG"), "log").unwrap();
        std::fs::write(tmp.path().join("LOG"), "secret").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("escape")).unwrap();

        let ok = resolve(&root, "e2e/1/db/job-00001-00/att-00/LOG").unwrap();
        assert_eq!(std::fs::read_to_string(ok).unwrap(), "log");
        assert_eq!(
            resolve(&root, "e2e/1/db/job-00001-00/att-00/../../../../../LOG"),
            Err(FileError::BadPart("..".into()))
        );
        assert_eq!(
            resolve(&root, "../LOG"),
            Err(FileError::BadPart("..".into()))
        );
        assert_eq!(resolve(&root, "LOG"), Err(FileError::BadPart("".into())));
        assert_eq!(resolve(&root, "a//LOG"), Err(FileError::BadPart("".into())));
        assert_eq!(
            resolve(&root, "escape/LOG"),
            Err(FileError::Outside("escape/LOG".into()))
        );
        assert_eq!(
            resolve(&root, "e2e/1/db/job-00001-00/att-00/CURRENT"),
            Err(FileError::NotServed("CURRENT".into()))
        );
        assert_eq!(
            resolve(&root, "e2e/1/db/job-00001-00/att-00/LOG.child"),
            Err(FileError::Missing(
                "e2e/1/db/job-00001-00/att-00/LOG.child".into()
            ))
        );
    }
}
