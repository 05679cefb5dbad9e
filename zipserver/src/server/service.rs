//! What the zipserver's threads share: the counters, the memory budget,
//! the compression permits, the rings and the control page; and the one
//! function that compresses a block read from a socket.

use super::budget::Budget;
use super::compressors::{Compressors, Refusal};
use super::lanes;
use super::permits::{Permits, Taker};
use super::rings::Rings;
use super::stats::ZipStats;
use crate::codec::{Compressed, ZipParams};
use crate::shm::control::{Control, CONTROL_LEN};
use crate::shm::futex;
use crate::shm::map::{MapError, SharedMap};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shape of the service (from `ZIP_SERVER_OPTIONS`).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub num_threads: usize,
    pub memory_budget: u64,
    pub server_spin: Duration,
    /// Pin the compression threads, one lane per CPU.
    pub pin_threads: bool,
}

pub struct Service {
    pub stats: Arc<ZipStats>,
    pub shape: Shape,
    pub budget: Budget,
    pub permits: Permits,
    pub rings: Rings,
    pub control: Control,
    /// The CPU of each lane (`None`: one lane, threads not pinned), and
    /// the lane of each compression thread.
    pub lane_cpus: Vec<Option<usize>>,
    pub thread_lanes: Vec<u32>,
    /// The control page's `memfd`, handed to every child with a ring.
    control_fd: OwnedFd,
    stopping: AtomicBool,
}

impl Service {
    pub fn new(shape: Shape, stats: Arc<ZipStats>) -> Result<Arc<Service>, MapError> {
        let (control_fd, map) = SharedMap::create("zipserver-control", CONTROL_LEN)?;
        let control = Control::new(map)?;
        let (lane_cpus, thread_lanes) = if shape.pin_threads {
            let (cpus, threads) = lanes::plan(shape.num_threads, &lanes::allowed_cpus());
            control.init(&cpus);
            (cpus.into_iter().map(Some).collect(), threads)
        } else {
            control.init(&[]);
            (vec![None], vec![0; shape.num_threads])
        };
        Ok(Arc::new(Service {
            stats,
            shape,
            budget: Budget::new(shape.memory_budget),
            permits: Permits::new(shape.num_threads),
            rings: Rings::default(),
            control,
            lane_cpus,
            thread_lanes,
            control_fd,
            stopping: AtomicBool::new(false),
        }))
    }

    pub fn control_fd(&self) -> BorrowedFd<'_> {
        self.control_fd.as_fd()
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Tells the compression threads to end, waking the sleeping ones.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for lane in 0..self.lane_cpus.len() as u32 {
            self.control.doorbell(lane).fetch_add(1, Ordering::SeqCst);
            futex::wake(self.control.doorbell(lane), u32::MAX);
        }
    }

    /// Blocks submitted to the rings and not answered yet.
    pub fn ring_blocks_in_flight(&self) -> u64 {
        self.rings.in_flight()
    }

    /// Compresses one block read from a socket: waits for budget and for a
    /// permit, then compresses it on the calling thread.
    pub fn compress_socket_block(
        &self,
        compressors: &mut Compressors,
        params: ZipParams,
        capacity: usize,
        block: &[u8],
    ) -> Result<(Compressed, Vec<u8>), Refusal> {
        let bytes = (block.len() + capacity) as u64;
        let len = block.len() as i64;
        let stats = &self.stats;
        stats.queue_depth.inc();
        stats.waiting_bytes.add(len);
        let held = self.budget.reserve(bytes);
        if held.is_some() {
            stats.set_budget(self.budget.used());
            self.permits.take(Taker::Socket);
        }
        stats.queue_depth.dec();
        stats.waiting_bytes.sub(len);
        let Some(held) = held else {
            return Err(Refusal::OverBudget { bytes });
        };
        stats.working_bytes.add(len);
        let mut out = vec![0u8; capacity];
        let result = compressors
            .get(params)
            .and_then(|c| c.compress(block, &mut out).map_err(Refusal::Failed));
        stats.working_bytes.sub(len);
        self.permits.give_back();
        drop(held);
        stats.set_budget(self.budget.used());
        let result = result?;
        out.truncate(result.bytes());
        Ok((result, out))
    }
}
