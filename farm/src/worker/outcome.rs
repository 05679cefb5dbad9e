//! How an attempt ended: one closed type that feeds `/probe`, the attempt's
//! `LOG` and the counters.

use std::fmt;

/// The end of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `OpenAndCompact` returned a result; the output files are in place.
    Succeeded,
    /// The attempt could not be prepared: attempt directory, output directory,
    /// input or OPTIONS file unreadable.
    SetupFailed(String),
    /// RocksDB reported an error while compacting.
    CompactionFailed(String),
    /// Cancelled through `/shutdown` or worker shutdown.
    Cancelled,
    /// The attempt's thread panicked.
    Panicked(String),
    /// The child exited with a code the contract does not give a meaning.
    Exited(i32),
    /// The child was killed by a signal (its name, e.g. `SIGSEGV`).
    Killed(String),
    /// The attempt ran past its timeout and was stopped.
    TimedOut,
    /// The child could not be started.
    SpawnFailed(String),
    /// The kernel's OOM handling killed the child inside its cgroup
    /// (`limit`: the cgroup's memory limit, `CHILD_MEMORY_LIMIT`).
    OutOfMemory { limit: Option<u64> },
}

impl Outcome {
    /// The outcome's name in the API and the counters.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::SetupFailed(_) => "setup_failed",
            Outcome::CompactionFailed(_) => "compaction_failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Panicked(_) => "panicked",
            Outcome::Exited(_) => "exited",
            Outcome::Killed(_) => "killed",
            Outcome::TimedOut => "timed_out",
            Outcome::SpawnFailed(_) => "spawn_failed",
            Outcome::OutOfMemory { .. } => "out_of_memory",
        }
    }

    /// Every failure name, for counters that list zeroes too.
    pub const FAILURE_NAMES: [&'static str; 9] = [
        "setup_failed",
        "compaction_failed",
        "cancelled",
        "panicked",
        "exited",
        "killed",
        "timed_out",
        "spawn_failed",
        "out_of_memory",
    ];

    /// What went wrong, in words.
    pub fn error(&self) -> Option<String> {
        match self {
            Outcome::Succeeded | Outcome::Cancelled | Outcome::TimedOut => None,
            Outcome::SetupFailed(e)
            | Outcome::CompactionFailed(e)
            | Outcome::Panicked(e)
            | Outcome::SpawnFailed(e) => Some(e.clone()),
            Outcome::Exited(code) => Some(format!("child exited with code {code}")),
            Outcome::Killed(sig) => Some(format!("child killed by {sig}")),
            Outcome::OutOfMemory { limit: Some(bytes) } => Some(format!(
                "child killed by the kernel's OOM handling in its cgroup (memory limit {bytes} bytes)"
            )),
            Outcome::OutOfMemory { limit: None } => {
                Some("child killed by the kernel's OOM handling in its cgroup".into())
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error() {
            Some(e) => write!(f, "{}: {}", self.name(), e),
            None => f.write_str(self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_is_named_with_its_limit() {
        let o = Outcome::OutOfMemory {
            limit: Some(256 << 20),
        };
        assert_eq!(o.name(), "out_of_memory");
        assert!(Outcome::FAILURE_NAMES.contains(&o.name()));
        assert_eq!(
            o.to_string(),
            "out_of_memory: child killed by the kernel's OOM handling in its cgroup (memory limit 268435456 bytes)"
        );
    }
}
