//! The roots the worker is given, checked before it touches anything.
//!
//! A worker runs as root and deletes what it believes is its own, so a
//! wrong `WORKER_DB_ROOT` must stop it at start, not cost the host its
//! files. The rules:
//!
//! - No root (`WORKER_DB_ROOT`, `NFS_MOUNT_ROOT`, a `HOSTER_ROOTS` entry)
//!   may be `/`, a system directory or a directory above one, nor lie
//!   inside a system tree such as `/usr` or `/proc` (checked on the path as
//!   given and as it resolves).
//! - `WORKER_DB_ROOT` is the worker's own: it creates it mode `0700` and
//!   writes the marker file [`ROOT_MARKER`] with a random root id into it.
//!   An existing directory is accepted when it carries that marker, or when
//!   it is empty (it is then adopted: mode `0700`, marker written). A
//!   directory without the marker that holds anything is refused: it is
//!   not the worker's to sweep. It must be owned by the worker's user and
//!   writable by no one else.
//! - The worker's root, the mount root and the hoster roots never contain
//!   one another: the retention sweep never walks hoster data, and hoster
//!   paths never reach the worker's attempts.

use crate::worker::beneath;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file that makes a directory a worker root; holds the root id.
pub const ROOT_MARKER: &str = ".dcompact-worker-root";

/// Directories a root may never be, nor contain.
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/cache",
    "/var/log",
    "/var/tmp",
    "/var/run",
    "/var/spool",
    "/var/mail",
    "/usr/local",
    "/snap",
    "/nix",
    "/data",
];

/// Trees a root may not lie inside at all.
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr", "/run",
];

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{name}={path}: {why}; choose a directory of its own, such as /var/lib/dcompact-worker or /srv/farm/{dir}", dir = name.to_ascii_lowercase())]
    System {
        name: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{outer_name}={outer} contains {inner_name}={inner}: the worker's attempts, mounts and hoster data must not contain one another")]
    Nested {
        outer_name: &'static str,
        outer: PathBuf,
        inner_name: &'static str,
        inner: PathBuf,
    },
    #[error("WORKER_DB_ROOT={path} holds {entry:?} and has no {ROOT_MARKER}: the worker deletes only what it created, so it will not sweep a directory it did not make; choose a new or empty directory")]
    Foreign { path: PathBuf, entry: String },
    #[error("WORKER_DB_ROOT={path}: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("WORKER_DB_ROOT={path}: {action} failed: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The worker's root, checked and opened: everything below it is reached
/// through `fd`.
#[derive(Debug)]
pub struct WorkerRoot {
    path: PathBuf,
    fd: OwnedFd,
    id: String,
}

impl WorkerRoot {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The random id in the root's marker: attempt directories carry it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Checks `path` as `WORKER_DB_ROOT` and opens it, creating it (mode
    /// 0700, with its marker) when missing, adopting it when empty.
    pub fn open(path: &Path) -> Result<WorkerRoot, RootError> {
        check_not_system("WORKER_DB_ROOT", path)?;
        let io = |action: &'static str| {
            move |source: io::Error| RootError::Io {
                path: path.to_owned(),
                action,
                source,
            }
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating its parent"))?;
        }
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("creating it")(e)),
        }
        let fd = beneath::open_root(path).map_err(io("opening it (a symlink is refused)"))?;
        let meta = std::fs::metadata(format!("/proc/self/fd/{}", raw(&fd)))
            .map_err(io("reading its owner"))?;
        check_owner(path, &meta)?;
        let id = match read_marker(&fd) {
            Some(id) => {
                if meta.mode() & 0o022 != 0 {
                    return Err(RootError::Unsafe {
                        path: path.to_owned(),
                        why: format!(
                            "mode {:o} lets others write into it; the worker made it 0700",
                            meta.mode() & 0o7777
                        ),
                    });
                }
                id
            }
            None => adopt(path, &fd)?,
        };
        Ok(WorkerRoot {
            path: path.to_owned(),
            fd,
            id,
        })
    }
}

fn raw(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

fn check_owner(path: &Path, meta: &std::fs::Metadata) -> Result<(), RootError> {
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(RootError::Unsafe {
            path: path.to_owned(),
            why: format!(
                "owned by uid {}, not by the worker's uid {euid}",
                meta.uid()
            ),
        });
    }
    Ok(())
}

fn read_marker(fd: &OwnedFd) -> Option<String> {
    let mut f = beneath::open_file(
        fd,
        Path::new(ROOT_MARKER),
        beneath::Crossing::SameFilesystem,
    )
    .ok()?;
    let mut text = String::new();
    io::Read::read_to_string(&mut f, &mut text).ok()?;
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("root_id="))?
        .trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Makes an empty directory the worker's root.
fn adopt(path: &Path, fd: &OwnedFd) -> Result<String, RootError> {
    let names = beneath::entries(fd).map_err(|source| RootError::Io {
        path: path.to_owned(),
        action: "listing it",
        source,
    })?;
    if let Some(first) = names.first() {
        return Err(RootError::Foreign {
            path: path.to_owned(),
            entry: first.to_string_lossy().into_owned(),
        });
    }
    std::fs::set_permissions(
        format!("/proc/self/fd/{}", raw(fd)),
        std::fs::Permissions::from_mode(0o700),
    )
    .map_err(|source| RootError::Io {
        path: path.to_owned(),
        action: "setting mode 0700",
        source,
    })?;
    let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let text = format!(
        "# The root of a dcompact-worker: it removes only attempt directories carrying this id.\nroot_id={id}\n"
    );
    beneath::write_new_file_synced(fd, ROOT_MARKER, text.as_bytes()).map_err(|source| {
        RootError::Io {
            path: path.to_owned(),
            action: "writing its marker",
            source,
        }
    })?;
    tracing::info!(root = %path.display(), "made a new worker root");
    Ok(id)
}

/// Checks that only the worker's user (or root) can create entries in
/// `dir`, the directory of a socket the worker trusts (the zipserver's):
/// anyone else could put a fake server there.
pub fn check_private_dir(name: &'static str, dir: &Path) -> Result<(), RootError> {
    let meta = std::fs::metadata(dir).map_err(|source| RootError::Io {
        path: dir.to_owned(),
        action: "reading the socket's directory",
        source,
    })?;
    let euid = nix::unistd::geteuid().as_raw();
    let owner_ok = meta.uid() == euid || meta.uid() == 0;
    if !owner_ok || meta.mode() & 0o022 != 0 {
        return Err(RootError::System {
            name,
            path: dir.to_owned(),
            why: format!(
                "the socket's directory is owned by uid {} with mode {:o}: others could plant a \
                 server there; use a directory only the worker's user can write",
                meta.uid(),
                meta.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// What a root is for, which decides how strict its check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// The worker creates and deletes below it (`WORKER_DB_ROOT`), or
    /// mounts on it (`NFS_MOUNT_ROOT`): no system directory at all.
    Owned,
    /// Shared storage hosters name (`HOSTER_ROOTS`): the worker reads DBs
    /// and creates output directories below it, so `/data` or `/srv` may
    /// be one, but not `/` or a system tree.
    Hoster,
}

/// Directories a hoster root may not be.
const NOT_HOSTER_ROOTS: &[&str] = &["/", "/home", "/root", "/var", "/var/lib", "/tmp", "/mnt"];

/// Refuses `/`, system directories, directories above them and paths
/// inside system trees, as given and as resolved.
pub fn check_not_system(name: &'static str, path: &Path) -> Result<(), RootError> {
    check_root(name, path, RootKind::Owned)
}

/// [`check_not_system`] with the rules of `kind`.
pub fn check_root(name: &'static str, path: &Path, kind: RootKind) -> Result<(), RootError> {
    let refuse = |why: String| RootError::System {
        name,
        path: path.to_owned(),
        why,
    };
    if !path.is_absolute() {
        return Err(refuse("must be an absolute path".into()));
    }
    let resolved = resolve_existing(path);
    let forbidden = match kind {
        RootKind::Owned => SYSTEM_DIRS,
        RootKind::Hoster => NOT_HOSTER_ROOTS,
    };
    for p in [path, resolved.as_path()] {
        if let Some(s) = forbidden.iter().find(|s| Path::new(s).starts_with(p)) {
            let why = if p == Path::new(s) {
                format!("{} is a system directory", p.display())
            } else {
                format!("{} contains the system directory {s}", p.display())
            };
            return Err(refuse(why));
        }
        if let Some(t) = SYSTEM_TREES.iter().find(|t| p.starts_with(t)) {
            return Err(refuse(format!(
                "{} is inside the system tree {t}",
                p.display()
            )));
        }
        if kind == RootKind::Owned && is_home(p) {
            return Err(refuse(format!("{} is a home directory", p.display())));
        }
    }
    Ok(())
}

/// `/home/<user>` itself.
fn is_home(p: &Path) -> bool {
    p.parent() == Some(Path::new("/home"))
}

/// `path` with symlinks resolved as far as it exists.
fn resolve_existing(path: &Path) -> PathBuf {
    let mut existing = path.to_owned();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut p = c;
            for r in rest.iter().rev() {
                p.push(r);
            }
            return p;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent.to_owned();
            }
            _ => return path.to_owned(),
        }
    }
}

/// Refuses roots of which one contains another (as given and resolved).
pub fn check_apart(roots: &[(&'static str, &Path)]) -> Result<(), RootError> {
    for (i, (a_name, a)) in roots.iter().enumerate() {
        for (b_name, b) in roots.iter().skip(i + 1) {
            let (ra, rb) = (resolve_existing(a), resolve_existing(b));
            let pairs = [
                (a_name, a, b_name, b, &ra, &rb),
                (b_name, b, a_name, a, &rb, &ra),
            ];
            for (on, o, iname, inn, ro, ri) in pairs {
                if inn.starts_with(o) || ri.starts_with(ro) {
                    return Err(RootError::Nested {
                        outer_name: on,
                        outer: o.to_path_buf(),
                        inner_name: iname,
                        inner: inn.to_path_buf(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_and_their_ancestors_are_refused() {
        for bad in [
            "/",
            "/usr",
            "/etc",
            "/var",
            "/var/lib",
            "/home",
            "/home/alice",
            "/root",
            "/tmp",
            "/usr/local/x",
            "/proc/1/root",
            "/sys/fs",
            "/etc/farm",
        ] {
            assert!(
                check_not_system("WORKER_DB_ROOT", Path::new(bad)).is_err(),
                "{bad} must be refused"
            );
        }
        for good in [
            "/var/lib/dcompact-worker",
            "/srv/farm/w",
            "/tmp/x",
            "/home/alice/w",
        ] {
            check_not_system("WORKER_DB_ROOT", Path::new(good)).unwrap();
        }
        let e = check_not_system("WORKER_DB_ROOT", Path::new("/")).unwrap_err();
        assert!(e.to_string().starts_with("WORKER_DB_ROOT=/:"), "{e}");
    }

    #[test]
    fn a_symlink_to_a_system_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("root");
        std::os::unix::fs::symlink("/usr", &link).unwrap();
        assert!(check_not_system("WORKER_DB_ROOT", &link).is_err());
        assert!(check_not_system("WORKER_DB_ROOT", &link.join("new")).is_err());
    }

    #[test]
    fn roots_must_not_contain_one_another() {
        let ok = check_apart(&[
            ("WORKER_DB_ROOT", Path::new("/srv/w")),
            ("NFS_MOUNT_ROOT", Path::new("/srv/mnt")),
        ]);
        assert!(ok.is_ok());
        let e = check_apart(&[
            ("WORKER_DB_ROOT", Path::new("/srv/w")),
            ("NFS_MOUNT_ROOT", Path::new("/srv/w/mnt")),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("NFS_MOUNT_ROOT=/srv/w/mnt"), "{e}");
        assert!(check_apart(&[
            ("HOSTER_ROOTS", Path::new("/srv")),
            ("WORKER_DB_ROOT", Path::new("/srv/w")),
        ])
        .is_err());
    }

    #[test]
    fn the_root_is_created_adopted_when_empty_and_refused_when_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new/root");
        let r = WorkerRoot::open(&new).unwrap();
        let mode = std::fs::metadata(&new).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let id = r.id().to_owned();
        drop(r);
        assert_eq!(WorkerRoot::open(&new).unwrap().id(), id, "marker kept");

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(WorkerRoot::open(&empty).is_ok());

        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(foreign.join("git/objects")).unwrap();
        let e = WorkerRoot::open(&foreign).unwrap_err();
        assert!(matches!(e, RootError::Foreign { .. }), "{e}");
        assert!(foreign.join("git/objects").is_dir());
        assert!(!foreign.join(ROOT_MARKER).exists());

        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            WorkerRoot::open(&new).unwrap_err(),
            RootError::Unsafe { .. }
        ));
    }
}
