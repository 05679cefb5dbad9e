//! The packaged env files: `worker.env` names every setting of the
//! worker's configuration table (`farm/src/worker/config.rs`), each under a
//! comment, and no name that nothing reads; the shipped files, with the two
//! required settings filled in, start the packaged worker.

use super::deb::{repo, run, unpack, Unpacked};
use farm::worker::local::LocalWorker;
use std::collections::BTreeSet;
use std::process::Command;

/// The settings named in the first column of the table at the top of
/// `farm/src/worker/config.rs`.
fn configured_settings() -> BTreeSet<String> {
    let source = std::fs::read_to_string(repo().join("farm/src/worker/config.rs"))
        .expect("config.rs readable");
    source
        .lines()
        .filter_map(|l| l.strip_prefix("//! | `"))
        .flat_map(|row| {
            let cell = row.split(" |").next().unwrap_or_default();
            cell.split('`')
                .filter(|w| is_name(w))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn is_name(w: &str) -> bool {
    w.len() > 2
        && w.starts_with(|c: char| c.is_ascii_uppercase())
        && w.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `(name, value, commented out, documented)` for each `NAME=value` or
/// `#NAME=value` line; documented: a comment or another setting right
/// above it.
fn entries(text: &str) -> Vec<(String, String, bool, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (commented, rest) = match line.strip_prefix('#') {
            Some(rest) => (true, rest),
            None => (false, *line),
        };
        let Some((name, value)) = rest.split_once('=') else {
            continue;
        };
        if !is_name(name) {
            continue;
        }
        let documented = i > 0 && lines[i - 1].starts_with('#');
        out.push((name.to_owned(), value.to_owned(), commented, documented));
    }
    out
}

fn env_file(unpacked: &Unpacked, name: &str) -> String {
    std::fs::read_to_string(unpacked.root.join("etc/compaction-farm").join(name))
        .expect("env file packaged")
}

#[test]
fn worker_env_documents_every_setting_and_names_nothing_else() {
    let unpacked = unpack();
    let shared = entries(&env_file(&unpacked, "worker.env"));
    let named: BTreeSet<String> = shared.iter().map(|e| e.0.clone()).collect();
    let settings = configured_settings();
    assert!(settings.len() > 50, "config.rs's table read: {settings:?}");
    let missing: Vec<_> = settings.difference(&named).collect();
    assert!(missing.is_empty(), "worker.env lacks {missing:?}");
    for (name, _, commented, documented) in &shared {
        assert!(*documented, "{name} has a comment above it");
        assert!(*commented, "{name} is left at its default (commented out)");
    }

    // Names beyond the table: read by the worker (its --help), the example
    // ttl plugin, or start_workers.sh.
    let help = String::from_utf8(run(Command::new(unpacked.worker()).arg("--help")).stdout)
        .expect("UTF-8 help");
    let script = std::fs::read_to_string(
        unpacked
            .root
            .join("usr/lib/compaction-farm/start_workers.sh"),
    )
    .expect("start_workers.sh packaged");
    let ttl = std::fs::read_to_string(repo().join("plugins/ttl/src/lib.rs")).expect("ttl source");
    for name in named.difference(&settings) {
        assert!(
            help.contains(name.as_str())
                || script.contains(&format!("{name}:-"))
                || ttl.contains(&format!("\"{name}\"")),
            "{name} in worker.env is read by nothing"
        );
    }

    // The instance file sets the unit's NUMA_NODE and three settings.
    let unit = std::fs::read_to_string(
        unpacked
            .root
            .join("lib/systemd/system/dcompact-worker@.service"),
    )
    .expect("unit packaged");
    for (name, _, _, documented) in entries(&env_file(&unpacked, "worker-0.env")) {
        assert!(documented, "{name} has a comment above it");
        assert!(
            settings.contains(&name) || unit.contains(&format!("${{{name}}}")),
            "{name} in worker-0.env is read by nothing"
        );
    }
}

#[test]
fn the_shipped_env_files_start_the_packaged_worker_once_completed() {
    let unpacked = unpack();
    let mut env: Vec<(String, String)> = Vec::new();
    for file in ["worker.env", "worker-0.env"] {
        for (name, value, commented, _) in entries(&env_file(&unpacked, file)) {
            if !commented {
                env.push((name, value));
            }
        }
    }
    let set: BTreeSet<&str> = env.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        set,
        BTreeSet::from(["LISTEN_ADDR", "NUMA_NODE", "WORKER_DB_ROOT"]),
        "only the instance file sets anything"
    );
    // The test's own roots instead of /var/lib, and the two required
    // settings; --listen 127.0.0.1:0 overrides LISTEN_ADDR.
    let dir = unpacked.tmp.path();
    std::fs::create_dir_all(dir.join("data")).expect("hoster root");
    let mut env: Vec<(&str, String)> = env
        .iter()
        .filter(|(name, _)| name != "WORKER_DB_ROOT")
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    env.extend([
        ("WORKER_DB_ROOT", dir.join("worker").display().to_string()),
        ("HOSTER_ROOTS", dir.join("data").display().to_string()),
        ("WORKER_AUTH_TOKEN", "install-test-token".to_owned()),
    ]);
    let mut worker = LocalWorker::start(&unpacked.worker(), &env).expect("the worker starts");
    let health = ureq::get(&format!("{}/health", worker.base_url()))
        .call()
        .expect("/health answers");
    assert_eq!(health.status(), 200);
    assert!(
        worker.stop(std::time::Duration::from_secs(10)),
        "the worker stops on SIGTERM"
    );
}
