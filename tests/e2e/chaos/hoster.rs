//! The hoster process (`chaos-hoster`): started on the chaos stand's DB,
//! its JSON lines read on a thread, SIGKILLed at a moment the test picks.

use farm::worker::process::running::Running;
use farm::worker::process::setup::ChildSetup;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What one hoster process is asked to do.
pub struct HosterArgs<'a> {
    pub db: &'a Path,
    pub expected: &'a Path,
    pub params: &'a str,
    pub key_space: u64,
    pub seed: u64,
    /// 0: write until killed; else write this many, settle and exit.
    pub ops: u64,
    /// Its stderr.
    pub log: &'a Path,
}

/// A running `chaos-hoster`, in a process group of its own.
pub struct HosterProcess {
    process: Running,
    events: Receiver<Value>,
    /// The last `progress` line: the writes and the farm's counters.
    pub last_progress: Option<Value>,
    /// Its stderr, quoted when it fails.
    log: PathBuf,
}

impl HosterProcess {
    pub fn start(a: &HosterArgs) -> HosterProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(a.log)
            .expect("hoster log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaos-hoster"));
        cmd.arg("--db")
            .arg(a.db)
            .arg("--expected")
            .arg(a.expected)
            .args(["--params", a.params])
            .args(["--key-space", &a.key_space.to_string()])
            .args(["--seed", &a.seed.to_string()])
            .args(["--ops", &a.ops.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let setup = ChildSetup {
            own_group: true,
            ..ChildSetup::default()
        };
        let mut process = Running::spawn(&mut cmd, setup).expect("chaos-hoster starts");
        let stdout = process.take_stdout().expect("stdout was piped");
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("hoster line {line:?} is not JSON: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        HosterProcess {
            process,
            events,
            last_progress: None,
            log: a.log.to_owned(),
        }
    }

    /// The next event other than `progress` (those only update
    /// [`HosterProcess::last_progress`]), within `timeout`; `None` when
    /// the process ended or the time ran out.
    fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["event"] == "progress" => self.last_progress = Some(v),
                Ok(v) => return Some(v),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for the event `name` (`verified`, `done`); panics on a
    /// mismatch, an early exit or a timeout, naming what happened.
    pub fn expect_event(&mut self, name: &str, timeout: Duration) -> Value {
        match self.next_event(timeout) {
            Some(v) if v["event"] == name => v,
            other => {
                let status = self.process.try_wait().ok().flatten();
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "the hoster's {name} event did not come: got {other:?}, exit {status:?}; \
                     its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            }
        }
    }

    /// Takes in the `progress` lines printed so far.
    pub fn drain(&mut self) {
        while let Ok(v) = self.events.try_recv() {
            if v["event"] == "progress" {
                self.last_progress = Some(v);
            }
        }
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        self.process.try_wait().ok().flatten().is_none()
    }

    /// SIGKILL (its group) and reap; returns its last `progress` line.
    pub fn kill(mut self) -> Option<Value> {
        let status = self.process.kill().expect("the hoster is reaped");
        assert!(
            status.code().is_none(),
            "the hoster exited by itself before it was killed: {status}"
        );
        // The reader ends when the pipe closes.
        while let Ok(v) = self.events.recv_timeout(Duration::from_secs(5)) {
            if v["event"] == "progress" {
                self.last_progress = Some(v);
            }
        }
        self.last_progress
    }

    /// Waits for a bounded run's exit; its exit status must be success.
    pub fn wait_exit(mut self, timeout: Duration) {
        let waited = self
            .process
            .wait(Some(Instant::now() + timeout), &|| false)
            .expect("wait for the hoster");
        match waited {
            farm::worker::process::running::Waited::Exited(s) => {
                assert!(s.success(), "the hoster's bounded run failed: {s}")
            }
            other => panic!("the hoster did not exit: {other:?}"),
        }
    }
}
