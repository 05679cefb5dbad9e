//! The compression threads: `num_threads` of them, each pinned to a CPU
//! (its lane, `crate::shm::control`), serve every ring.
//!
//! An awake thread holds a compression permit, takes the submitted blocks
//! of its lane from any ring, compresses each in place (input and output
//! areas of the slot) and marks it done, waking the child's thread only if
//! it sleeps. When it finds nothing it polls for `server_spin`, then gives
//! its permit back and sleeps on its lane's doorbell. A child rings a
//! lane's doorbell only when none of its threads is awake, so while blocks
//! keep coming one wake-up serves many of them, from every child. An awake
//! thread that sees a backlog of at least [`WAKE_ANOTHER_AT`] blocks per
//! awake thread of its lane wakes one more. A thread woken by the time
//! bound of its sleep ([`IDLE_WAIT`]) takes blocks of any lane, so no block
//! waits for long on a lane whose threads do not come.
//!
//! No lost wake-up: a thread about to sleep counts itself a sleeper and no
//! longer awake, reads the doorbell, then looks at every ring once more;
//! a child stores `SUBMITTED`, then reads the lane's awake count (all
//! sequentially consistent). Either the thread's last look sees the block,
//! or the child sees nobody awake and rings, changing the doorbell the
//! thread would sleep on.

use super::compressors::{Compressors, Refusal};
use super::lanes;
use super::permits::Taker;
use super::rings::{RingsView, ServerRing};
use super::service::Service;
use crate::shm::futex;
use crate::shm::layout::{reply, state};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a compression thread sleeps without looking.
pub const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Blocks waiting per awake thread before an awake thread wakes another.
pub const WAKE_ANOTHER_AT: u32 = 2;

/// Starts the compression threads.
pub fn start(service: &Arc<Service>) -> io::Result<Vec<JoinHandle<()>>> {
    (0..service.shape.num_threads)
        .map(|i| {
            let service = service.clone();
            let lane = service.thread_lanes[i];
            std::thread::Builder::new()
                .name(format!("zip-ring-{i}"))
                .spawn(move || {
                    if let Some(cpu) = service.lane_cpus[lane as usize] {
                        if let Err(e) = lanes::pin_current_thread(cpu) {
                            tracing::warn!(cpu, error = %e, "could not pin a compression thread");
                        }
                    }
                    Worker::new(&service, lane).run()
                })
        })
        .collect()
}

struct Found {
    ring: Arc<ServerRing>,
    slot: u32,
    /// Other submitted blocks seen while looking.
    others: u32,
}

/// Which blocks a look takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Those of the thread's lane (and of no valid lane).
    Lane,
    /// Any.
    Any,
}

struct Worker<'a> {
    service: &'a Service,
    lane: u32,
    /// The next look takes blocks of any lane.
    take: Take,
    view: RingsView,
    compressors: Compressors,
    /// Where the next look starts, so no ring is always served last.
    cursor: usize,
}

impl<'a> Worker<'a> {
    fn new(service: &'a Service, lane: u32) -> Self {
        Worker {
            service,
            lane,
            take: Take::Lane,
            view: RingsView::default(),
            compressors: Compressors::default(),
            cursor: 0,
        }
    }

    fn run(mut self) {
        let service = self.service;
        let ctl = &service.control;
        ctl.awake(self.lane).fetch_add(1, Ordering::SeqCst);
        service.permits.take(Taker::Ring);
        while !service.stopping() {
            service.rings.refresh(&mut self.view);
            if let Some(found) = self.take_one() {
                self.maybe_wake_another(found.others);
                self.serve(&found.ring, found.slot);
                if service.permits.socket_waiting() {
                    service.permits.give_back();
                    service.permits.take(Taker::Ring);
                }
                continue;
            }
            if self.take == Take::Any {
                self.take = Take::Lane;
                continue;
            }
            if !self.spin() {
                self.sleep();
            }
        }
        ctl.awake(self.lane).fetch_sub(1, Ordering::SeqCst);
        service.permits.give_back();
    }

    /// Polls for `server_spin`; whether a block came.
    fn spin(&mut self) -> bool {
        let spin = self.service.shape.server_spin;
        if spin.is_zero() {
            return false;
        }
        let until = Instant::now() + spin;
        while Instant::now() < until {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if self.any_submitted() {
                return true;
            }
        }
        false
    }

    fn sleep(&mut self) {
        let service = self.service;
        let ctl = &service.control;
        let lane = self.lane;
        service.permits.give_back();
        ctl.sleepers(lane).fetch_add(1, Ordering::SeqCst);
        ctl.awake(lane).fetch_sub(1, Ordering::SeqCst);
        let seq = ctl.doorbell(lane).load(Ordering::SeqCst);
        service.rings.refresh(&mut self.view);
        if !self.any_submitted() && !service.stopping() {
            futex::wait(ctl.doorbell(lane), seq, IDLE_WAIT);
            if ctl.doorbell(lane).load(Ordering::Relaxed) != seq {
                service.stats.wakeups.inc();
            } else {
                // The time bound, not a child: look at every lane once.
                self.take = Take::Any;
            }
        }
        ctl.awake(lane).fetch_add(1, Ordering::SeqCst);
        ctl.sleepers(lane).fetch_sub(1, Ordering::SeqCst);
        service.permits.take(Taker::Ring);
    }

    /// Whether `slot` is for this thread under the current look.
    fn mine(&self, ring: &ServerRing, slot: u32) -> bool {
        if self.take == Take::Any {
            return true;
        }
        let lane = ring.ring.lane(slot).load(Ordering::Relaxed);
        lane == self.lane || lane as usize >= self.service.lane_cpus.len()
    }

    fn any_submitted(&self) -> bool {
        self.view.rings.iter().any(|r| {
            (0..r.ring.layout().slots).any(|s| {
                r.ring.state(s).load(Ordering::SeqCst) & state::MASK == state::SUBMITTED
                    && self.mine(r, s)
            })
        })
    }

    /// Takes one submitted block, looking at every ring from the cursor on.
    fn take_one(&mut self) -> Option<Found> {
        let n = self.view.rings.len();
        let mut found: Option<Found> = None;
        let mut others = 0;
        for k in 0..n {
            let ring = &self.view.rings[(self.cursor + k) % n];
            for slot in 0..ring.ring.layout().slots {
                let word = ring.ring.state(slot);
                let s = word.load(Ordering::Acquire);
                if s & state::MASK != state::SUBMITTED || !self.mine(ring, slot) {
                    continue;
                }
                if found.is_some() {
                    others += 1;
                    continue;
                }
                let taken = state::TAKEN | (s & state::WAITING);
                if word
                    .compare_exchange(s, taken, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    found = Some(Found {
                        ring: ring.clone(),
                        slot,
                        others: 0,
                    });
                    self.cursor = (self.cursor + k + 1) % n.max(1);
                }
            }
        }
        found.map(|f| Found { others, ..f })
    }

    fn maybe_wake_another(&self, others: u32) {
        let (ctl, lane) = (&self.service.control, self.lane);
        let awake = ctl.awake(lane).load(Ordering::SeqCst).max(1);
        if others >= WAKE_ANOTHER_AT * awake && ctl.sleepers(lane).load(Ordering::SeqCst) > 0 {
            ctl.doorbell(lane).fetch_add(1, Ordering::SeqCst);
            futex::wake(ctl.doorbell(lane), 1);
        }
    }

    /// Compresses the block in `slot` and hands the answer back.
    fn serve(&mut self, ring: &ServerRing, slot: u32) {
        let r = &ring.ring;
        let layout = r.layout();
        let in_len = r.in_len(slot).load(Ordering::Relaxed) as usize;
        let capacity = r.capacity(slot).load(Ordering::Relaxed) as usize;
        let (status, kind, size) =
            if in_len > layout.slot_in as usize || capacity > layout.slot_out as usize {
                (reply::BAD_REQUEST, 0, 0)
            } else {
                match self.compress(ring, slot, in_len, capacity) {
                    Ok(c) => (reply::OK, c.kind, c.size),
                    Err(Refusal::OverBudget { .. }) => (reply::OVER_BUDGET, 0, 0),
                    Err(Refusal::NoCompression(_)) => (reply::NO_COMPRESSION, 0, 0),
                    Err(Refusal::Failed(e)) => {
                        tracing::debug!(error = %e, "ring block failed");
                        (reply::FAILED, 0, 0)
                    }
                }
            };
        r.reply(slot)
            .store(status | u32::from(kind) << 8, Ordering::Relaxed);
        r.reply_size(slot).store(size as u32, Ordering::Relaxed);
        // Counted before the answer is published, so a client that sees
        // its answer also sees it counted.
        let stats = &self.service.stats;
        if status == reply::OK {
            let out = if kind == 0 { 0 } else { size };
            ring.client.count(in_len, out);
            stats.ring_requests.inc();
        } else {
            stats.errors.inc();
        }
        if !finish(ring, slot) {
            stats.abandoned.inc();
        }
    }

    fn compress(
        &mut self,
        ring: &ServerRing,
        slot: u32,
        in_len: usize,
        capacity: usize,
    ) -> Result<crate::codec::Compressed, Refusal> {
        let service = self.service;
        let stats = &service.stats;
        let bytes = (in_len + capacity) as u64;
        let len = in_len as i64;
        stats.queue_depth.inc();
        stats.waiting_bytes.add(len);
        let held = service.budget.reserve(bytes);
        stats.queue_depth.dec();
        stats.waiting_bytes.sub(len);
        let held = held.ok_or(Refusal::OverBudget { bytes })?;
        stats.set_budget(service.budget.used());
        stats.working_bytes.add(len);
        let params = ring.ring.read_params(slot);
        let result = self.compressors.get(params).and_then(|c| {
            let (input, out) = (
                ring.ring.input(slot, in_len),
                ring.ring.output(slot, capacity),
            );
            // SAFETY: both areas lie inside the mapped ring (checked by the
            // layout) and do not overlap; the slot is TAKEN by this thread,
            // so a well-behaved child does not touch them until DONE. A
            // misbehaving child can only garble its own block.
            unsafe { c.compress_raw(input, in_len, out, capacity) }.map_err(Refusal::Failed)
        });
        stats.working_bytes.sub(len);
        drop(held);
        stats.set_budget(service.budget.used());
        result
    }
}

/// Marks the block done and wakes its waiting child thread. `false` when
/// the child had given up on it (the slot is then free again).
fn finish(ring: &ServerRing, slot: u32) -> bool {
    let word = ring.ring.state(slot);
    let mut s = word.load(Ordering::Acquire);
    loop {
        let next = match s & state::MASK {
            state::TAKEN => state::DONE | (s & state::DEAD),
            _ => state::FREE,
        };
        match word.compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                if s & state::WAITING != 0 {
                    futex::wake(word, 1);
                }
                return next & state::MASK == state::DONE;
            }
            Err(now) => s = now,
        }
    }
}
