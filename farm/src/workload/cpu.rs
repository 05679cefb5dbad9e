//! CPU time, from the kernel's own accounting: this process
//! (`getrusage(RUSAGE_SELF)`: the hoster, with every thread of RocksDB and
//! of the farm's client), the calling thread (`RUSAGE_THREAD`), and the
//! children this process has waited for (`RUSAGE_CHILDREN`: a worker
//! stopped at the end of a round, with every attempt child it reaped).

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeValLike;
use std::time::Duration;

fn rusage(who: UsageWho) -> Duration {
    // getrusage fails only on an invalid `who`: these are all valid.
    let Ok(u) = getrusage(who) else {
        return Duration::ZERO;
    };
    let micros = u.user_time().num_microseconds() + u.system_time().num_microseconds();
    Duration::from_micros(micros.max(0) as u64)
}

/// User and system time of every thread of this process so far.
pub fn process() -> Duration {
    rusage(UsageWho::RUSAGE_SELF)
}

/// User and system time of the calling thread so far.
pub fn thread() -> Duration {
    rusage(UsageWho::RUSAGE_THREAD)
}

/// User and system time of the children waited for so far (and of theirs).
pub fn children() -> Duration {
    rusage(UsageWho::RUSAGE_CHILDREN)
}

/// User and system time of process `pid` and of the children it has waited
/// for, from `/proc/<pid>/stat` (`utime`, `stime`, `cutime`, `cstime`).
pub fn of_pid(pid: u32) -> Option<Duration> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .and_then(|p| p.stat())
        .ok()?;
    let ticks = stat.utime + stat.stime + (stat.cutime + stat.cstime).max(0) as u64;
    let hz = procfs::ticks_per_second().max(1);
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_shows_in_every_view() {
        let (p0, t0) = (process(), thread());
        let until = std::time::Instant::now() + Duration::from_millis(60);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(thread() - t0 >= Duration::from_millis(30));
        assert!(process() - p0 >= Duration::from_millis(30));
        assert!(of_pid(std::process::id()).is_some_and(|d| d >= Duration::from_millis(30)));
    }
}
