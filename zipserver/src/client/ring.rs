//! A child's ring at the zipserver (the design is in [`crate::shm`]).
//!
//! [`ClientRing::open`] makes the `memfd`, hands it over and maps the
//! zipserver's control page (`crate::shm::control`); a watcher thread then
//! waits on the connection and, when it ends (the zipserver died or dropped
//! the ring), marks every slot `DEAD` and wakes every waiting thread, which
//! then compress their blocks in-process. [`ClientRing::compress`] claims a
//! free slot, writes the block into it for the lane of the CPU it runs on,
//! rings that lane's doorbell only when none of its compression threads is
//! awake, and waits: polling for `client_spin`, then asleep on the slot's
//! word until the zipserver marks it done or `client_timeout` passes.

use super::counts::{bump, Atomics};
use super::error::ClientError;
use crate::codec::{Compressed, ZipParams};
use crate::frame;
use crate::shm::control::{self, Control, CONTROL_LEN};
use crate::shm::layout::{reply, state, Ring, RingLayout};
use crate::shm::map::SharedMap;
use crate::shm::{fdpass, futex};
use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a wait ends without an answer.
#[derive(Debug)]
pub enum Declined {
    /// Every slot is in use (or the block does not fit one): send it on the
    /// socket instead.
    NoSlot,
    /// The zipserver failed this block.
    Failed(ClientError),
}

pub struct ClientRing {
    ring: Ring,
    control: Control,
    conn: UnixStream,
    /// The watcher saw the connection end.
    dead: AtomicBool,
    /// Where the next claim starts looking.
    next: AtomicU32,
}

/// What a thread waits with.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    pub spin: Duration,
    pub timeout: Duration,
}

impl ClientRing {
    /// Hands a new ring of `layout` to the zipserver on `socket`, as the
    /// client `name`.
    pub fn open(
        socket: &Path,
        name: &str,
        layout: RingLayout,
        timeout: Duration,
        counts: &Atomics,
    ) -> Result<Arc<ClientRing>, ClientError> {
        let conn = UnixStream::connect(socket)?;
        bump(&counts.connects, 1);
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        let (fd, map) = SharedMap::create("zipserver-ring", layout.size())?;
        let ring = Ring::new(map, layout)?;
        ring.write_header();
        fdpass::send_with_fd(&conn, &frame::ring_hello(&layout, name), fd.as_fd())?;
        drop(fd);
        let mut head = [0u8; 512];
        let (n, control_fd) = fdpass::recv_with_fd(&conn, &mut head)?;
        let body = frame::read_frame(&mut io::Cursor::new(&head[..n]).chain(&conn))?
            .ok_or(ClientError::Gone)?;
        frame::parse_ring_answer(&body)?.map_err(ClientError::RingRefused)?;
        let control_fd = control_fd.ok_or(ClientError::Malformed("no control page came"))?;
        let control = Control::new(SharedMap::receive(&control_fd, CONTROL_LEN)?)?;
        conn.set_read_timeout(None)?;
        let client = Arc::new(ClientRing {
            ring,
            control,
            conn,
            dead: AtomicBool::new(false),
            next: AtomicU32::new(0),
        });
        bump(&counts.rings, 1);
        std::thread::Builder::new()
            .name("zip-watch".into())
            .spawn({
                let ring = client.clone();
                move || ring.watch()
            })?;
        Ok(client)
    }

    pub fn layout(&self) -> RingLayout {
        self.ring.layout()
    }

    /// Whether the zipserver is gone (the ring is of no more use).
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Ends the ring: the watcher sees the connection end and releases
    /// every waiting thread.
    pub fn close(&self) {
        let _ = self.conn.shutdown(Shutdown::Both);
    }

    /// Waits until the connection ends, then releases every waiter.
    fn watch(&self) {
        let mut buf = [0u8; 64];
        let mut conn = &self.conn;
        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        self.dead.store(true, Ordering::Release);
        for slot in 0..self.ring.layout().slots {
            let word = self.ring.state(slot);
            word.fetch_or(state::DEAD, Ordering::AcqRel);
            futex::wake(word, u32::MAX);
        }
    }

    /// Compresses `input` into `out` at the zipserver.
    pub fn compress(
        &self,
        params: &ZipParams,
        input: &[u8],
        out: &mut [u8],
        wait: Waiting,
        counts: &Atomics,
    ) -> Result<Compressed, Declined> {
        let layout = self.ring.layout();
        if input.len() > layout.slot_in as usize || out.len() > layout.slot_out as usize {
            return Err(Declined::NoSlot);
        }
        let slot = self.claim().ok_or(Declined::NoSlot)?;
        let r = &self.ring;
        r.in_len(slot).store(input.len() as u32, Ordering::Relaxed);
        r.capacity(slot).store(out.len() as u32, Ordering::Relaxed);
        r.write_params(slot, params);
        let lane = self.control.lane_for(control::current_cpu());
        r.lane(slot).store(lane, Ordering::Relaxed);
        // SAFETY: the slot is CLAIMED by this thread, so the zipserver does
        // not read its input area until SUBMITTED; the area holds
        // `input.len()` bytes (checked above) and is not `input`.
        unsafe {
            std::ptr::copy_nonoverlapping(input.as_ptr(), r.input(slot, input.len()), input.len())
        };
        r.state(slot).store(state::SUBMITTED, Ordering::SeqCst);
        self.ring_doorbell(lane, counts);
        let deadline = Instant::now() + wait.timeout;
        match self.wait(slot, wait.spin, deadline, counts) {
            Ok(()) => self.read_answer(slot, out).map_err(Declined::Failed),
            Err(e) => Err(Declined::Failed(e)),
        }
    }

    fn claim(&self) -> Option<u32> {
        if self.is_dead() {
            return None;
        }
        let n = self.ring.layout().slots;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|k| (start + k) % n).find(|&slot| {
            self.ring
                .state(slot)
                .compare_exchange(
                    state::FREE,
                    state::CLAIMED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        })
    }

    /// Wakes a compression thread of `lane` when none is awake to see the
    /// block.
    fn ring_doorbell(&self, lane: u32, counts: &Atomics) {
        let ctl = &self.control;
        if ctl.awake(lane).load(Ordering::SeqCst) == 0
            && ctl.sleepers(lane).load(Ordering::SeqCst) > 0
        {
            ctl.doorbell(lane).fetch_add(1, Ordering::SeqCst);
            futex::wake(ctl.doorbell(lane), 1);
            bump(&counts.doorbells, 1);
        }
    }

    /// Waits until the slot is DONE; on a timeout or the zipserver's end,
    /// gives the slot up.
    fn wait(
        &self,
        slot: u32,
        spin: Duration,
        deadline: Instant,
        counts: &Atomics,
    ) -> Result<(), ClientError> {
        let word = self.ring.state(slot);
        let spin_until = Instant::now() + spin;
        loop {
            let s = word.load(Ordering::Acquire);
            if s & state::MASK == state::DONE {
                return Ok(());
            }
            let now = Instant::now();
            if s & state::DEAD != 0 || now >= deadline {
                return self.give_up(slot, s & state::DEAD != 0);
            }
            if now < spin_until {
                std::hint::spin_loop();
                continue;
            }
            let sleeping = s | state::WAITING;
            if s != sleeping
                && word
                    .compare_exchange(s, sleeping, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            bump(&counts.sleeps, 1);
            futex::wait(word, sleeping, deadline - now);
        }
    }

    /// Takes the slot back from a zipserver that did not answer in time or
    /// is gone. A block it answered meanwhile is still used.
    fn give_up(&self, slot: u32, dead: bool) -> Result<(), ClientError> {
        let word = self.ring.state(slot);
        let mut s = word.load(Ordering::Acquire);
        loop {
            let next = match s & state::MASK {
                state::DONE => return Ok(()),
                // Not taken yet: the slot is simply free again (or, with
                // the zipserver gone, left alone with the ring).
                state::SUBMITTED if !dead => state::FREE,
                // Being compressed: the zipserver frees it when done.
                _ if !dead => state::ABANDONED,
                _ => return Err(ClientError::Gone),
            };
            match word.compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Err(ClientError::TimedOut),
                Err(now) => s = now,
            }
        }
    }

    /// Copies the answer of a DONE slot into `out` and frees the slot.
    fn read_answer(&self, slot: u32, out: &mut [u8]) -> Result<Compressed, ClientError> {
        let r = &self.ring;
        let word = r.reply(slot).load(Ordering::Relaxed);
        let size = r.reply_size(slot).load(Ordering::Relaxed) as usize;
        let (status, kind) = (word & 0xff, (word >> 8) as u8);
        let answer = match status {
            reply::OK if size > out.len() => Err(ClientError::Malformed("answer beyond capacity")),
            reply::OK => {
                let c = Compressed { size, kind };
                // SAFETY: the slot is DONE: the zipserver no longer writes
                // it; its output area holds `out.len()` >= `c.bytes()` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        r.output(slot, c.bytes()),
                        out.as_mut_ptr(),
                        c.bytes(),
                    )
                };
                Ok(c)
            }
            reply::OVER_BUDGET => Err(ClientError::Refused("over the memory budget".into())),
            reply::NO_COMPRESSION => Err(ClientError::Refused("no compression".into())),
            reply::BAD_REQUEST => Err(ClientError::Refused("bad request".into())),
            _ => Err(ClientError::Refused("compression failed".into())),
        };
        r.state(slot).store(state::FREE, Ordering::Release);
        answer
    }
}

impl Drop for ClientRing {
    fn drop(&mut self) {
        self.close();
    }
}
