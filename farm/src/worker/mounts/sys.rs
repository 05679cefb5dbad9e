//! The system calls the mount code needs, through `nix`'s safe API.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::mount::{umount2, MntFlags};
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// `umount2(target, flags)`.
pub fn umount(target: &Path, lazy: bool) -> io::Result<()> {
    let flags = if lazy {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    umount2(target, flags).map_err(io::Error::from)
}

/// Makes reads from `fd` return `WouldBlock` instead of waiting: a helper
/// may leave a daemon holding its stderr open.
pub fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Sends SIGKILL to the process group `pgid` (a command started with
/// `process_group(0)`: its group id is its pid).
pub fn kill_group(pgid: u32) -> io::Result<()> {
    let pgid = i32::try_from(pgid).map_err(io::Error::other)?;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(io::Error::from)
}
