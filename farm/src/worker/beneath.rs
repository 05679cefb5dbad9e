//! Files beneath a directory handle: how the worker creates, reads and
//! deletes anything on behalf of a request.
//!
//! A path a request names is never resolved from `/`. The worker opens a
//! root it trusts (its own `WORKER_DB_ROOT`, the instance's mount, an
//! allowed hoster root) and resolves the rest beneath that handle with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a `..` that climbs out,
//! an absolute path or a symlink anywhere on the way is an error, whatever
//! a hoster did to its tree after admission. Removal walks with `*at`
//! calls from the handle, never follows a symlink (a link is removed as a
//! link) and never crosses into another filesystem.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far resolution beneath a handle may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Mount points below the handle may be entered (a hoster root that
    /// holds other mounts).
    Mounts,
    /// Everything stays on the handle's filesystem (the worker's own root).
    SameFilesystem,
}

fn resolve_flags(crossing: Crossing) -> ResolveFlag {
    let flags = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    match crossing {
        Crossing::Mounts => flags,
        Crossing::SameFilesystem => flags | ResolveFlag::RESOLVE_NO_XDEV,
    }
}

/// Opens a directory the worker trusts by its absolute path: a root from
/// its own configuration, or a mount point below `NFS_MOUNT_ROOT` (which
/// an operator may have made a symlink to the mount).
pub fn open_trusted(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd)
}

/// [`open_trusted`], refusing a symlink as the last component (the
/// worker's own root).
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    Ok(fd)
}

/// Checks that `rel` is a relative path of plain components only.
fn plain_relative(rel: &Path) -> io::Result<()> {
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a relative path of plain components",
                rel.display()
            ),
        ))
    }
}

/// Opens the directory `rel` beneath `dir` (`""`: `dir` itself).
pub fn open_dir(dir: impl AsFd, rel: &Path, crossing: Crossing) -> io::Result<OwnedFd> {
    plain_relative(rel)?;
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(resolve_flags(crossing));
    Ok(openat2(dir, rel, how)?)
}

/// Opens the regular file `rel` beneath `dir` for reading.
pub fn open_file(dir: impl AsFd, rel: &Path, crossing: Crossing) -> io::Result<std::fs::File> {
    plain_relative(rel)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(resolve_flags(crossing));
    let fd = openat2(dir, rel, how)?;
    let st = fstat(&fd)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", rel.display()),
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// Creates the directories of `rel` beneath `dir` (mode `mode`) and
/// opens the last. With `exclusive`, the last must not exist yet: it is
/// then certainly the caller's own.
pub fn create_dir(
    dir: impl AsFd,
    rel: &Path,
    mode: u32,
    exclusive: bool,
    crossing: Crossing,
) -> io::Result<OwnedFd> {
    plain_relative(rel)?;
    let count = rel.components().count();
    if count == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no directory to create",
        ));
    }
    let mode = Mode::from_bits_truncate(mode);
    // Another thread may remove a parent it found empty (an attempt
    // directory's cleanup) between our mkdir and open of it, or while we
    // create beneath it: start again from the top, a bounded number of times.
    let mut tries = 0;
    loop {
        match create_path(dir.as_fd(), rel, mode, exclusive, crossing) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < CREATE_RETRIES => tries += 1,
            done => return done,
        }
    }
}

/// How often [`create_dir`] starts again after a parent vanished under it.
const CREATE_RETRIES: u32 = 100;

/// One pass of [`create_dir`]: each component made (or found) and opened.
fn create_path(
    dir: BorrowedFd<'_>,
    rel: &Path,
    mode: Mode,
    exclusive: bool,
    crossing: Crossing,
) -> io::Result<OwnedFd> {
    let count = rel.components().count();
    let mut current = open_dir(dir, Path::new(""), crossing)?;
    for (i, c) in rel.components().enumerate() {
        let last = i + 1 == count;
        match mkdirat(&current, c.as_os_str(), mode) {
            Ok(()) => {}
            Err(Errno::EEXIST) if !(last && exclusive) => {}
            Err(e) => return Err(e.into()),
        }
        current = open_dir(&current, Path::new(c.as_os_str()), crossing)?;
    }
    Ok(current)
}

/// Writes a new file `name` in the directory `dir` (which must not hold
/// one), with mode 0600, and closes it; it is not synced: once this
/// returns every process sees the whole file, and a crash of the worker's
/// process loses nothing, but a crash of the host may (see
/// [`write_new_file_synced`]).
pub fn write_new_file(dir: impl AsFd, name: &str, bytes: &[u8]) -> io::Result<()> {
    create_new_file(dir, name, bytes).map(drop)
}

/// [`write_new_file`], and waits until the file is on the disk
/// (`fsync`): for what must outlive a crash of the host.
pub fn write_new_file_synced(dir: impl AsFd, name: &str, bytes: &[u8]) -> io::Result<()> {
    create_new_file(dir, name, bytes)?.sync_all()
}

fn create_new_file(dir: impl AsFd, name: &str, bytes: &[u8]) -> io::Result<std::fs::File> {
    use std::io::Write;
    let fd = openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes)?;
    Ok(f)
}

/// The names in directory `dir`, without `.` and `..`.
pub fn entries(dir: impl AsFd) -> io::Result<Vec<OsString>> {
    let fd = open_dir(dir, Path::new(""), Crossing::Mounts)?;
    let mut d = Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Size and newest modification time of a tree, on one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeSize {
    pub bytes: u64,
    pub newest: SystemTime,
}

fn mtime(st: &nix::sys::stat::FileStat) -> SystemTime {
    UNIX_EPOCH + Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32)
}

fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// Sums the sizes below directory `dir` (symlinks count as themselves,
/// other filesystems are not entered).
pub fn tree_size(dir: BorrowedFd<'_>) -> io::Result<TreeSize> {
    let st = fstat(dir)?;
    let mut size = TreeSize {
        bytes: 0,
        newest: mtime(&st),
    };
    for name in entries(dir)? {
        let st = fstatat(
            dir,
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        size.newest = size.newest.max(mtime(&st));
        if is_dir(&st) {
            let child = open_dir(dir, Path::new(&name), Crossing::SameFilesystem);
            if let Ok(child) = child {
                let inner = tree_size(child.as_fd())?;
                size.bytes += inner.bytes;
                size.newest = size.newest.max(inner.newest);
            }
        } else {
            size.bytes += st.st_size.max(0) as u64;
        }
    }
    Ok(size)
}

/// Removes the entry `name` of directory `parent` and, when it is a
/// directory, everything in it: symlinks are removed as links, and a
/// directory on another filesystem (a mount point) is an error, left as
/// it is.
pub fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let dev = fstat(parent)?.st_dev;
    remove_entry(parent, name, dev)
}

fn remove_entry(parent: BorrowedFd<'_>, name: &OsStr, dev: u64) -> io::Result<()> {
    let st = fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if !is_dir(&st) {
        return Ok(unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)?);
    }
    if st.st_dev != dev {
        return Err(io::Error::other(format!(
            "{} is on another filesystem: not removed",
            Path::new(name).display()
        )));
    }
    let dir = open_dir(parent, Path::new(name), Crossing::SameFilesystem)?;
    clear_dir(dir.as_fd())?;
    Ok(unlinkat(parent, name, UnlinkatFlags::RemoveDir)?)
}

/// Removes everything inside directory `dir`, as [`remove_tree`] would.
pub fn clear_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    let dev = fstat(dir)?.st_dev;
    for name in entries(dir)? {
        remove_entry(dir, &name, dev)?;
    }
    Ok(())
}

/// The path under which the process reaches directory `fd` whatever is
/// renamed or replaced by a symlink later: `/proc/self/fd/<fd>`.
pub fn fd_path(fd: &impl std::os::fd::AsRawFd) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Removes `leaf` beneath `root`, then its parents while they are empty,
    /// as an attempt directory's cleanup does.
    fn remove_with_empty_parents(root: &OwnedFd, leaf: &Path) {
        let mut d = Some(leaf);
        while let Some(p) = d.filter(|p| !p.as_os_str().is_empty()) {
            if unlinkat(root, p, UnlinkatFlags::RemoveDir).is_err() {
                return;
            }
            d = p.parent();
        }
    }

    #[test]
    fn creation_survives_parents_removed_under_it() {
        let root = tempfile::tempdir().unwrap();
        let fd = open_root(root.path()).unwrap();
        let (fd, rounds) = (&fd, 3000);
        std::thread::scope(|s| {
            for side in ["a", "b"] {
                s.spawn(move || {
                    for i in 0..rounds {
                        let leaf = std::path::PathBuf::from(format!("inst/db/job-{side}/att-{i}"));
                        create_dir(fd, &leaf, 0o700, true, Crossing::SameFilesystem)
                            .unwrap_or_else(|e| panic!("{side} round {i}: {e}"));
                        remove_with_empty_parents(fd, &leaf);
                    }
                });
            }
        });
    }

    #[test]
    fn creation_resolves_nothing_outside_and_no_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("link")).unwrap();
        let fd = open_root(root.path()).unwrap();

        let made = create_dir(&fd, Path::new("a/b/c"), 0o755, true, Crossing::Mounts).unwrap();
        assert!(root.path().join("a/b/c").is_dir());
        drop(made);
        let again = create_dir(&fd, Path::new("a/b/c"), 0o755, true, Crossing::Mounts);
        assert_eq!(again.unwrap_err().raw_os_error(), Some(libc::EEXIST));
        assert!(create_dir(&fd, Path::new("a/b/c"), 0o755, false, Crossing::Mounts).is_ok());

        for bad in ["link/x", "../x", "/x", "a/../../x", "a/./b"] {
            let e = create_dir(&fd, Path::new(bad), 0o755, true, Crossing::Mounts);
            assert!(e.is_err(), "{bad} must be refused");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(open_dir(&fd, Path::new("link"), Crossing::Mounts).is_err());
    }

    #[test]
    fn removal_never_follows_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        let t = root.path().join("t");
        std::fs::create_dir_all(t.join("d")).unwrap();
        std::fs::write(t.join("d/f"), "12345").unwrap();
        symlink(outside.path(), t.join("d/out")).unwrap();
        symlink(outside.path().join("precious"), t.join("file-link")).unwrap();
        let fd = open_root(root.path()).unwrap();

        let t_fd = open_dir(&fd, Path::new("t"), Crossing::SameFilesystem).unwrap();
        let size = tree_size(t_fd.as_fd()).unwrap();
        assert!(size.bytes >= 5, "{size:?}");
        remove_tree(fd.as_fd(), OsStr::new("t")).unwrap();
        assert!(!t.exists());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("precious")).unwrap(),
            "x"
        );
    }

    #[test]
    fn new_files_are_exclusive() {
        let root = tempfile::tempdir().unwrap();
        let fd = open_root(root.path()).unwrap();
        write_new_file(&fd, "m", b"one").unwrap();
        assert!(write_new_file(&fd, "m", b"two").is_err());
        assert_eq!(std::fs::read(root.path().join("m")).unwrap(), b"one");
        let mut f = open_file(&fd, Path::new("m"), Crossing::Mounts).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "one");
    }
}
