//! Pinning threads to CPUs (`sched_setaffinity`), so that the hoster and
//! the worker each get cores of their own. A process started by a pinned
//! thread inherits its mask, and so do the threads a pinned thread starts.

use std::fmt;
use std::str::FromStr;

/// A set of CPU numbers: `0`, `0,2`, `1-3`; empty means "not pinned".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSet(Vec<usize>);

#[derive(Debug, thiserror::Error)]
#[error("bad CPU list {0:?}: expected numbers and ranges like 0,2-3")]
pub struct BadCpuList(String);

impl FromStr for CpuSet {
    type Err = BadCpuList;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCpuList(s.to_owned());
        let mut cpus = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (from, to) = part.split_once('-').unwrap_or((part, part));
            let from: usize = from.trim().parse().map_err(|_| bad())?;
            let to: usize = to.trim().parse().map_err(|_| bad())?;
            if to < from || to >= libc::CPU_SETSIZE as usize {
                return Err(bad());
            }
            cpus.extend(from..=to);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuSet(cpus))
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("any");
        }
        let list: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&list.join(","))
    }
}

impl CpuSet {
    /// Pins the calling thread to this set; an empty set pins to every CPU
    /// the machine has (undoing an earlier pin).
    pub fn pin_current_thread(&self) -> std::io::Result<()> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
        // within it for numbers below CPU_SETSIZE (checked when parsed).
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if self.0.is_empty() {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                (0..n.min(libc::CPU_SETSIZE as usize)).for_each(|c| libc::CPU_SET(c, &mut set));
            } else {
                self.0.iter().for_each(|&c| libc::CPU_SET(c, &mut set));
            }
            set
        };
        // SAFETY: pid 0 is the calling thread; `set` is a valid mask of the
        // size passed.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!("1".parse::<CpuSet>().unwrap(), CpuSet(vec![1]));
        assert_eq!("0,2-3".parse::<CpuSet>().unwrap(), CpuSet(vec![0, 2, 3]));
        assert_eq!("".parse::<CpuSet>().unwrap(), CpuSet(vec![]));
        assert!("3-1".parse::<CpuSet>().is_err());
        assert!("x".parse::<CpuSet>().is_err());
        assert_eq!("0,2-3".parse::<CpuSet>().unwrap().to_string(), "0,2,3");
    }
}
