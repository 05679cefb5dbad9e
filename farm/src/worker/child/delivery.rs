//! The delivery pipe: how an attempt child tells its supervisor that its
//! result is in place, before it exits.
//!
//! A child's exit after its result is written (its threads joined, its
//! memory given back to the kernel: milliseconds for a large compaction),
//! the supervisor's reaping and the end of what the child left are no part
//! of the hoster's wait: `/probe` answers the result as soon as the child
//! has delivered it, while the attempt keeps its running slot until the
//! child is gone ([`super::supervise`]).
//!
//! Per child, the spawner makes a pipe (both ends close-on-exec and
//! non-blocking); the child keeps the write end across exec and finds its
//! number in [`DELIVERED_FD`]. Once `result.bin` is renamed into place the
//! child writes one byte ([`announce`]). The supervisor polls the read end
//! beside the child's exit ([`Delivery`]): one byte is a delivery; the end
//! of the pipe without one (the child ended or closed it) is none, and the
//! attempt ends as before, when the child is reaped.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The environment variable that gives the child the write end's number.
pub const DELIVERED_FD: &str = "DCOMPACT_DELIVERED_FD";

/// The byte a child writes once its result is in place.
const DELIVERED: u8 = b'd';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet.
    Open,
    /// The child wrote its byte.
    Delivered,
    /// The pipe ended without one.
    Closed,
}

/// The supervisor's end of one child's delivery pipe.
#[derive(Debug)]
pub struct Delivery {
    read: OwnedFd,
    state: Cell<State>,
}

/// A new pipe: the supervisor's end, and the end the child keeps.
pub fn pipe() -> io::Result<(Delivery, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    let delivery = Delivery {
        read,
        state: Cell::new(State::Open),
    };
    Ok((delivery, write))
}

impl Delivery {
    /// The descriptor to poll beside the child's exit.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Whether the pipe has said its last: a delivery, or its end without
    /// one. Reads without blocking.
    pub fn settled(&self) -> bool {
        if self.state.get() == State::Open {
            let mut byte = [0u8; 1];
            match nix::unistd::read(&self.read, &mut byte) {
                Ok(1) if byte[0] == DELIVERED => self.state.set(State::Delivered),
                Ok(_) => self.state.set(State::Closed),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => self.state.set(State::Closed),
            }
        }
        self.state.get() != State::Open
    }

    /// Whether the child delivered its result.
    pub fn delivered(&self) -> bool {
        self.settled();
        self.state.get() == State::Delivered
    }
}

/// In the child: tells the supervisor that the result is in place. `false`
/// when the worker gave no pipe (a child started by hand).
pub fn announce() -> io::Result<bool> {
    let Some(fd) = std::env::var(DELIVERED_FD)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2)
    else {
        return Ok(false);
    };
    // The descriptor must be open (the worker kept it open across exec for
    // this); a closed number is an error, never another file's descriptor
    // taken over below.
    nix::fcntl::fcntl(
        // SAFETY: borrowed for this call only; fcntl(F_GETFD) on a closed
        // number fails with EBADF and touches nothing.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )?;
    // SAFETY: the descriptor is open, was created by the worker for this
    // child alone, and nothing else in the child uses it: it is owned
    // (and closed) here.
    let write = unsafe { OwnedFd::from_raw_fd(fd) };
    nix::unistd::write(&write, &[DELIVERED])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_is_a_delivery_and_an_end_without_one_is_none() {
        let (delivery, write) = pipe().unwrap();
        assert!(!delivery.settled(), "nothing written yet");
        nix::unistd::write(&write, &[DELIVERED]).unwrap();
        assert!(delivery.settled());
        assert!(delivery.delivered());
        drop(write);
        assert!(
            delivery.delivered(),
            "the end after the byte changes nothing"
        );

        let (delivery, write) = pipe().unwrap();
        drop(write);
        assert!(delivery.settled());
        assert!(!delivery.delivered());
    }
}
