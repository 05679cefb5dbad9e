//! The package: built once per test process by `scripts/package.sh`, and
//! unpacked with `dpkg -x` into a fresh temporary root for each test.

use crate::harness::worker_bin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The target directory of this build (cargo put the worker in its
/// `debug/`): the package is built beside it, over the same build dir.
fn target_dir() -> PathBuf {
    worker_bin()
        .ancestors()
        .nth(2)
        .expect("the worker binary lies in <target>/debug")
        .to_path_buf()
}

/// The `.deb` built by `scripts/package.sh`, on first use.
pub fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let started = Instant::now();
        let out = Command::new(repo().join("scripts/package.sh"))
            .arg("--quiet")
            .env("CARGO_TARGET_DIR", target_dir())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/package.sh runs");
        assert!(out.status.success(), "scripts/package.sh succeeds");
        let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
        let deb = PathBuf::from(stdout.lines().last().expect("the script names the .deb"));
        assert!(deb.is_file(), "{} exists", deb.display());
        eprintln!(
            "package built in {:.1}s: {} ({} bytes)",
            started.elapsed().as_secs_f64(),
            deb.display(),
            deb.metadata().expect("the .deb").len()
        );
        deb
    })
}

/// The package unpacked below a fresh temporary directory, which also
/// holds each test's other roots.
pub struct Unpacked {
    pub tmp: tempfile::TempDir,
    /// What `dpkg -x` made: `usr/`, `etc/`, `lib/`.
    pub root: PathBuf,
}

pub fn unpack() -> Unpacked {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(package())
        .arg(&root)
        .status()
        .expect("dpkg runs");
    assert!(status.success(), "dpkg -x unpacks the package");
    Unpacked { tmp, root }
}

impl Unpacked {
    /// The packaged worker.
    pub fn worker(&self) -> PathBuf {
        self.root.join("usr/bin/dcompact-worker")
    }

    /// `PLUGINS` for the packaged example plugins.
    pub fn plugins(&self) -> String {
        ["libcounter.so", "libttl.so"]
            .map(|so| {
                let path = self.root.join("usr/lib/compaction-farm/plugins").join(so);
                assert!(path.is_file(), "{} is in the package", path.display());
                path.display().to_string()
            })
            .join(":")
    }
}

/// Runs `cmd` and returns its output; panics when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} runs: {e}"))
}
