//! The worker's HTTP listener: connections accepted under a limit, each
//! watched so that no client holds one longer than its limits allow, and a
//! bounded drain at shutdown.
//!
//! A slow or hostile client can hold a connection open without ever
//! finishing a request (slowloris), trickle a body, or stop reading an
//! answer. Each costs the worker a socket and a task, and with no bound
//! enough of them keep everyone else out. The listener bounds each phase of
//! a connection's life ([`limits::HttpLimits`], from the settings below)
//! and the number of connections at once:
//!
//! | setting | default | bounds |
//! | --- | --- | --- |
//! | `HTTP_HEADER_TIMEOUT` | `10s` | from accept (or a request's first byte on a kept-alive connection) until its head is complete |
//! | `HTTP_BODY_TIMEOUT` | `60s` | from a request's head until its body has arrived; also how long an answer may stall unread |
//! | `HTTP_IDLE_TIMEOUT` | `30s` | a kept-alive connection waiting for its next request |
//! | `MAX_CONNECTIONS` | 1024 | connections open at once; more wait in the kernel's backlog ([`accept::LISTEN_BACKLOG`]) until one closes |
//!
//! - [`limits`]: the settings.
//! - [`accept`]: the accept loop, the connection limit and the drain.
//! - [`connection`]: one connection under its watchdog.
//! - [`clock`]: what a connection is doing and until when it may.
//! - [`watched_io`]: the socket, telling the clock when bytes move.
//! - [`timed_body`]: a request body that fails once its time is up.
//!
//! Metrics: see [`crate::worker::metrics::http`].

pub mod accept;
pub mod clock;
pub mod connection;
pub mod limits;
pub mod timed_body;
pub mod watched_io;
