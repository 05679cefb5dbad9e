//! Mapping hoster paths into the worker's path space, and confining them.
//!
//! A hoster path below `hoster_root` maps to
//! `${NFS_MOUNT_ROOT}/${instance_name}/<path relative to hoster_root>`, or to
//! itself when `NFS_MOUNT_ROOT` is unset (one machine, or the same mount path
//! on both sides). Every mapped path must stay below the mapped root on the
//! real filesystem: a symlink that leads out is refused.

use crate::protocol::attempt::{relative_below, NameError};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("{field} {path} leads outside {root} on the filesystem")]
    Escapes {
        field: &'static str,
        path: PathBuf,
        root: PathBuf,
    },
    #[error("failed to resolve {path}: {source}")]
    Resolve {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One job's view of the shared storage.
#[derive(Debug, Clone)]
pub struct PathMap {
    hoster_root: String,
    worker_root: PathBuf,
}

impl PathMap {
    pub fn new(nfs_mount_root: Option<&Path>, instance_name: &str, hoster_root: &str) -> Self {
        let worker_root = match nfs_mount_root {
            Some(root) => root.join(instance_name),
            None => PathBuf::from(hoster_root),
        };
        PathMap {
            hoster_root: hoster_root.to_owned(),
            worker_root,
        }
    }

    /// The worker's path for hoster path `path` (which must be below
    /// `hoster_root`), checked against symlinks that leave the root.
    pub fn map(&self, path: &str, field: &'static str) -> Result<PathBuf, PathError> {
        let rel = relative_below(path, &self.hoster_root, field)?;
        let mapped = if rel.is_empty() {
            self.worker_root.clone()
        } else {
            self.worker_root.join(rel)
        };
        self.confine(&mapped, field)?;
        Ok(mapped)
    }

    /// Checks that the existing part of `path` resolves below the root.
    fn confine(&self, path: &Path, field: &'static str) -> Result<(), PathError> {
        let root = self
            .worker_root
            .canonicalize()
            .map_err(|source| PathError::Resolve {
                path: self.worker_root.clone(),
                source,
            })?;
        let mut existing = path;
        let resolved = loop {
            match existing.canonicalize() {
                Ok(p) => break p,
                Err(e) if e.kind() == io::ErrorKind::NotFound => match existing.parent() {
                    Some(parent) => existing = parent,
                    None => {
                        return Err(PathError::Resolve {
                            path: path.to_owned(),
                            source: e,
                        })
                    }
                },
                Err(source) => {
                    return Err(PathError::Resolve {
                        path: existing.to_owned(),
                        source,
                    })
                }
            }
        };
        if resolved.starts_with(&root) {
            Ok(())
        } else {
            Err(PathError::Escapes {
                field,
                path: path.to_owned(),
                root,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_mount_root_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let m = PathMap::new(None, "app", root);
        assert_eq!(
            m.map(&format!("{root}/db"), "dbname").unwrap(),
            dir.path().join("db")
        );

        let mnt = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(mnt.path().join("app/db")).unwrap();
        let m = PathMap::new(Some(mnt.path()), "app", "/hoster/data");
        assert_eq!(
            m.map("/hoster/data/db", "dbname").unwrap(),
            mnt.path().join("app/db")
        );
        assert_eq!(
            m.map("/hoster/data/db/out/new", "output_dir").unwrap(),
            mnt.path().join("app/db/out/new")
        );
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let root = dir.path().to_str().unwrap();
        let m = PathMap::new(None, "app", root);
        let e = m.map(&format!("{root}/link/x"), "output_dir").unwrap_err();
        assert!(matches!(e, PathError::Escapes { .. }), "{e}");
        assert!(m.map(&format!("{root}/../etc"), "dbname").is_err());
    }
}
