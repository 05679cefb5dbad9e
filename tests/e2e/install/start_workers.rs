//! `scripts/start_workers.sh`: one worker per NUMA node with
//! `numactl --cpunodebind=N --membind=N`, one port each, from an env file.
//!
//! - With a fake two-node topology (a sysfs node directory whose third node
//!   has memory but no CPUs), `--dry-run` prints exactly the two command
//!   lines and starts nothing.
//! - For real on this machine's nodes: each worker listens, answers
//!   `/health`, runs bound to its node's CPUs and memory; `stop` ends them
//!   all and leaves no process and no pid file.
//! - A worker that refuses its configuration makes `start` fail with its
//!   log, and leaves nothing running.

use super::deb::{repo, run};
use crate::harness::{multi_process, worker_bin};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script(env_file: &Path) -> Command {
    let mut cmd = Command::new(repo().join("scripts/start_workers.sh"));
    cmd.arg("--env-file").arg(env_file);
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `pid` runs (a zombie waiting for init to reap it does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Pids of running processes whose environment names `needle`.
fn processes_with_env(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .filter(|pid| running(*pid))
        .collect()
}

/// The NUMA nodes of this machine that have CPUs, with their CPU lists.
fn real_nodes() -> Vec<(u32, String)> {
    let mut nodes: Vec<(u32, String)> = std::fs::read_dir("/sys/devices/system/node")
        .expect("sysfs nodes")
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_prefix("node")?.parse().ok()?;
            let cpus = std::fs::read_to_string(e.path().join("cpulist")).ok()?;
            (!cpus.trim().is_empty()).then(|| (n, cpus.trim().to_owned()))
        })
        .collect();
    nodes.sort();
    nodes
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

#[test]
fn a_fake_two_node_topology_gets_two_bound_workers_on_two_ports() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let sysfs = tmp.path().join("node");
    for (node, cpus) in [("node0", "0-3\n"), ("node1", "4-7\n"), ("node2", "\n")] {
        std::fs::create_dir_all(sysfs.join(node)).expect("node dir");
        std::fs::write(sysfs.join(node).join("cpulist"), cpus).expect("cpulist");
    }
    std::fs::write(sysfs.join("online"), "0-2\n").expect("online");
    let workers = tmp.path().join("workers");
    let mnt = tmp.path().join("mnt");
    let env_file = tmp.path().join("worker.env");
    std::fs::write(
        &env_file,
        format!(
            "HOSTER_ROOTS=/data\nNFS_DYNAMIC_MOUNT=true\nNFS_MOUNT_ROOT={}\nBASE_PORT=9100\n\
             ADVERTISE_HOST=worker1.example\nWORKERS_ROOT={}\nWORKER_BIN=/opt/farm/dcompact-worker\n",
            mnt.display(),
            workers.display()
        ),
    )
    .expect("env file");

    let out = run(script(&env_file).arg("--dry-run").env("NUMA_SYSFS", &sysfs));
    assert!(out.status.success(), "{out:?}");
    let line = |node: u32| {
        format!(
            "env LISTEN_ADDR=0.0.0.0:{} WORKER_DB_ROOT={}/{node} ADVERTISE_ADDR=worker1.example:{} \
             NFS_MOUNT_ROOT={}/{node} numactl --cpunodebind={node} --membind={node} -- \
             /opt/farm/dcompact-worker",
            9100 + node,
            workers.display(),
            9100 + node,
            mnt.display()
        )
    };
    assert_eq!(stdout(&out), format!("{}\n{}\n", line(0), line(1)));
    assert!(!workers.exists(), "a dry run starts nothing");

    // NUMA_NODES chooses among them, as ToplingDB's nodeset does.
    let out = run(script(&env_file)
        .arg("--dry-run")
        .env("NUMA_SYSFS", &sysfs)
        .env("NUMA_NODES", "1"));
    assert_eq!(stdout(&out), format!("{}\n", line(1)));
}

/// Ends whatever a failed test left (the script's `stop`, then SIGKILL).
struct Started<'a> {
    env_file: &'a Path,
    pids: Vec<u32>,
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if self.pids.iter().any(|pid| running(*pid)) {
            let _ = run(script(self.env_file).arg("stop").env("STOP_TIMEOUT", "5"));
            for pid in &self.pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn env_file(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let workers = dir.join("workers");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("hoster root");
    let file = dir.join("worker.env");
    std::fs::write(
        &file,
        format!(
            "# settings of the test\nLISTEN_HOST=127.0.0.1\nBASE_PORT=0\nWORKERS_ROOT={}\n\
             WORKER_BIN={}\nMULTI_PROCESS={}\nRUST_LOG=warn\nOUTPUT_SPACE_MARGIN=1M\n{extra}",
            workers.display(),
            worker_bin().display(),
            multi_process()
        ),
    )
    .expect("env file");
    (file, workers)
}

#[test]
fn on_this_machine_each_node_gets_a_bound_worker_until_stop() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let hosters = format!("HOSTER_ROOTS={}\n", tmp.path().join("data").display());
    let (env_file, workers) = env_file(tmp.path(), &hosters);
    let mut started = Started {
        env_file: &env_file,
        pids: Vec::new(),
    };
    let out = run(script(&env_file).arg("start"));
    let said = stdout(&out);
    assert!(out.status.success(), "{out:?}");

    let nodes = real_nodes();
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), nodes.len(), "one worker per node: {said}");
    for ((node, cpus), line) in nodes.iter().zip(&lines) {
        // "node N: pid P listening on ADDR"
        let rest = line
            .strip_prefix(&format!("node {node}: pid "))
            .unwrap_or_else(|| panic!("{line}"));
        let (pid, addr) = rest.split_once(" listening on ").expect("pid and address");
        let pid: u32 = pid.parse().expect("pid");
        started.pids.push(pid);
        assert!(running(pid));
        let health = ureq::get(&format!("http://{addr}/health"))
            .call()
            .expect("/health answers");
        assert_eq!(health.status(), 200);
        assert_eq!(
            &status_field(pid, "Cpus_allowed_list"),
            cpus,
            "bound to node {node}'s CPUs"
        );
        assert_eq!(
            status_field(pid, "Mems_allowed_list"),
            node.to_string(),
            "and its memory"
        );
        assert!(workers
            .join(format!("{node}"))
            .join(".dcompact-worker-root")
            .is_file());
    }
    let status = stdout(&run(script(&env_file).arg("status")));
    assert_eq!(
        status.matches("running, listening on").count(),
        nodes.len(),
        "{status}"
    );

    let out = run(script(&env_file).arg("stop"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).matches(" stopped").count(), nodes.len());
    for pid in &started.pids {
        assert!(!running(*pid), "worker {pid} ended");
    }
    let left: Vec<_> = std::fs::read_dir(&workers)
        .expect("workers root")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
        .collect();
    assert!(left.is_empty(), "pid files removed: {left:?}");
    let root_env = format!("WORKER_DB_ROOT={}/{}", workers.display(), nodes[0].0);
    assert_eq!(
        processes_with_env(&root_env),
        Vec::<u32>::new(),
        "no process left"
    );
}

#[test]
fn a_worker_that_refuses_its_configuration_fails_the_start_and_leaves_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // No HOSTER_ROOTS nor NFS_MOUNT_ROOT: the worker refuses to start.
    let (env_file, workers) = env_file(tmp.path(), "");
    let _started = Started {
        env_file: &env_file,
        pids: Vec::new(),
    };
    let out = run(script(&env_file).arg("start"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start fails");
    assert!(
        stderr.contains("HOSTER_ROOTS"),
        "the worker's reason is shown: {stderr}"
    );
    let node = real_nodes()[0].0;
    let root_env = format!("WORKER_DB_ROOT={}/{node}", workers.display());
    assert_eq!(
        processes_with_env(&root_env),
        Vec::<u32>::new(),
        "no process left"
    );
    assert!(
        !workers.join(format!("worker-{node}.pid")).exists(),
        "no pid file left"
    );
}
