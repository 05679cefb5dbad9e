//! Every endpoint of the worker's HTTP API: its method and path.
//!
//! The worker's router is built from [`Endpoint::ALL`] (one handler per
//! variant, chosen by an exhaustive match), the hoster client takes its
//! paths from here, and a test checks that `docs/PROTOCOL.md` describes
//! exactly these endpoints.

use axum::http::Method;

/// One endpoint of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /dcompact`: submit an attempt (the body is a
    /// [`Job`](super::job::Job)).
    Dcompact,
    /// `POST /probe`: the state of an attempt (the body is a
    /// [`ProbeRequest`](super::probe::ProbeRequest): an `AttemptKey` and
    /// an optional `wait_ms`).
    Probe,
    /// `POST /shutdown`: cancel an attempt (the body is an `AttemptKey`).
    Shutdown,
    /// `POST /drain`: leave the farm: refuse new jobs, finish and hand over
    /// the accepted ones, exit (protocol 3).
    Drain,
    /// `GET /health`: whether the worker takes jobs.
    Health,
    /// `GET /stat`: the web view; `?html=0` for JSON.
    Stat,
    /// `GET /list`: the attempt list of the web view; `?html=0` for JSON.
    List,
    /// `GET /metrics`: Prometheus text format.
    Metrics,
    /// `GET /attempts/<attempt name>/<file>`: an attempt's retained files.
    AttemptFile,
}

impl Endpoint {
    /// Every endpoint, in the order `docs/PROTOCOL.md` describes them.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::Dcompact,
        Endpoint::Probe,
        Endpoint::Shutdown,
        Endpoint::Drain,
        Endpoint::Health,
        Endpoint::Stat,
        Endpoint::List,
        Endpoint::Metrics,
        Endpoint::AttemptFile,
    ];

    pub fn method(self) -> Method {
        match self {
            Endpoint::Dcompact | Endpoint::Probe | Endpoint::Shutdown | Endpoint::Drain => {
                Method::POST
            }
            Endpoint::Health
            | Endpoint::Stat
            | Endpoint::List
            | Endpoint::Metrics
            | Endpoint::AttemptFile => Method::GET,
        }
    }

    /// The path in the router's syntax (`{*path}` matches the rest).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Dcompact => "/dcompact",
            Endpoint::Probe => "/probe",
            Endpoint::Shutdown => "/shutdown",
            Endpoint::Drain => "/drain",
            Endpoint::Health => "/health",
            Endpoint::Stat => "/stat",
            Endpoint::List => "/list",
            Endpoint::Metrics => "/metrics",
            Endpoint::AttemptFile => "/attempts/{*path}",
        }
    }

    /// The fixed part of the path: all of it, or what precedes the first
    /// `{`.
    pub fn prefix(self) -> &'static str {
        let path = self.path();
        path.split('{').next().unwrap_or(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_endpoint_is_listed_once_with_its_own_path() {
        let paths: HashSet<&str> = Endpoint::ALL.iter().map(|e| e.path()).collect();
        assert_eq!(paths.len(), Endpoint::ALL.len());
        assert_eq!(Endpoint::AttemptFile.prefix(), "/attempts/");
        assert_eq!(Endpoint::Probe.prefix(), "/probe");
    }
}
