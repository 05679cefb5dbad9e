//! Mounting and unmounting one target, with the system's tools.
//!
//! Mount: when a helper `mount.<type>` is on the worker's `PATH`, it is run
//! as the mount helper convention has it, `mount.<type> <source> <target>
//! -o <options>`; otherwise `mount -t <type> -o <options> <source>
//! <target>` (which runs `/sbin/mount.<type>` itself when there is one).
//! The options are the job's, checked, then `nosuid,nodev,noexec`
//! ([`MountSpec::mount_options`]). Always an argument vector, never a
//! shell string; no `LD_PRELOAD`; the command runs in a process group of
//! its own, killed whole after `MOUNT_TIMEOUT` (a helper's children too).
//! Success means a new mount on the target in `/proc/self/mountinfo`, not
//! just exit status 0. The command is logged and named in errors with its
//! `-o` value as `<redacted>`: options may hold credentials.
//!
//! Unmount: `umount2(target)`; when the target is busy (a file still open
//! from a lazily detached generation, a shell's cwd), a lazy detach.

use super::mountinfo::mounts_at;
use super::spec::MountSpec;
use super::sys;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("failed to create mount point {path}: {source}")]
    Target {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{command} did not finish within MOUNT_TIMEOUT {timeout:?}; killed")]
    TimedOut { command: String, timeout: Duration },
    #[error("{command} exited 0 but nothing is mounted on {target}")]
    NotMounted { command: String, target: PathBuf },
    #[error("failed to read /proc/self/mountinfo: {0}")]
    MountInfo(#[source] io::Error),
    #[error("failed to unmount {target}: {source}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("worker is stopping: no new mounts")]
    Closed,
    #[error("the mount of instance {0} was lost after a failed remount")]
    Gone(String),
    #[error(
        "instance {instance} is mounted from {mounted} for running jobs; this job asks for {asked}"
    )]
    Conflict {
        instance: String,
        mounted: String,
        asked: String,
    },
    /// The mount another job of the instance was making, which this job
    /// waited for, failed.
    #[error(transparent)]
    Shared(Arc<MountError>),
    #[error(
        "the mount of instance {instance} was still being changed for another job after {waited:?}"
    )]
    Busy { instance: String, waited: Duration },
}

/// What stands for the `-o` value in logs and errors.
pub const REDACTED: &str = "<redacted>";

/// The command that mounts `spec` on `target`: program and arguments.
pub fn mount_command(spec: &MountSpec, target: &Path, path_var: Option<&str>) -> Command {
    let helper = path_var.and_then(|p| {
        std::env::split_paths(p)
            .map(|dir| dir.join(format!("mount.{}", spec.fs_type())))
            .find(|c| is_executable(c))
    });
    let options = spec.mount_options();
    let mut cmd = match helper {
        Some(helper) => {
            let mut cmd = Command::new(helper);
            cmd.arg(spec.source()).arg(target).arg("-o").arg(options);
            cmd
        }
        None => {
            let mut cmd = Command::new("mount");
            cmd.arg("-t").arg(spec.fs_type()).arg("-o").arg(options);
            cmd.arg(spec.source()).arg(target);
            cmd
        }
    };
    cmd.env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The command as logged: program and arguments, the value after `-o`
/// redacted.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    let mut after_o = false;
    for a in cmd.get_args() {
        s.push(' ');
        if after_o {
            s.push_str(REDACTED);
        } else {
            s.push_str(&a.to_string_lossy());
        }
        after_o = a == "-o";
    }
    s
}

/// Mounts `spec` on `target` (created when missing), with helpers looked
/// up in `path_var` (the worker's `PATH`).
pub fn mount(
    spec: &MountSpec,
    target: &Path,
    path_var: Option<&str>,
    timeout: Duration,
) -> Result<(), MountError> {
    std::fs::create_dir_all(target).map_err(|source| MountError::Target {
        path: target.to_owned(),
        source,
    })?;
    run_mount(mount_command(spec, target, path_var), target, timeout)
}

/// Runs a mount command and checks that it added a mount on `target`.
fn run_mount(mut cmd: Command, target: &Path, timeout: Duration) -> Result<(), MountError> {
    let before = mounts_at(target).map_err(MountError::MountInfo)?;
    let command = describe(&cmd);
    // Its own group, so that a timeout kills whatever it started.
    cmd.process_group(0);
    tracing::info!(command = %command, "mounting");
    let mut child = cmd.spawn().map_err(|source| MountError::Spawn {
        program: cmd.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                // The whole group: a helper's own children (a daemon it
                // waits for) go too.
                let _ = sys::kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                return Err(MountError::TimedOut { command, timeout });
            }
        }
    };
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stderr.take() {
        // A daemon the helper started may hold the pipe: take what is there.
        if sys::set_nonblocking(&pipe).is_ok() {
            let _ = pipe.read_to_end(&mut stderr);
        }
    }
    let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
    if !status.success() {
        return Err(MountError::Failed {
            command,
            status: status.to_string(),
            stderr,
        });
    }
    if mounts_at(target).map_err(MountError::MountInfo)? <= before {
        return Err(MountError::NotMounted {
            command,
            target: target.to_owned(),
        });
    }
    Ok(())
}

/// Unmounts the top mount on `target`; lazily when it is busy, or always
/// when `lazy` (a stale mount whose files may still be open).
pub fn unmount(target: &Path, lazy: bool) -> Result<(), MountError> {
    let result = match sys::umount(target, lazy) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            tracing::warn!(target = %target.display(), "mount busy: detaching lazily");
            sys::umount(target, true)
        }
        other => other,
    };
    result.map_err(|source| MountError::Unmount {
        target: target.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).stderr(Stdio::piped());
        cmd
    }

    #[test]
    fn a_helper_that_lies_hangs_or_fails_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let second = Duration::from_secs(1);
        let e = run_mount(sh("exit 0"), t, second).unwrap_err();
        assert!(matches!(e, MountError::NotMounted { .. }), "{e}");
        let e = run_mount(sh("sleep 5"), t, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, MountError::TimedOut { .. }), "{e}");
        let e = run_mount(sh("echo no such export >&2; exit 32"), t, second).unwrap_err();
        assert!(e.to_string().contains("no such export"), "{e}");
    }

    #[test]
    fn a_timeout_kills_what_the_helper_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let e = run_mount(sh(&script), dir.path(), Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, MountError::TimedOut { .. }), "{e}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        // Gone, or a zombie waiting for whoever inherited it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(&stat)
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.trim().to_owned()));
            match state {
                None => break,
                Some(s) if s.starts_with('Z') => break,
                Some(s) => assert!(Instant::now() < deadline, "sleep still runs: {s}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn helper_on_path_gets_the_helper_convention_else_mount_t() {
        let spec = MountSpec::unchecked("nfs4", "srv:/export", "vers=4.1,hard");
        let target = Path::new("/mnt/farm/app");
        let args = |cmd: &Command| -> Vec<String> {
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let opts = "vers=4.1,hard,nosuid,nodev,noexec";
        let empty = tempfile::tempdir().unwrap();
        let cmd = mount_command(&spec, target, empty.path().to_str());
        assert_eq!(cmd.get_program(), "mount");
        assert_eq!(
            args(&cmd),
            ["-t", "nfs4", "-o", opts, "srv:/export", "/mnt/farm/app"]
        );
        assert_eq!(
            describe(&cmd),
            "mount -t nfs4 -o <redacted> srv:/export /mnt/farm/app"
        );

        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("mount.nfs4");
        std::fs::write(&helper, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([empty.path(), dir.path()]).unwrap();
        let cmd = mount_command(&spec, target, path.to_str());
        assert_eq!(cmd.get_program(), helper.as_os_str());
        assert_eq!(args(&cmd), ["srv:/export", "/mnt/farm/app", "-o", opts]);
        assert!(!describe(&cmd).contains("vers"), "{}", describe(&cmd));
    }
}
