//! A `CompactionService` in front of another that records, per job, when
//! RocksDB called it and how much CPU the calling thread spent inside: the
//! hoster's side of a remote job (submission, the wait with its probes,
//! verification and decoding) and RocksDB's install after it.

use farm::rocks::service::{CompactionService, InstallStatus, JobInfo, ScheduleAnswer, WaitAnswer};
use farm::worker::timings::now_us;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One remote job as the hoster saw it (wall-clock microseconds).
#[derive(Debug, Clone, Default)]
pub struct HosterJob {
    pub db_job: u32,
    pub sub_job: u32,
    pub schedule_start_us: u64,
    pub schedule_end_us: u64,
    pub wait_start_us: u64,
    pub wait_end_us: u64,
    /// `on_installation`: RocksDB has installed (or dropped) the result.
    pub installed_us: u64,
    pub success: bool,
    /// CPU time of the calling thread inside `schedule` and inside `wait`.
    pub schedule_cpu: Duration,
    pub wait_cpu: Duration,
}

pub struct Timed {
    inner: Arc<dyn CompactionService>,
    open: Mutex<HashMap<String, HosterJob>>,
    done: Mutex<Vec<HosterJob>>,
    /// Jobs the inner service sent back to RocksDB at `schedule`.
    local: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Timed {
    pub fn new(inner: Arc<dyn CompactionService>) -> Self {
        Timed {
            inner,
            open: Mutex::new(HashMap::new()),
            done: Mutex::new(Vec::new()),
            local: Mutex::new(0),
        }
    }

    /// The jobs whose installation RocksDB reported.
    pub fn jobs(&self) -> Vec<HosterJob> {
        lock(&self.done).clone()
    }

    pub fn local_at_schedule(&self) -> u64 {
        *lock(&self.local)
    }
}

impl CompactionService for Timed {
    fn schedule(&self, info: &JobInfo, input: &[u8]) -> ScheduleAnswer {
        let (start, cpu) = (now_us(), farm::workload::cpu::thread());
        let answer = self.inner.schedule(info, input);
        let job = HosterJob {
            db_job: info.db_job_id(),
            sub_job: info.sub_job_id(),
            schedule_start_us: start,
            schedule_end_us: now_us(),
            schedule_cpu: farm::workload::cpu::thread().saturating_sub(cpu),
            ..Default::default()
        };
        match &answer {
            ScheduleAnswer::Scheduled(id) => {
                lock(&self.open).insert(id.clone(), job);
            }
            ScheduleAnswer::UseLocal => *lock(&self.local) += 1,
        }
        answer
    }

    fn wait(&self, id: &str) -> WaitAnswer {
        let (start, cpu) = (now_us(), farm::workload::cpu::thread());
        let answer = self.inner.wait(id);
        if let Some(job) = lock(&self.open).get_mut(id) {
            job.wait_start_us = start;
            job.wait_end_us = now_us();
            job.wait_cpu = farm::workload::cpu::thread().saturating_sub(cpu);
            job.success = matches!(answer, WaitAnswer::Success(_));
        }
        answer
    }

    fn cancel_awaiting(&self) {
        self.inner.cancel_awaiting()
    }

    fn on_installation(&self, id: &str, status: InstallStatus) {
        self.inner.on_installation(id, status);
        if let Some(mut job) = lock(&self.open).remove(id) {
            job.installed_us = now_us();
            job.success &= status == InstallStatus::Success;
            lock(&self.done).push(job);
        }
    }

    fn release(&self, id: &str) {
        self.inner.release(id);
        lock(&self.open).remove(id);
    }
}
