//! `WORKER_DB_ROOT/<attempt name>/`: the attempt's own directory, kept for
//! post-mortem unless `DEL_WORKER_TEMP_DB` is set.
//!
//! - [`OWNER_MARKER`]: written first, when the worker creates the directory
//!   (exclusively, beneath its root's handle): the root's id, the worker's
//!   identity and pid. Retention removes only directories that carry the
//!   id of the root they are in.
//! - `job.json`: the job as received (the input stays base64), with the
//!   mount options left out: they may carry credentials.
//! - `LOG`: the worker's record of the attempt, one timestamped line per event.
//! - `LOG.rocksdb`: RocksDB's own info log of `OpenAndCompact`.

use crate::protocol::attempt::AttemptName;
use crate::protocol::job::Job;
use crate::worker::beneath::{self, Crossing};
use crate::worker::root_guard::WorkerRoot;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The file that makes a directory one of this root's attempts.
pub const OWNER_MARKER: &str = ".attempt-owner";

pub struct AttemptDir {
    path: PathBuf,
    fd: OwnedFd,
    log: Mutex<File>,
}

/// The job as `job.json` shows it: what a mount needs to log in and the
/// HTTP storage mode's capability stay out.
pub fn redacted(job: &Job) -> Job {
    let mut shown = job.clone();
    if !shown.nfs_mnt_opt.is_empty() {
        shown.nfs_mnt_opt = "<redacted>".into();
    }
    shown.remote = shown.remote.map(|r| r.redacted());
    shown
}

/// The marker's text for an attempt of root `root_id`.
fn owner_text(root_id: &str, identity: &str) -> String {
    format!(
        "root_id={root_id}\nworker={identity}\npid={}\n",
        std::process::id()
    )
}

/// Whether the directory `dir` carries the owner marker of root `root_id`.
pub fn is_owned(dir: impl AsFd, root_id: &str) -> bool {
    let Ok(mut f) = beneath::open_file(dir, Path::new(OWNER_MARKER), Crossing::SameFilesystem)
    else {
        return false;
    };
    let mut text = String::new();
    io::Read::read_to_string(&mut f, &mut text).is_ok()
        && text
            .lines()
            .any(|l| l.strip_prefix("root_id=") == Some(root_id))
}

impl AttemptDir {
    /// Creates the directory, exclusively: a directory of that name
    /// already there (a leftover, or another worker's) is an error, never
    /// reused or removed. Then writes the owner marker and `job.json`,
    /// unsynced: a marker a crash of the host lost or cut short names no
    /// root, and retention keeps a directory without one.
    pub fn create(
        root: &WorkerRoot,
        name: &AttemptName,
        job: &Job,
        identity: &str,
    ) -> io::Result<Self> {
        let rel = Path::new(name.as_str());
        let fd = beneath::create_dir(root.fd(), rel, 0o700, true, Crossing::SameFilesystem)?;
        beneath::write_new_file(
            &fd,
            OWNER_MARKER,
            owner_text(root.id(), identity).as_bytes(),
        )?;
        let json = serde_json::to_vec_pretty(&redacted(job)).map_err(io::Error::other)?;
        beneath::write_new_file(&fd, "job.json", &json)?;
        let log = nix::fcntl::openat(
            &fd,
            "LOG",
            nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_APPEND
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )?;
        Ok(AttemptDir {
            path: root.path().join(rel),
            fd,
            log: Mutex::new(File::from(log)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rocksdb_log(&self) -> PathBuf {
        self.path.join("LOG.rocksdb")
    }

    /// Appends one line to `LOG`. A failed write is reported through tracing
    /// only: the log must never fail the attempt. Control characters are
    /// escaped, so a value from a request can never start a line of its own.
    pub fn log(&self, line: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // One write per line: whole lines, one system call.
        let line = format!(
            "{}.{:03} {}\n",
            now.as_secs(),
            now.subsec_millis(),
            escape_controls(line)
        );
        let mut file = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(dir = %self.path.display(), error = %e, "failed to write attempt LOG");
        }
    }

    /// Removes the directory, then the parents it leaves empty, up to the
    /// root; all beneath the root's handle.
    pub fn remove(self, root: &WorkerRoot, name: &AttemptName) -> io::Result<()> {
        drop(self.fd);
        let rel = Path::new(name.as_str());
        let (Some(parent), Some(last)) = (rel.parent(), rel.file_name()) else {
            return Ok(());
        };
        let parent_fd = beneath::open_dir(root.fd(), parent, Crossing::SameFilesystem)?;
        beneath::remove_tree(parent_fd.as_fd(), last)?;
        remove_empty_parents(root, parent);
        Ok(())
    }
}

/// Removes the empty directories of `rel` (deepest first) beneath the
/// root; stops at the first that is not empty.
pub fn remove_empty_parents(root: &WorkerRoot, rel: &Path) {
    let mut dir = Some(rel);
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        let (Some(parent), Some(last)) = (d.parent(), d.file_name()) else {
            break;
        };
        let Ok(parent_fd) = beneath::open_dir(root.fd(), parent, Crossing::SameFilesystem) else {
            break;
        };
        // Removes nothing but an empty directory.
        if nix::unistd::unlinkat(&parent_fd, last, nix::unistd::UnlinkatFlags::RemoveDir).is_err() {
            break;
        }
        dir = Some(parent);
    }
}

/// `line` with control characters escaped (`\n` as the two characters
/// `\` `n`).
fn escape_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
