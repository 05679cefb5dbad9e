//! A stand-in NFS client for tests of dynamic mounts. These machines have
//! no kernel NFS client, so the tests put `mount.nfs` and `mount.nfs4`
//! helper scripts first on the worker's `PATH`, where the real NFS client
//! installs its helpers. The worker runs them exactly as it would run the
//! real ones (`mount.nfs <host>:/<export> <target> -o <options>`) and
//! cannot tell the difference. A helper:
//!
//! - records its name and argument vector, one line per call, so tests
//!   assert what the worker passed (`nosuid,nodev,noexec` last);
//! - answers like an NFS client for a host other than [`NFS_HOST`] (cannot
//!   resolve), an export under `/denied` (access denied), an export under
//!   `/hang` (hangs until killed) or a missing export;
//! - otherwise maps the export `/<path>` to `<exports>/<path>`, a
//!   directory the test made, and mounts it itself: a bind mount by
//!   default, or what the test's own mount step does (the FUSE stale
//!   filesystem of `stale_mount.rs`).

use std::path::{Path, PathBuf};

/// The NFS server's name in sources: `nfs.farm.test:/<export>`.
pub const NFS_HOST: &str = "nfs.farm.test";

/// The default mount step: bind the export's directory.
pub const BIND: &str = "exec mount --bind \"$local\" \"$target\"";

pub struct NfsStandIn {
    /// Holds the helpers: first on the worker's `PATH`.
    pub bin: PathBuf,
    /// One line per helper call: its name, then its arguments.
    pub argv_log: PathBuf,
    /// Exports map below it.
    exports: PathBuf,
}

impl NfsStandIn {
    /// Helpers in `dir/nfs-bin` serving the directories below `exports`
    /// by bind mounts.
    pub fn new(dir: &Path, exports: &Path) -> NfsStandIn {
        Self::with_mount_step(dir, exports, BIND)
    }

    /// Helpers whose mount step is `step`, a shell fragment that mounts
    /// `$local` (the export's directory) on `$target`.
    pub fn with_mount_step(dir: &Path, exports: &Path, step: &str) -> NfsStandIn {
        let bin = dir.join("nfs-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let nfs = NfsStandIn {
            argv_log: dir.join("nfs-argv.log"),
            bin,
            exports: exports.to_owned(),
        };
        let script = nfs.script(step);
        for name in ["mount.nfs", "mount.nfs4"] {
            write_script(&nfs.bin.join(name), &script);
        }
        nfs
    }

    fn script(&self, step: &str) -> String {
        format!(
            r#"#!/bin/sh
# A stand-in NFS client: mount.nfs <host>:<export> <target> -o <options>
echo "${{0##*/}} $*" >> {argv}
src="$1"; target="$2"
host="${{src%%:*}}"; export="${{src#*:}}"
if [ "$host" != "{host}" ]; then
  echo "mount.nfs: Failed to resolve server $host: Name or service not known" >&2; exit 32
fi
case "$export" in
  /hang*) sleep 3600; exit 32 ;;
  /denied*) echo "mount.nfs: access denied by server while mounting $src" >&2; exit 32 ;;
esac
local="{exports}$export"
if [ ! -d "$local" ]; then
  echo "mount.nfs: mounting $src failed, reason given by server: No such file or directory" >&2
  exit 32
fi
{step}
"#,
            argv = self.argv_log.display(),
            host = NFS_HOST,
            exports = self.exports.display(),
        )
    }

    /// Helpers for other types too (`mount.none`, `mount.ext4`, ...), that
    /// only record their call and fail: a worker that ran one is caught.
    pub fn add_decoys(&self, types: &[&str]) {
        for t in types {
            write_script(
                &self.bin.join(format!("mount.{t}")),
                &format!(
                    "#!/bin/sh\necho \"${{0##*/}} $*\" >> {}\nexit 1\n",
                    self.argv_log.display()
                ),
            );
        }
    }

    /// The source that names `local`, a directory below the exports.
    pub fn source(&self, local: &Path) -> String {
        let export = local
            .strip_prefix(&self.exports)
            .expect("the directory is below the exports");
        format!("{NFS_HOST}:/{}", export.display())
    }

    /// `PATH` for the worker: the helpers first.
    pub fn path_var(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin.display())
    }

    /// Every call so far: helper name, then arguments.
    pub fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.argv_log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').map(str::to_owned).collect())
            .collect()
    }
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
