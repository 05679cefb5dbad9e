//! "direct": the hoster's compactions run by `OpenAndCompact` in this
//! process, on threads pinned to the worker's cores, with nothing of the
//! farm in between (no HTTP, no worker, no child, no verification). The
//! floor for the farm's own overhead: the same offload, for free.
//!
//! Each job is a thread that loads the column family's options from the
//! OPTIONS file the input names (as the worker does), compacts into an
//! output directory of its own below the DB, and hands RocksDB the result.
//! The threads' CPU time is counted apart, so that the hoster's CPU can
//! exclude it.

use crate::pin::CpuSet;
use farm::rocks::open_and_compact::{open_and_compact, CancelFlag, Override};
use farm::rocks::serialized::InputInfo;
use farm::rocks::service::{CompactionService, InstallStatus, JobInfo, ScheduleAnswer, WaitAnswer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the compaction threads share with the service.
pub struct Direct {
    db: PathBuf,
    cpus: CpuSet,
    /// CPU time of the compaction threads, in microseconds.
    pub cpu_micros: AtomicU64,
    /// Each `OpenAndCompact` call: input bytes and wall time.
    pub calls: Mutex<Vec<(u64, Duration)>>,
    pub failures: AtomicU64,
}

impl Direct {
    fn compact(&self, input: &[u8], out: &Path) -> Option<Vec<u8>> {
        let info = InputInfo::parse(input).ok()?;
        let options = self
            .db
            .join(format!("OPTIONS-{:06}", info.options_file_number));
        let mut ov = Override::from_options_file(&options, &info.cf_name).ok()?;
        std::fs::create_dir_all(out).ok()?;
        ov.set_info_log(&out.with_extension("LOG")).ok()?;
        let bytes: u64 = info
            .input_files
            .iter()
            .filter_map(|f| std::fs::metadata(self.db.join(f.trim_start_matches('/'))).ok())
            .map(|m| m.len())
            .sum();
        let t = Instant::now();
        let r = open_and_compact(&self.db, out, input, &ov, &CancelFlag::new(), false).ok();
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((bytes, t.elapsed()));
        r
    }
}

enum Slot {
    Running(JoinHandle<Option<Vec<u8>>>, PathBuf),
    Done(PathBuf),
}

pub struct DirectService {
    pub shared: Arc<Direct>,
    next: AtomicU64,
    jobs: Mutex<HashMap<String, Slot>>,
}

impl DirectService {
    pub fn new(db: PathBuf, cpus: CpuSet) -> Self {
        DirectService {
            shared: Arc::new(Direct {
                db,
                cpus,
                cpu_micros: AtomicU64::new(0),
                calls: Mutex::new(Vec::new()),
                failures: AtomicU64::new(0),
            }),
            next: AtomicU64::new(0),
            jobs: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, id: &str) -> Option<Slot> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }
}

impl CompactionService for DirectService {
    fn schedule(&self, _info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        let id = format!("direct-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let out = self.shared.db.join("direct-out").join(&id);
        let (input, dir, shared) = (input.to_vec(), out.clone(), self.shared.clone());
        let handle = std::thread::spawn(move || {
            let _ = shared.cpus.pin_current_thread();
            let c0 = farm::workload::cpu::thread();
            let r = shared.compact(&input, &dir);
            let used = farm::workload::cpu::thread().saturating_sub(c0);
            shared
                .cpu_micros
                .fetch_add(used.as_micros() as u64, Ordering::Relaxed);
            r
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), Slot::Running(handle, out));
        ScheduleAnswer::Scheduled(id)
    }

    fn wait(&self, id: &str) -> WaitAnswer {
        let Some(Slot::Running(handle, out)) = self.take(id) else {
            return WaitAnswer::UseLocal;
        };
        match handle.join().ok().flatten() {
            Some(result) => {
                self.jobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.to_owned(), Slot::Done(out));
                WaitAnswer::Success(result)
            }
            None => {
                self.shared.failures.fetch_add(1, Ordering::Relaxed);
                let _ = std::fs::remove_dir_all(&out);
                WaitAnswer::UseLocal
            }
        }
    }

    fn cancel_awaiting(&self) {}

    fn on_installation(&self, id: &str, _status: InstallStatus) {
        self.release(id);
    }

    fn release(&self, id: &str) {
        if let Some(Slot::Done(out) | Slot::Running(_, out)) = self.take(id) {
            let _ = std::fs::remove_dir_all(&out);
        }
    }
}
