//! Tests against this host's real cgroup hierarchies (run as root). Where
//! the host gives the worker no cgroup, they say so and pass: the
//! end-to-end tests with `CHILD_CGROUP=required` fail loudly there.

use super::group::ChildCgroup;
use super::layout::{Layout, Tree, Version};
use super::limits::CgroupLimits;
use crate::worker::process::exit::{extract, Exit};
use crate::worker::process::running::{Running, Waited};
use crate::worker::process::setup::ChildSetup;
use nix::sys::signal::Signal;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Test homes below the worker's own cgroups, removed when dropped.
struct Homes(Vec<(Tree, PathBuf)>);

impl Homes {
    fn new(trees: &[Tree], name: &str) -> Option<Homes> {
        let leaf = format!("dcompact-worker-test-{}-{name}", std::process::id());
        let homes: Vec<(Tree, PathBuf)> = trees
            .iter()
            .map(|t| (t.clone(), t.own.join(&leaf)))
            .collect();
        for (_, h) in &homes {
            if let Err(e) = std::fs::create_dir(h) {
                eprintln!(
                    "cannot make test cgroups here ({}: {e}): skipped",
                    h.display()
                );
                return None;
            }
        }
        Some(Homes(homes))
    }
}

impl Drop for Homes {
    fn drop(&mut self) {
        for (_, h) in &self.0 {
            let _ = std::fs::remove_dir(h);
        }
    }
}

fn layout() -> Option<Layout> {
    match Layout::discover() {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("no cgroups on this host ({e}): skipped");
            None
        }
    }
}

const LIMITS: CgroupLimits = CgroupLimits {
    memory: Some(64 << 20),
    max_processes: 32,
    cpu_weight: 100,
};

/// Runs `script` in `group`; returns the first line it prints and how it
/// ended.
fn run_in(group: &ChildCgroup, script: &str) -> (String, Exit) {
    let setup = ChildSetup {
        join: group.join_files().unwrap(),
        own_group: true,
        ..ChildSetup::default()
    };
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).stdout(Stdio::piped());
    let mut child = Running::spawn(&mut cmd, setup).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.take_stdout().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Waited::Exited(status) = child.wait(None, &|| false).unwrap() else {
        panic!("the child exits");
    };
    (line.trim().to_owned(), extract(status))
}

fn gone(pid: i32) -> bool {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .map_or(true, |s| s.state == 'Z')
}

/// The grandchild left the group with setsid and outlived the child: the
/// cgroup held it, and ending the cgroup ends it.
fn ends_a_setsid_grandchild(version: Version, trees: &[Tree], name: &str) {
    let Some(homes) = Homes::new(trees, name) else {
        return;
    };
    let mut group = ChildCgroup::create(version, &homes.0, "child", &LIMITS).unwrap();
    // The grandchild's stdout is not the pipe, so the read ends with sh.
    let (line, exit) = run_in(&group, "setsid sleep 300 >/dev/null & echo $!");
    assert_eq!(exit, Exit::Code(0));
    let grandchild: i32 = line.parse().unwrap();
    let in_cgroup = std::fs::read_to_string(format!("/proc/{grandchild}/cgroup")).unwrap();
    assert!(
        in_cgroup.contains(&format!("{name}/child")),
        "the grandchild is in the child's cgroup: {in_cgroup}"
    );
    assert!(!gone(grandchild));
    assert_eq!(group.end().unwrap(), 1, "one process outlived the child");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !gone(grandchild) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(gone(grandchild), "the grandchild was killed");
    for (_, home) in &homes.0 {
        assert!(!home.join("child").exists(), "the cgroup was removed");
    }
}

#[test]
fn a_child_cgroup_ends_a_setsid_grandchild() {
    let Some(layout) = layout() else { return };
    ends_a_setsid_grandchild(layout.version, &layout.trees, "grandchild");
}

/// A child that touches more than its memory limit is killed by the
/// kernel inside its cgroup, and the cgroup counts the OOM kill.
#[test]
fn a_child_past_its_memory_limit_is_killed_and_counted() {
    let Some(layout) = layout() else { return };
    let Some(homes) = Homes::new(&layout.trees, "oom") else {
        return;
    };
    let mut group = ChildCgroup::create(layout.version, &homes.0, "child", &LIMITS).unwrap();
    // dd reads 256 MiB into one buffer: every page of it is touched.
    let (_, exit) = run_in(
        &group,
        "echo; exec dd if=/dev/zero of=/dev/null bs=256M count=1",
    );
    assert_eq!(exit, Exit::Signal(Signal::SIGKILL as i32));
    assert!(group.oom_kills() >= 1, "the cgroup counted the OOM kill");
    assert_eq!(group.memory_limit(), Some(64 << 20));
    group.end().unwrap();
}

/// cgroup v2's kill and removal, on the unified hierarchy of a host whose
/// controllers are on v1 (no limits there: it offers no controller).
#[test]
fn cgroup_v2_kill_ends_a_setsid_grandchild() {
    let me = procfs::process::Process::myself().unwrap();
    let own = me.cgroups().unwrap().into_iter().find(|c| c.hierarchy == 0);
    let mount = me
        .mountinfo()
        .unwrap()
        .into_iter()
        .find(|m| m.fs_type == "cgroup2");
    let (Some(own), Some(mount)) = (own, mount) else {
        eprintln!("no cgroup v2 hierarchy: skipped");
        return;
    };
    if mount.root != "/" {
        eprintln!("cgroup v2 mounted below its root: skipped");
        return;
    }
    let dir = mount.mount_point.join(own.pathname.trim_start_matches('/'));
    if !dir.join("cgroup.procs").exists() || std::fs::read_dir(&dir).is_err() {
        return;
    }
    let tree = Tree {
        controllers: Vec::new(),
        own: dir,
    };
    ends_a_setsid_grandchild(Version::V2, &[tree], "v2");
}

/// What a killed worker left: a child cgroup whose child is dead and whose
/// setsid grandchild still runs. The sweep of a new worker ends it and
/// removes the cgroup.
#[test]
fn the_sweep_ends_an_orphan_and_removes_its_cgroup() {
    let Some(layout) = layout() else { return };
    let root_id = format!("sweep-test-{}", std::process::id());
    let homes = super::home::test_homes(&layout, &root_id);
    for (_, h) in &homes {
        std::fs::create_dir_all(h).unwrap();
    }
    let group = ChildCgroup::create(layout.version, &homes, "attempt-1-0", &LIMITS).unwrap();
    let (line, exit) = run_in(&group, "setsid sleep 300 >/dev/null & echo $!");
    assert_eq!(exit, Exit::Code(0));
    let orphan: i32 = line.parse().unwrap();
    // The worker died: nobody ends this cgroup but the next worker.
    std::mem::forget(group);
    assert!(!gone(orphan));
    let swept = super::home::test_sweep(layout.version, &homes).unwrap();
    assert_eq!((swept.cgroups, swept.processes), (1, 1));
    let state = procfs::process::Process::new(orphan).and_then(|p| p.stat());
    assert!(
        state
            .as_ref()
            .map_or(true, |s| s.state == 'Z' || s.state == 'X'),
        "the orphan was killed before the sweep returned: {:?}",
        state.map(|s| s.state)
    );
    for (_, h) in &homes {
        assert!(!h.join("attempt-1-0").exists());
        std::fs::remove_dir(h).unwrap();
    }
}
