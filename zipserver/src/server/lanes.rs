//! Which CPU each compression thread is pinned to, and so the lanes
//! (`crate::shm::control`): thread `i` runs on the `i`-th CPU this process
//! may use (round robin when there are more threads than CPUs); a lane is
//! one such CPU and the threads pinned to it.

use std::io;

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity into a zeroed cpu_set_t we own.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        set
    };
    // SAFETY: CPU_ISSET reads the set we own, for indices within it.
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

/// The lanes of `num_threads` threads over `cpus`: the CPU of each lane,
/// and the lane of each thread.
pub fn plan(num_threads: usize, cpus: &[usize]) -> (Vec<usize>, Vec<u32>) {
    let lanes: Vec<usize> = cpus.iter().copied().take(num_threads.max(1)).collect();
    let of_thread = (0..num_threads).map(|i| (i % lanes.len()) as u32).collect();
    (lanes, of_thread)
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: builds a cpu_set_t we own and applies it to this thread.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_spread_over_cpus_one_lane_per_cpu() {
        assert_eq!(plan(2, &[0, 1, 2, 3]), (vec![0, 1], vec![0, 1]));
        assert_eq!(plan(5, &[4, 6]), (vec![4, 6], vec![0, 1, 0, 1, 0]));
        assert_eq!(plan(1, &[7]), (vec![7], vec![0]));
        assert!(!allowed_cpus().is_empty());
    }
}
