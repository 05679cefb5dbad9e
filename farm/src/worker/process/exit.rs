//! How a child ended, as a closed type: the one place an `ExitStatus` is
//! taken apart.

use nix::sys::signal::Signal;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The end of a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` with this code.
    Code(i32),
    /// A signal ended it (the raw number: real-time signals have no name).
    Signal(i32),
}

/// Takes `status` apart.
pub fn extract(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        // Stopped or continued: `wait` reports neither without WUNTRACED.
        (None, None) => Exit::Code(-1),
    }
}

impl Exit {
    /// Whether this is the signal `sig`.
    pub fn is_signal(self, sig: Signal) -> bool {
        self == Exit::Signal(sig as i32)
    }
}

/// `SIGSEGV`, or `SIG<n>` for a number without a name.
pub fn signal_name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) => format!("SIG{sig}"),
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {}", signal_name(*s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_signals_are_told_apart() {
        assert_eq!(extract(ExitStatus::from_raw(3 << 8)), Exit::Code(3));
        assert_eq!(extract(ExitStatus::from_raw(9)), Exit::Signal(9));
        assert!(extract(ExitStatus::from_raw(9)).is_signal(Signal::SIGKILL));
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(40), "SIG40");
        assert_eq!(Exit::Signal(6).to_string(), "signal SIGABRT");
        assert_eq!(Exit::Code(4).to_string(), "exit code 4");
    }
}
