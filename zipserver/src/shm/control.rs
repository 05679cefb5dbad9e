//! The zipserver's control page, shared by every child: one lane per CPU
//! that has a compression thread pinned to it, and which lane serves which
//! CPU.
//!
//! A hand-off between processes on two CPUs costs an inter-processor
//! interrupt, and waking a CPU from idle; on the virtual machines measured
//! (`docs/BENCHMARKS.md`) that is ten times the cost of the same hand-off
//! on one CPU. So each compression thread is pinned to a CPU, and a child's
//! thread puts its block in the lane of the CPU it runs on: the compression
//! thread it wakes, and that later wakes it, runs on the same CPU. A CPU
//! without a compression thread (fewer `num_threads` than CPUs) uses lane
//! `cpu % lanes`.
//!
//! | where | what |
//! | --- | --- |
//! | line 0 | magic, version, number of lanes |
//! | line 1 + lane | `doorbell` (a futex the lane's idle threads sleep on), `awake` (its threads awake: they look at every ring before they sleep), `sleepers` |
//! | after [`MAX_LANES`] lines | the lane of each CPU, 16 bits each (`NO_LANE`: none) |

use super::map::{MapError, SharedMap};
use std::sync::atomic::{AtomicU32, Ordering};

pub const CONTROL_MAGIC: u32 = 0x5a43_544c;
pub const MAX_LANES: usize = 1024;
pub const MAX_CPUS: usize = 1024;
const LINE: usize = 64;
const TABLE: usize = (1 + MAX_LANES) * LINE;
const NO_LANE: u32 = 0xffff;
/// Bytes of the control page.
pub const CONTROL_LEN: usize = (TABLE + MAX_CPUS * 2).next_multiple_of(4096);

pub struct Control {
    map: SharedMap,
}

impl Control {
    pub fn new(map: SharedMap) -> Result<Control, MapError> {
        if map.len() < CONTROL_LEN {
            return Err(MapError::TooSmall {
                actual: map.len() as u64,
                expected: CONTROL_LEN,
            });
        }
        Ok(Control { map })
    }

    /// Writes the header and the CPU table (the zipserver does, once,
    /// before any child sees the page): `cpus[lane]` is the CPU of `lane`.
    pub fn init(&self, cpus: &[usize]) {
        self.map.word(0).store(CONTROL_MAGIC, Ordering::Relaxed);
        self.map.word(4).store(1, Ordering::Relaxed);
        self.map
            .word(8)
            .store(cpus.len().min(MAX_LANES) as u32, Ordering::Relaxed);
        for cpu in 0..MAX_CPUS {
            let lane = cpus
                .iter()
                .position(|c| *c == cpu)
                .map_or(NO_LANE, |l| l as u32);
            self.set_lane_of(cpu, lane);
        }
    }

    fn table_word(&self, cpu: usize) -> (&AtomicU32, u32) {
        (self.map.word(TABLE + (cpu / 2) * 4), (cpu % 2) as u32 * 16)
    }

    fn set_lane_of(&self, cpu: usize, lane: u32) {
        let (w, shift) = self.table_word(cpu);
        let old = w.load(Ordering::Relaxed);
        w.store(
            (old & !(0xffff << shift)) | (lane & 0xffff) << shift,
            Ordering::Relaxed,
        );
    }

    /// Lanes (at least 1, even if the page says otherwise).
    pub fn lanes(&self) -> u32 {
        self.map
            .word(8)
            .load(Ordering::Relaxed)
            .clamp(1, MAX_LANES as u32)
    }

    /// The lane a thread on `cpu` puts its blocks in.
    pub fn lane_for(&self, cpu: usize) -> u32 {
        let lanes = self.lanes();
        if cpu < MAX_CPUS {
            let (w, shift) = self.table_word(cpu);
            let lane = (w.load(Ordering::Relaxed) >> shift) & 0xffff;
            if lane < lanes {
                return lane;
            }
        }
        cpu as u32 % lanes
    }

    fn lane_word(&self, lane: u32, word: usize) -> &AtomicU32 {
        let lane = (lane as usize).min(MAX_LANES - 1);
        self.map.word((1 + lane) * LINE + word * 4)
    }

    pub fn doorbell(&self, lane: u32) -> &AtomicU32 {
        self.lane_word(lane, 0)
    }

    pub fn awake(&self, lane: u32) -> &AtomicU32 {
        self.lane_word(lane, 1)
    }

    pub fn sleepers(&self, lane: u32) -> &AtomicU32 {
        self.lane_word(lane, 2)
    }
}

/// The CPU this thread runs on now (0 when the kernel cannot say).
pub fn current_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_map_to_their_lane_or_share_one() {
        let (_fd, map) = SharedMap::create("c", CONTROL_LEN).unwrap();
        let c = Control::new(map).unwrap();
        c.init(&[3, 1]);
        assert_eq!(c.lanes(), 2);
        assert_eq!((c.lane_for(3), c.lane_for(1)), (0, 1));
        assert_eq!((c.lane_for(0), c.lane_for(2), c.lane_for(5000)), (0, 0, 0));
        c.doorbell(1).store(9, Ordering::Relaxed);
        assert_eq!(c.doorbell(0).load(Ordering::Relaxed), 0);
        assert!(current_cpu() < 4096);
    }
}
