//! The packaged unit template passes `systemd-analyze verify` without a
//! word, as the template and as instance 0, with its paths pointed into the
//! unpacked tree (the binary, the env files); a unit with an unknown key
//! does not pass, so the check can fail.

use super::deb::{run, unpack};
use std::path::Path;
use std::process::Command;

const UNIT: &str = "lib/systemd/system/dcompact-worker@.service";

/// `systemd-analyze verify` of `unit`: whether it passed, and what it said.
fn verify(unit: &Path) -> (bool, String) {
    let out = run(Command::new("systemd-analyze").arg("verify").arg(unit));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The value of `key=` in `unit` (its first occurrence).
fn value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit sets {key}"))
}

#[test]
fn the_unit_template_verifies_and_names_the_packaged_files() {
    let unpacked = unpack();
    let root = unpacked.root.display().to_string();
    let unit = std::fs::read_to_string(unpacked.root.join(UNIT)).expect("the unit is packaged");

    // The unit as it would run from the unpacked tree.
    let local = unit
        .replace(
            "/usr/bin/dcompact-worker",
            &format!("{root}/usr/bin/dcompact-worker"),
        )
        .replace(
            "/etc/compaction-farm/",
            &format!("{root}/etc/compaction-farm/"),
        );
    let exec = value(&local, "ExecStart");
    let worker = exec
        .split_whitespace()
        .last()
        .expect("ExecStart ends with the worker");
    assert_eq!(
        Path::new(worker),
        unpacked.worker(),
        "ExecStart runs the packaged worker"
    );
    assert!(
        exec.starts_with("/usr/bin/numactl --cpunodebind=${NUMA_NODE} --membind=${NUMA_NODE} -- ")
    );
    for line in local
        .lines()
        .filter_map(|l| l.strip_prefix("EnvironmentFile="))
    {
        let file = line.trim_start_matches('-').replace("%i", "0");
        assert!(Path::new(&file).is_file(), "{file} is in the package");
    }
    for key in [
        "Delegate",
        "KillMode",
        "NoNewPrivileges",
        "ProtectSystem",
        "StateDirectory",
    ] {
        println!("{key}={}", value(&local, key));
    }

    let units = unpacked.tmp.path().join("units");
    std::fs::create_dir_all(&units).expect("units dir");
    for name in ["dcompact-worker@.service", "dcompact-worker@0.service"] {
        let path = units.join(name);
        std::fs::write(&path, &local).expect("unit written");
        let (passed, said) = verify(&path);
        assert!(
            passed && said.is_empty(),
            "{name} verifies without a word: {said}"
        );
    }

    // The same check catches a mistake.
    let broken = units.join("dcompact-worker@1.service");
    std::fs::write(&broken, local.replace("ProtectClock=", "ProtectClok=")).expect("unit written");
    let (_, said) = verify(&broken);
    assert!(
        said.contains("ProtectClok"),
        "an unknown key is reported: {said}"
    );
}
