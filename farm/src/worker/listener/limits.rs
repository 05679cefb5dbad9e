//! The limits of the worker's HTTP connections, from its configuration.

use std::time::Duration;

/// How long each phase of a connection may last, and how many connections
/// may be open at once. See [`crate::worker::listener`] for the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `HTTP_HEADER_TIMEOUT`: a request head must be complete this long
    /// after the connection was accepted, or after the first byte of a
    /// request on a kept-alive connection. A hoster's head is a few
    /// hundred bytes and arrives in a millisecond; ten seconds leave room
    /// for a paused client and end a slowloris connection soon.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT`: a request body must have arrived this long
    /// after its head; an answer whose write makes no progress for this
    /// long (a client that stopped reading) ends the connection too. Sixty
    /// seconds carry the largest body (`MAX_REQUEST_BYTES`, 64 MiB) at
    /// about 1 MiB/s; a job's body is a few kilobytes.
    pub body_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT`: a kept-alive connection with no request for
    /// this long is closed. Hosters probe running attempts far more often;
    /// between jobs a new connection costs them little.
    pub idle_timeout: Duration,
    /// `MAX_CONNECTIONS`: connections open at once. Beyond it the worker
    /// stops accepting; new connections wait in the kernel's backlog and
    /// are served as others close.
    pub max_connections: usize,
}

impl HttpLimits {
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

    /// `MAX_CONNECTIONS`' default: 1024, or half the open-file limit
    /// (`RLIMIT_NOFILE`, soft) when that is lower, so that connections
    /// never take the descriptors attempts need (at least 16).
    pub fn default_max_connections(open_files: Option<u64>) -> usize {
        let half = open_files.map_or(usize::MAX, |n| usize::try_from(n / 2).unwrap_or(usize::MAX));
        Self::DEFAULT_MAX_CONNECTIONS.min(half).max(16)
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_half_the_open_files() {
        assert_eq!(HttpLimits::default_max_connections(None), 1024);
        assert_eq!(HttpLimits::default_max_connections(Some(1 << 20)), 1024);
        assert_eq!(HttpLimits::default_max_connections(Some(1024)), 512);
        assert_eq!(HttpLimits::default_max_connections(Some(8)), 16);
    }
}
