//! Sending one file descriptor with a message over a Unix stream socket
//! (`SCM_RIGHTS`), and receiving it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Room for the control message of one descriptor.
const CMSG_SPACE: usize = 64;

/// Sends all of `data` with `fd` attached to its first byte.
pub fn send_with_fd(sock: &UnixStream, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cmsg_buf = [0u64; CMSG_SPACE / 8];
    // SAFETY: msghdr is plain data; every pointer it holds (iov, control
    // buffer) outlives the sendmsg call, and the CMSG macros stay inside
    // the control buffer, which is large enough for one descriptor.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let sent = sent as usize;
    if sent < data.len() {
        // The descriptor went with the first bytes; the rest is plain data.
        io::Write::write_all(&mut &*sock, &data[sent..])?;
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes and the descriptor attached to them,
/// if any. `Ok((0, None))` at the end of the stream.
pub fn recv_with_fd(sock: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg_buf = [0u64; CMSG_SPACE / 8];
    // SAFETY: as in send_with_fd; recvmsg writes at most iov_len bytes and
    // msg_controllen bytes of control data. MSG_CMSG_CLOEXEC keeps received
    // descriptors out of any child this process starts.
    let (n, msg) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_SPACE as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        (n, msg)
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fd = None;
    // SAFETY: walks the control messages recvmsg wrote into cmsg_buf; a
    // SCM_RIGHTS message carries descriptors this process now owns.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                    let owned = OwnedFd::from_raw_fd(raw);
                    // Keep the first; close any extra a peer sent.
                    if fd.is_none() {
                        fd = Some(owned);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::map::SharedMap;
    use std::os::fd::AsFd;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_memfd_crosses_the_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let (fd, map) = SharedMap::create("t", 4096).unwrap();
        map.word(0).store(42, Ordering::Release);
        send_with_fd(&a, b"hello", fd.as_fd()).unwrap();
        let mut buf = [0u8; 16];
        let (n, got) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let other = SharedMap::receive(&got.unwrap(), 4096).unwrap();
        assert_eq!(other.word(0).load(Ordering::Acquire), 42);
        drop(a);
        assert_eq!(recv_with_fd(&b, &mut buf).unwrap().0, 0);
    }
}
