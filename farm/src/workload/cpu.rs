//! CPU time, from the kernel's own accounting: this process
//! (`getrusage(RUSAGE_SELF)`: the hoster, with every thread of RocksDB and
//! of the farm's client), the calling thread (`RUSAGE_THREAD`), and the
//! children this process has waited for (`RUSAGE_CHILDREN`: a worker
//! stopped at the end of a round, with every attempt child it reaped).

use std::time::Duration;

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: a zeroed rusage is valid for getrusage to fill; `who` is one
    // of the RUSAGE_* constants.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// User and system time of every thread of this process so far.
pub fn process() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// User and system time of the calling thread so far.
pub fn thread() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// User and system time of the children waited for so far (and of theirs).
pub fn children() -> Duration {
    rusage(libc::RUSAGE_CHILDREN)
}

/// User and system time of process `pid` and of the children it has waited
/// for, from `/proc/<pid>/stat` (fields 14-17, in clock ticks).
pub fn of_pid(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
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
