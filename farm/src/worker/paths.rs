//! Mapping hoster paths into the worker's path space, and confining them to
//! a root the worker's configuration chose.
//!
//! - With `NFS_MOUNT_ROOT`, a hoster path below the job's `hoster_root`
//!   maps to `${NFS_MOUNT_ROOT}/${instance_name}/<path relative to
//!   hoster_root>`; the root is the instance's mount point.
//! - Without it (same paths on both sides), the job's `hoster_root` must be
//!   one of `HOSTER_ROOTS` or lie below one; the path maps to itself and is
//!   confined to that configured root. A request never chooses its root.
//!
//! A mapped path is a trusted base plus a relative path of plain
//! components. At admission the part of it that exists is opened beneath
//! the base without following any symlink ([`crate::worker::beneath`]);
//! when the attempt runs it is opened the same way again, so a tree changed
//! in between cannot lead the worker out.

use crate::protocol::attempt::{relative_below, NameError};
use crate::worker::beneath::{self, Crossing};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("hoster_root {hoster_root:?} is not one of this worker's HOSTER_ROOTS ({allowed}); a job's paths must lie below a root the worker was configured with")]
    RootNotAllowed {
        hoster_root: String,
        allowed: String,
    },
    #[error("{field} {path}: leads outside {root} or through a symlink: {source}")]
    Escapes {
        field: &'static str,
        path: PathBuf,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to open {root}: {source}")]
    Root {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A path in the worker's space: a root the worker trusts and a relative
/// path of plain components below it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mapped {
    pub base: PathBuf,
    pub rel: PathBuf,
}

impl Mapped {
    /// The full path, for logs and for reading through `base`'s mount.
    pub fn path(&self) -> PathBuf {
        if self.rel.as_os_str().is_empty() {
            self.base.clone()
        } else {
            self.base.join(&self.rel)
        }
    }

    /// Opens the base (a root from the worker's configuration).
    pub fn open_base(&self) -> Result<OwnedFd, PathError> {
        beneath::open_trusted(&self.base).map_err(|source| PathError::Root {
            root: self.base.clone(),
            source,
        })
    }

    /// Opens the directory beneath the base, following no symlink.
    pub fn open_dir(&self, field: &'static str) -> Result<OwnedFd, PathError> {
        let base = self.open_base()?;
        beneath::open_dir(&base, &self.rel, Crossing::Mounts)
            .map_err(|source| self.escapes(field, source))
    }

    /// Creates the directory beneath the base, following no symlink; the
    /// last component must be new.
    pub fn create_dir(&self, field: &'static str) -> Result<OwnedFd, PathError> {
        let base = self.open_base()?;
        beneath::create_dir(&base, &self.rel, 0o755, true, Crossing::Mounts)
            .map_err(|source| self.escapes(field, source))
    }

    fn escapes(&self, field: &'static str, source: io::Error) -> PathError {
        PathError::Escapes {
            field,
            path: self.path(),
            root: self.base.clone(),
            source,
        }
    }

    /// Checks that the part of the path that exists is reached beneath the
    /// base without a symlink.
    fn confine(&self, field: &'static str) -> Result<(), PathError> {
        let base = self.open_base()?;
        let mut existing = self.rel.as_path();
        loop {
            match beneath::open_dir(&base, existing, Crossing::Mounts) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match existing.parent() {
                    Some(parent) => existing = parent,
                    None => return Err(self.escapes(field, e)),
                },
                // A regular file where a directory is named: admission says so.
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(()),
                Err(e) => return Err(self.escapes(field, e)),
            }
        }
    }
}

/// One job's view of the shared storage.
#[derive(Debug, Clone)]
pub struct PathMap {
    hoster_root: String,
    /// The trusted root paths are confined to.
    base: PathBuf,
    /// Where the job's `hoster_root` lies below `base`.
    prefix: PathBuf,
}

impl PathMap {
    /// With `nfs_mount_root`, the instance's mount; without, the configured
    /// hoster root the job's `hoster_root` lies in.
    pub fn new(
        nfs_mount_root: Option<&Path>,
        hoster_roots: &[PathBuf],
        instance_name: &str,
        hoster_root: &str,
    ) -> Result<Self, PathError> {
        crate::protocol::attempt::check_normal(hoster_root, "hoster_root")?;
        let (base, prefix) = match nfs_mount_root {
            Some(root) => (root.join(instance_name), PathBuf::new()),
            None => {
                let allowed = hoster_roots.iter().find_map(|r| {
                    Path::new(hoster_root)
                        .strip_prefix(r)
                        .ok()
                        .map(|rel| (r.clone(), rel.to_owned()))
                });
                allowed.ok_or_else(|| PathError::RootNotAllowed {
                    hoster_root: hoster_root.to_owned(),
                    allowed: hoster_roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":"),
                })?
            }
        };
        Ok(PathMap {
            hoster_root: hoster_root.to_owned(),
            base,
            prefix,
        })
    }

    /// The worker's path for hoster path `path` (which must be below
    /// `hoster_root`), checked against symlinks and escapes.
    pub fn map(&self, path: &str, field: &'static str) -> Result<Mapped, PathError> {
        let rel = relative_below(path, &self.hoster_root, field)?;
        let mapped = Mapped {
            base: self.base.clone(),
            rel: self.prefix.join(rel),
        };
        mapped.confine(field)?;
        Ok(mapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_mount_root_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::create_dir_all(dir.path().join("app/db")).unwrap();
        let roots = [dir.path().to_owned()];
        let m = PathMap::new(None, &roots, "app", &format!("{root}/app")).unwrap();
        let db = m.map(&format!("{root}/app/db"), "dbname").unwrap();
        assert_eq!(db.path(), dir.path().join("app/db"));
        assert_eq!(db.base, dir.path());

        let mnt = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(mnt.path().join("app/db")).unwrap();
        let m = PathMap::new(Some(mnt.path()), &[], "app", "/hoster/data").unwrap();
        assert_eq!(
            m.map("/hoster/data/db", "dbname").unwrap().path(),
            mnt.path().join("app/db")
        );
        let out = m.map("/hoster/data/db/out/new", "output_dir").unwrap();
        assert_eq!(out.path(), mnt.path().join("app/db/out/new"));
        assert_eq!(out.base, mnt.path().join("app"));
    }

    #[test]
    fn a_root_the_worker_was_not_given_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let roots = [dir.path().join("data")];
        for bad in ["/", "/etc", "/tmp", &dir.path().display().to_string()] {
            let e = PathMap::new(None, &roots, "app", bad).unwrap_err();
            assert!(matches!(e, PathError::RootNotAllowed { .. }), "{bad}: {e}");
        }
        let e = PathMap::new(None, &[], "app", "/data").unwrap_err();
        assert!(matches!(e, PathError::RootNotAllowed { .. }), "{e}");
    }

    #[test]
    fn symlinks_are_refused_inside_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("inner")).unwrap();
        let root = dir.path().to_str().unwrap();
        let m = PathMap::new(None, &[dir.path().to_owned()], "app", root).unwrap();
        for p in ["link/x", "inner/x", "link"] {
            let e = m.map(&format!("{root}/{p}"), "output_dir").unwrap_err();
            assert!(matches!(e, PathError::Escapes { .. }), "{p}: {e}");
        }
        assert!(m.map(&format!("{root}/../etc"), "dbname").is_err());
        assert!(m.map(&format!("{root}/real/new/dir"), "output_dir").is_ok());
    }
}
