//! Attempt identity and naming.
//!
//! An attempt is identified by five fields ([`AttemptKey`]) and named
//! `<instance>/<start_time>/<db>/job-%05d-%02d/att-%02d` everywhere (worker
//! directories, logs, etcd keys), where `<db>` is `dbname` relative to
//! `hoster_root` with `/` replaced by `_` (`_` alone when `dbname` is the
//! root itself).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Component, Path};

/// The five fields that identify an attempt; the body of `/probe` and
/// `/shutdown`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptKey {
    /// The hoster's name (one path component).
    pub instance_name: String,
    /// When the hoster opened the DB, seconds since the Unix epoch.
    pub start_time: u64,
    /// The DB directory in the hoster's path space.
    pub dbname: String,
    /// RocksDB's job id: DB job << 32 | subcompaction.
    pub job_id: u64,
    /// The hoster's attempt number for this job, from 0.
    pub attempt: u32,
}

impl AttemptKey {
    /// RocksDB's DB-wide job number (`job_id >> 32`).
    pub fn db_job(&self) -> u32 {
        (self.job_id >> 32) as u32
    }

    /// The subcompaction's index (`job_id & 0xffffffff`).
    pub fn sub_job(&self) -> u32 {
        self.job_id as u32
    }
}

/// Why a job's names cannot be turned into an attempt name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("instance_name {0:?} must be 1-128 characters of [A-Za-z0-9._-], not . or ..")]
    Instance(String),
    #[error("{field} {path:?} is not below hoster_root {hoster_root:?}")]
    NotBelowRoot {
        field: &'static str,
        path: String,
        hoster_root: String,
    },
    #[error("{field} {value:?} must be an absolute path without . or .. components")]
    NotNormal { field: &'static str, value: String },
}

/// The attempt's name, built from validated parts only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptName(String);

impl AttemptName {
    /// The name of `key`'s attempt, whose DB lies below `hoster_root`;
    /// refuses names that could leave a directory (see [`NameError`]).
    pub fn new(key: &AttemptKey, hoster_root: &str) -> Result<Self, NameError> {
        check_instance_name(&key.instance_name)?;
        let rel = relative_below(&key.dbname, hoster_root, "dbname")?;
        let db = if rel.is_empty() {
            "_".to_owned()
        } else {
            rel.replace('/', "_")
        };
        Ok(AttemptName(format!(
            "{}/{}/{}/job-{:05}-{:02}/att-{:02}",
            key.instance_name,
            key.start_time,
            db,
            key.db_job(),
            key.sub_job(),
            key.attempt
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttemptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `name` can be an `instance_name`: 1 to 128 characters of
/// `[A-Za-z0-9._-]`, neither `.` nor `..`.
pub fn check_instance_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::Instance(name.to_owned()))
    }
}

/// Checks that `path` is absolute and has no `.`/`..` components.
pub fn check_normal(path: &str, field: &'static str) -> Result<(), NameError> {
    let p = Path::new(path);
    let normal = p.is_absolute()
        && !path.contains('\0')
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !path.split('/').any(|c| c == "." || c == "..");
    if normal {
        Ok(())
    } else {
        Err(NameError::NotNormal {
            field,
            value: path.to_owned(),
        })
    }
}

/// `path` relative to `root` (both normal absolute paths), "" when equal.
pub fn relative_below(path: &str, root: &str, field: &'static str) -> Result<String, NameError> {
    check_normal(path, field)?;
    check_normal(root, "hoster_root")?;
    let rel = Path::new(path)
        .strip_prefix(root)
        .map_err(|_| NameError::NotBelowRoot {
            field,
            path: path.to_owned(),
            hoster_root: root.to_owned(),
        })?;
    Ok(rel.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(instance: &str, dbname: &str, job_id: u64) -> AttemptKey {
        AttemptKey {
            instance_name: instance.into(),
            start_time: 1700000000,
            dbname: dbname.into(),
            job_id,
            attempt: 1,
        }
    }

    #[test]
    fn names_follow_the_contract() {
        let n =
            AttemptName::new(&key("app1", "/data/dbs/users/main", (7 << 32) | 2), "/data").unwrap();
        assert_eq!(
            n.as_str(),
            "app1/1700000000/dbs_users_main/job-00007-02/att-01"
        );
        let root = AttemptName::new(&key("app1", "/data", 0), "/data").unwrap();
        assert_eq!(root.as_str(), "app1/1700000000/_/job-00000-00/att-01");
    }

    #[test]
    fn hostile_names_are_refused() {
        assert!(AttemptName::new(&key("../x", "/data/db", 0), "/data").is_err());
        assert!(AttemptName::new(&key("a/b", "/data/db", 0), "/data").is_err());
        assert!(AttemptName::new(&key("", "/data/db", 0), "/data").is_err());
        assert!(AttemptName::new(&key("a", "/data/../etc", 0), "/data").is_err());
        assert!(AttemptName::new(&key("a", "/other/db", 0), "/data").is_err());
        assert!(AttemptName::new(&key("a", "data/db", 0), "data").is_err());
        assert!(AttemptName::new(&key("a", "/data/./db", 0), "/data").is_err());
        assert!(AttemptName::new(&key("a", "/datadb", 0), "/data").is_err());
    }
}
