//! A sandbox for workers given dangerous settings or hostile requests: the
//! worker runs where the host cannot be reached.
//!
//! The worker is started by `unshare(1)` in a private mount namespace and a
//! PID namespace of its own. Its root is a fresh tmpfs holding only:
//!
//! - `/usr` of the host, bound read-only (with the usual `bin`, `lib`,
//!   `lib64`, `sbin` links into it), so the worker's libraries load;
//! - `/proc` of its own PID namespace (so `/proc/N/root` leads nowhere
//!   outside), `/dev/null`, `/dev/zero`, `/dev/urandom`;
//! - the directories the test shares, bound at their own paths (read-write,
//!   or read-only for the worker's binaries), so the test sees what the
//!   worker did to them;
//! - small tmpfs mounts the test asks for, at their own paths (a worker
//!   root whose disk the test fills); the test reaches them through
//!   `/proc/<worker>/root`.
//!
//! The network namespace is the host's, so the test reaches the worker on
//! 127.0.0.1. The worker is the namespace's PID 1: when it dies, the kernel
//! ends every process left in the namespace, and `unshare --kill-child`
//! ends the worker when the test drops it.

use crate::harness::{multi_process, test_hoster_roots, worker_bin};
use farm::worker::local::LocalWorker;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a sandboxed worker sees of the host.
pub struct Sandbox {
    /// The host-side mount point of the sandbox's root (stays empty on the
    /// host: the tmpfs is mounted in the sandbox's namespace only).
    root: tempfile::TempDir,
    /// Bound read-write at the same path.
    shared: Vec<PathBuf>,
    /// Bound read-only at the same path.
    read_only: Vec<PathBuf>,
    /// Size (bytes) and path of each tmpfs mounted inside.
    tmpfs: Vec<(u64, PathBuf)>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("farm-sandbox-")
            .tempdir()
            .expect("sandbox mount point");
        let mut s = Sandbox {
            root,
            shared: Vec::new(),
            read_only: Vec::new(),
            tmpfs: Vec::new(),
        };
        // The worker binary and the zipserver beside it.
        let bin_dir = worker_bin().parent().expect("binary has a directory");
        s.read_only.push(bin_dir.to_owned());
        s
    }

    /// Shares `dir` (made by the test) read-write at its own path.
    pub fn share(mut self, dir: &Path) -> Sandbox {
        self.shared.push(dir.to_owned());
        self
    }

    /// Shares `path` read-only at its own path (a plugin, a helper).
    pub fn share_read_only(mut self, path: &Path) -> Sandbox {
        self.read_only.push(path.to_owned());
        self
    }

    /// Mounts a tmpfs of `bytes` at `path` inside the sandbox only.
    pub fn tmpfs(mut self, path: &Path, bytes: u64) -> Sandbox {
        self.tmpfs.push((bytes, path.to_owned()));
        self
    }

    /// The command that sets the sandbox up and runs `program args...`
    /// inside it as PID 1, with `env` (and nothing else) in its environment.
    pub fn command(&self, program: &Path, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            SETUP,
            "sandbox",
        ]);
        cmd.arg(self.root.path());
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin")
            .env("SANDBOX_SHARED", join(&self.shared))
            .env("SANDBOX_READ_ONLY", join(&self.read_only))
            .env("SANDBOX_TMPFS", tmpfs_lines(&self.tmpfs));
        let mut inner_env = vec!["PATH=/usr/sbin:/usr/bin".to_string()];
        inner_env.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.arg("--").arg("/usr/bin/env").arg("-i").args(inner_env);
        cmd.arg(program).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts `dcompact-worker` inside the sandbox on 127.0.0.1:0, its log
    /// (stderr) going to `log`. The sandbox lives as long as the worker:
    /// its root's mount point must stay (removing it on the host detaches
    /// the sandbox's root, after which no mount inside it succeeds).
    pub fn start_worker(
        self,
        env: &[(&str, String)],
        log: Stdio,
    ) -> Result<SandboxedWorker, String> {
        self.start_worker_on("127.0.0.1:0", env, log)
    }

    /// A worker in the sandbox with a test's usual settings: its root and
    /// hoster roots below `dir`, a 1 MiB space margin, the suite's
    /// `MULTI_PROCESS`, warnings logged; then `extra`.
    pub fn start_test_worker(self, dir: &Path, extra: &[(&str, String)]) -> SandboxedWorker {
        let mut env = vec![
            ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
            ("HOSTER_ROOTS", test_hoster_roots(dir)),
            ("OUTPUT_SPACE_MARGIN", "1M".to_string()),
            ("MULTI_PROCESS", multi_process().to_string()),
            ("RUST_LOG", "warn".to_string()),
        ];
        env.extend(extra.iter().cloned());
        self.start_worker(&env, Stdio::inherit())
            .expect("worker starts")
    }

    /// [`Sandbox::start_worker`] listening on `listen`.
    pub fn start_worker_on(
        self,
        listen: &str,
        env: &[(&str, String)],
        log: Stdio,
    ) -> Result<SandboxedWorker, String> {
        let cmd = self.command(worker_bin(), &["--listen", listen], env);
        let worker = LocalWorker::start_command(cmd, log).map_err(|e| e.to_string())?;
        Ok(SandboxedWorker {
            worker,
            _sandbox: self,
        })
    }

    /// The host's pid of the sandbox's PID 1 (the worker) started by
    /// `unshare` process `outer`.
    pub fn inner_pid(outer: u32) -> Option<u32> {
        let children =
            std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Runs `dcompact-worker` inside the sandbox to its end (a worker that
    /// refuses to start): exit success and stderr.
    pub fn run_worker(&self, env: &[(&str, String)]) -> (bool, String) {
        let mut cmd = self.command(worker_bin(), &["--listen", "127.0.0.1:0"], env);
        let out = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("unshare runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stderr)
    }
}

/// A worker running in its sandbox; ended (and its sandbox removed) when
/// dropped. Used as the [`LocalWorker`] it holds.
pub struct SandboxedWorker {
    /// Dropped first: the worker ends before its sandbox's root goes.
    worker: LocalWorker,
    _sandbox: Sandbox,
}

impl std::ops::Deref for SandboxedWorker {
    type Target = LocalWorker;
    fn deref(&self) -> &LocalWorker {
        &self.worker
    }
}

impl std::ops::DerefMut for SandboxedWorker {
    fn deref_mut(&mut self) -> &mut LocalWorker {
        &mut self.worker
    }
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn tmpfs_lines(mounts: &[(u64, PathBuf)]) -> String {
    mounts
        .iter()
        .map(|(size, p)| format!("{size} {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs as PID 1 of the new namespaces: `$1` is the (empty) mount point of
/// the sandbox's root, the rest after `--` the command to run there.
const SETUP: &str = r#"
set -eu
R="$1"; shift; shift
mount -t tmpfs -o mode=0755,size=512m farm-sandbox "$R"
mkdir -p "$R/usr" "$R/proc" "$R/dev" "$R/tmp" "$R/etc" "$R/var/lib" "$R/run"
chmod 1777 "$R/tmp"
mount --bind /usr "$R/usr"
mount -o remount,bind,ro "$R/usr"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$R/$l"; done
for d in null zero urandom; do
  touch "$R/dev/$d"
  mount --bind "/dev/$d" "$R/dev/$d"
done
bind() {
  if [ -d "$1" ]; then mkdir -p "$R$1"; else mkdir -p "$R$(dirname "$1")"; touch "$R$1"; fi
  mount --bind "$1" "$R$1"
}
printf '%s\n' "$SANDBOX_SHARED" | while IFS= read -r d; do
  [ -n "$d" ] && bind "$d"
done
printf '%s\n' "$SANDBOX_READ_ONLY" | while IFS= read -r d; do
  [ -n "$d" ] || continue
  bind "$d"
  mount -o remount,bind,ro "$R$d"
done
printf '%s\n' "$SANDBOX_TMPFS" | while IFS=' ' read -r size d; do
  [ -n "$d" ] || continue
  mkdir -p "$R$d"
  mount -t tmpfs -o "size=$size,mode=0755" farm-sandbox-fs "$R$d"
done
mount -t proc proc "$R/proc"
cd "$R"
exec chroot "$R" "$@"
"#;
