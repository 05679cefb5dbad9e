//! What one connection is doing, and until when it may go on doing it.
//!
//! A connection is in one of three phases:
//!
//! - **head**: from accept, or from the first byte after an idle wait,
//!   until a request's head is complete (`HTTP_HEADER_TIMEOUT`);
//! - **busy**: a request is with its handler or its answer is being
//!   written; the body has its own deadline ([`super::timed_body`]);
//! - **idle**: a kept-alive connection after an answer, until the next
//!   request's first byte (`HTTP_IDLE_TIMEOUT`).
//!
//! In any phase a write that makes no progress (a client that stopped
//! reading its answer) may last `HTTP_BODY_TIMEOUT`. [`Timeline`] is the
//! logic, with the time given; [`ConnClock`] shares it between the socket,
//! the requests and the connection's watchdog.

use super::limits::HttpLimits;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why the worker closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A request head was not complete within `HTTP_HEADER_TIMEOUT`.
    HeaderTimeout,
    /// No request came within `HTTP_IDLE_TIMEOUT`.
    IdleTimeout,
    /// A write made no progress within `HTTP_BODY_TIMEOUT`.
    WriteTimeout,
}

impl Expiry {
    pub fn name(self) -> &'static str {
        match self {
            Expiry::HeaderTimeout => "header_timeout",
            Expiry::IdleTimeout => "idle_timeout",
            Expiry::WriteTimeout => "write_timeout",
        }
    }

    pub const ALL: [Expiry; 3] = [
        Expiry::HeaderTimeout,
        Expiry::IdleTimeout,
        Expiry::WriteTimeout,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head { since: Instant },
    Idle { since: Instant },
    Busy { requests: usize },
}

/// A connection's phase and write state.
#[derive(Debug)]
pub struct Timeline {
    phase: Phase,
    write_blocked_since: Option<Instant>,
}

impl Timeline {
    /// A connection accepted at `accepted`: waiting for a head.
    pub fn new(accepted: Instant) -> Self {
        Timeline {
            phase: Phase::Head { since: accepted },
            write_blocked_since: None,
        }
    }

    /// Bytes arrived. Returns whether the deadline moved.
    pub fn read(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Idle { .. } => {
                self.phase = Phase::Head { since: now };
                true
            }
            _ => false,
        }
    }

    /// A request's head is complete and its handler called.
    pub fn request_started(&mut self) {
        self.phase = match self.phase {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            _ => Phase::Busy { requests: 1 },
        };
    }

    /// A request's answer was written, or abandoned. Returns whether the
    /// deadline moved.
    pub fn request_ended(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Busy { requests } if requests > 1 => {
                self.phase = Phase::Busy {
                    requests: requests - 1,
                };
                false
            }
            Phase::Busy { .. } => {
                self.phase = Phase::Idle { since: now };
                true
            }
            _ => false,
        }
    }

    /// A write could not go on. Returns whether the deadline moved.
    pub fn write_blocked(&mut self, now: Instant) -> bool {
        if self.write_blocked_since.is_some() {
            return false;
        }
        self.write_blocked_since = Some(now);
        true
    }

    /// A write went through.
    pub fn write_progressed(&mut self) {
        self.write_blocked_since = None;
    }

    /// When the connection is to be closed unless something changes, and
    /// why; `None` while a request is busy and writes flow.
    pub fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Expiry)> {
        let phase = match self.phase {
            Phase::Head { since } => Some((since + limits.header_timeout, Expiry::HeaderTimeout)),
            Phase::Idle { since } => Some((since + limits.idle_timeout, Expiry::IdleTimeout)),
            Phase::Busy { .. } => None,
        };
        let write = self
            .write_blocked_since
            .map(|since| (since + limits.body_timeout, Expiry::WriteTimeout));
        match (phase, write) {
            (Some(p), Some(w)) => Some(if w.0 < p.0 { w } else { p }),
            (p, w) => p.or(w),
        }
    }

    /// Why the connection is to be closed at `now`, if it is.
    pub fn expired(&self, now: Instant, limits: &HttpLimits) -> Option<Expiry> {
        self.deadline(limits)
            .filter(|(at, _)| *at <= now)
            .map(|(_, why)| why)
    }
}

/// A [`Timeline`] shared by the socket, the requests and the watchdog,
/// which is woken whenever the deadline may have moved earlier.
#[derive(Debug)]
pub struct ConnClock {
    timeline: Mutex<Timeline>,
    moved: Notify,
}

impl ConnClock {
    pub fn new(accepted: Instant) -> Self {
        ConnClock {
            timeline: Mutex::new(Timeline::new(accepted)),
            moved: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Timeline> {
        // The timeline is a few plain fields: a panic elsewhere cannot
        // leave it inconsistent.
        self.timeline.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tell(&self, moved: bool) {
        if moved {
            // `notify_one` keeps the wake-up when the watchdog is not
            // waiting yet.
            self.moved.notify_one();
        }
    }

    pub fn read(&self) {
        let moved = self.lock().read(Instant::now());
        self.tell(moved);
    }

    pub fn request_started(&self) {
        self.lock().request_started();
    }

    pub fn request_ended(&self) {
        let moved = self.lock().request_ended(Instant::now());
        self.tell(moved);
    }

    pub fn write_blocked(&self) {
        let moved = self.lock().write_blocked(Instant::now());
        self.tell(moved);
    }

    pub fn write_progressed(&self) {
        self.lock().write_progressed();
    }

    pub fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, Expiry)> {
        self.lock().deadline(limits)
    }

    pub fn expired(&self, limits: &HttpLimits) -> Option<Expiry> {
        self.lock().expired(Instant::now(), limits)
    }

    /// Resolves when the deadline may have moved earlier.
    pub async fn moved(&self) {
        self.moved.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_connections: 8,
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_head_must_be_complete_in_time_from_accept() {
        let (l, t0) = (limits(), Instant::now());
        let mut t = Timeline::new(t0);
        // Bytes of the head do not move its deadline: a slowloris client
        // trickling a header line every second is closed all the same.
        assert!(!t.read(t0 + s(5)));
        assert_eq!(t.deadline(&l), Some((t0 + s(10), Expiry::HeaderTimeout)));
        assert_eq!(t.expired(t0 + s(9), &l), None);
        assert_eq!(t.expired(t0 + s(10), &l), Some(Expiry::HeaderTimeout));
    }

    #[test]
    fn busy_has_no_deadline_and_idle_starts_at_the_answers_end() {
        let (l, t0) = (limits(), Instant::now());
        let mut t = Timeline::new(t0);
        t.request_started();
        assert_eq!(t.deadline(&l), None);
        assert_eq!(t.expired(t0 + s(1000), &l), None);
        assert!(t.request_ended(t0 + s(100)));
        assert_eq!(t.deadline(&l), Some((t0 + s(130), Expiry::IdleTimeout)));
        // The next request's first byte starts its head's time.
        assert!(t.read(t0 + s(120)));
        assert_eq!(t.deadline(&l), Some((t0 + s(130), Expiry::HeaderTimeout)));
        assert_eq!(t.expired(t0 + s(129), &l), None);
        assert_eq!(t.expired(t0 + s(130), &l), Some(Expiry::HeaderTimeout));
    }

    #[test]
    fn pipelined_requests_keep_the_connection_busy_until_the_last_ends() {
        let (l, t0) = (limits(), Instant::now());
        let mut t = Timeline::new(t0);
        t.request_started();
        t.request_started();
        assert!(!t.request_ended(t0 + s(1)));
        assert_eq!(t.deadline(&l), None);
        assert!(t.request_ended(t0 + s(2)));
        assert_eq!(t.deadline(&l), Some((t0 + s(32), Expiry::IdleTimeout)));
        // An end without a start changes nothing.
        assert!(!Timeline::new(t0).request_ended(t0));
    }

    #[test]
    fn a_stalled_write_ends_even_a_busy_connection() {
        let (l, t0) = (limits(), Instant::now());
        let mut t = Timeline::new(t0);
        t.request_started();
        assert!(t.write_blocked(t0 + s(1)));
        assert!(!t.write_blocked(t0 + s(2)), "the first block counts");
        assert_eq!(t.deadline(&l), Some((t0 + s(61), Expiry::WriteTimeout)));
        t.write_progressed();
        assert_eq!(t.deadline(&l), None);
        // Idle with a stalled write: whichever comes first.
        assert!(t.request_ended(t0 + s(3)));
        assert!(t.write_blocked(t0 + s(4)));
        assert_eq!(t.deadline(&l), Some((t0 + s(33), Expiry::IdleTimeout)));
        let short_body = HttpLimits {
            body_timeout: s(5),
            ..l
        };
        assert_eq!(
            t.deadline(&short_body),
            Some((t0 + s(9), Expiry::WriteTimeout))
        );
    }

    #[tokio::test]
    async fn the_watchdog_is_woken_when_the_deadline_moves_earlier() {
        let clock = ConnClock::new(Instant::now());
        clock.request_started();
        // Told before anyone waits: the wake-up is kept.
        clock.request_ended();
        tokio::time::timeout(Duration::from_secs(5), clock.moved())
            .await
            .expect("woken");
        assert_eq!(
            clock.deadline(&limits()).map(|(_, why)| why),
            Some(Expiry::IdleTimeout)
        );
    }
}
