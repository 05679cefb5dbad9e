//! What the package holds: exactly the expected files, owned by root, with
//! their modes, the two env files as conffiles, control fields that name
//! the farm's version and the libraries and tools the binaries need, and
//! binaries that run and carry no debug information.

use super::deb::{package, run, unpack};
use std::path::Path;
use std::process::Command;

const FILES: &[&str] = &[
    "etc/compaction-farm/worker-0.env",
    "etc/compaction-farm/worker.env",
    "lib/systemd/system/dcompact-worker@.service",
    "usr/bin/dcompact-worker",
    "usr/bin/zipserver",
    "usr/lib/compaction-farm/plugins/libcounter.so",
    "usr/lib/compaction-farm/plugins/libttl.so",
    "usr/lib/compaction-farm/start_workers.sh",
    "usr/share/compaction-farm/grafana/compaction-farm.json",
    "usr/share/doc/compaction-farm/OPERATIONS.md",
    "usr/share/doc/compaction-farm/README.md",
    "usr/share/doc/compaction-farm/copyright",
];

fn files_below(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_below(&p, base, out);
        } else {
            let rel = p.strip_prefix(base).expect("below the root");
            out.push(rel.display().to_string());
        }
    }
}

fn text(out: std::process::Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_package_holds_the_worker_plugins_unit_env_files_and_dashboard() {
    let unpacked = unpack();
    let mut files = Vec::new();
    files_below(&unpacked.root, &unpacked.root, &mut files);
    files.sort();
    assert_eq!(files, FILES, "the package's files");

    // Owners and modes as dpkg will install them.
    let listing = text(run(Command::new("dpkg-deb").arg("-c").arg(package())));
    let mode_of = |path: &str| -> String {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!("./{path}")))
            .unwrap_or_else(|| panic!("{path} listed in {listing}"));
        assert!(line.contains(" root/root "), "{path} owned by root: {line}");
        line.split_whitespace().next().expect("mode").to_owned()
    };
    assert_eq!(mode_of("usr/bin/dcompact-worker"), "-rwxr-xr-x");
    assert_eq!(
        mode_of("usr/lib/compaction-farm/start_workers.sh"),
        "-rwxr-xr-x"
    );
    assert_eq!(
        mode_of("lib/systemd/system/dcompact-worker@.service"),
        "-rw-r--r--"
    );
    assert_eq!(
        mode_of("etc/compaction-farm/worker.env"),
        "-rw-------",
        "the shared env file may hold the token"
    );

    let field = |name: &str| {
        text(run(Command::new("dpkg-deb")
            .arg("-f")
            .arg(package())
            .arg(name)))
    };
    assert_eq!(field("Package").trim(), "compaction-farm");
    assert_eq!(field("Version").trim(), env!("CARGO_PKG_VERSION"));
    let depends = field("Depends");
    for needed in ["libc6", "libstdc++6", "numactl"] {
        assert!(
            depends.contains(needed),
            "Depends names {needed}: {depends}"
        );
    }
    let conffiles = text(run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(package())
        .arg("conffiles")));
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        [
            "/etc/compaction-farm/worker.env",
            "/etc/compaction-farm/worker-0.env"
        ]
    );

    for bin in ["usr/bin/dcompact-worker", "usr/bin/zipserver"] {
        let path = unpacked.root.join(bin);
        let help = text(run(Command::new(&path).arg("--help")));
        assert!(help.contains("Usage"), "{bin} --help: {help}");
        let sections = text(run(Command::new("readelf").arg("-S").arg(&path)));
        assert!(
            !sections.contains(".debug_info"),
            "{bin} is stripped of debug information"
        );
    }
    let version = text(run(Command::new(unpacked.worker()).arg("--version")));
    assert_eq!(
        version.trim(),
        format!("dcompact-worker {}", env!("CARGO_PKG_VERSION"))
    );
}
