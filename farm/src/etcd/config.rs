//! Where etcd is and how to log in. Secrets are kept out of `Debug`, so a
//! logged configuration never shows them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A password: printed as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How requests spread over several endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointBalance {
    /// Each request starts at the next endpoint.
    RoundRobin,
    /// Requests go to the first endpoint that works, until it fails.
    PickFirst,
}

impl EndpointBalance {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "round_robin" | "RoundRobin" | "kRoundRobin" => Some(EndpointBalance::RoundRobin),
            "pick_first" | "PickFirst" => Some(EndpointBalance::PickFirst),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `http://host:port` or `https://host:port`, at least one.
    pub endpoints: Vec<String>,
    /// Key prefix without a trailing `/`, e.g. `/dcompact`.
    pub root: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// PEM files: the CA that signed etcd's certificate, and this client's
    /// certificate and key (for etcd's `--client-cert-auth`).
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub balance: EndpointBalance,
    /// The worker's registration lease; it is kept alive at a third of this.
    pub lease_ttl: Duration,
    /// How long a `dcompact-res/<attempt>` key lives.
    pub done_ttl: Duration,
    /// One request's timeout.
    pub request_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{field} {value:?}: {why}")]
pub struct EtcdConfigError {
    pub field: &'static str,
    pub value: String,
    pub why: String,
}

impl EtcdConfig {
    /// Parses `url` (`host:port` or `scheme://host:port`, several separated
    /// by `,` or `;`) with the defaults for everything else. Without a
    /// scheme, `https` is assumed when TLS files are given later; call
    /// [`EtcdConfig::finish`] after setting them.
    pub fn new(url: &str, root: &str) -> Result<Self, EtcdConfigError> {
        let bad = |why: &str| EtcdConfigError {
            field: "etcd url",
            value: url.to_owned(),
            why: why.to_owned(),
        };
        let endpoints: Vec<String> = url
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/').to_owned())
            .collect();
        if endpoints.is_empty() {
            return Err(bad("expected host:port or http(s)://host:port"));
        }
        for e in &endpoints {
            let rest = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e);
            if rest.is_empty() || rest.contains(['/', ' ']) || !rest.contains(':') {
                return Err(bad("expected host:port or http(s)://host:port"));
            }
        }
        let root = root.trim_end_matches('/');
        if !root.starts_with('/') || root.contains(char::is_whitespace) {
            return Err(EtcdConfigError {
                field: "etcd root",
                value: root.to_owned(),
                why: "must start with / and contain no spaces".into(),
            });
        }
        Ok(EtcdConfig {
            endpoints,
            root: root.to_owned(),
            username: None,
            password: None,
            ca: None,
            cert: None,
            key: None,
            balance: EndpointBalance::RoundRobin,
            lease_ttl: Duration::from_secs(10),
            done_ttl: Duration::from_secs(60),
            request_timeout: Duration::from_secs(3),
        })
    }

    /// Adds the scheme to bare endpoints and checks that the settings fit
    /// together.
    pub fn finish(mut self) -> Result<Self, EtcdConfigError> {
        let tls = self.ca.is_some() || self.cert.is_some();
        for e in &mut self.endpoints {
            if !e.starts_with("http://") && !e.starts_with("https://") {
                *e = format!("{}://{e}", if tls { "https" } else { "http" });
            }
        }
        let https = self.endpoints.iter().any(|e| e.starts_with("https://"));
        if (https || self.cert.is_some()) && self.ca.is_none() {
            return Err(EtcdConfigError {
                field: "etcd ca",
                value: String::new(),
                why: "TLS (https endpoints or a client certificate) needs the CA file that signed etcd's certificate".into(),
            });
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err(EtcdConfigError {
                field: "etcd cert/key",
                value: String::new(),
                why: "a client certificate needs its key, and a key its certificate".into(),
            });
        }
        for (field, path) in [
            ("etcd ca", &self.ca),
            ("etcd cert", &self.cert),
            ("etcd key", &self.key),
        ] {
            if let Some(p) = path {
                if !p.is_file() {
                    return Err(EtcdConfigError {
                        field,
                        value: p.display().to_string(),
                        why: "not a file".into(),
                    });
                }
            }
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(EtcdConfigError {
                field: "etcd username/password",
                value: String::new(),
                why: "give both or neither".into(),
            });
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err(EtcdConfigError {
                field: "etcd lease ttl",
                value: format!("{:?}", self.lease_ttl),
                why: "must be at least 2s (etcd raises shorter leases anyway)".into(),
            });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_schemes() {
        let c = EtcdConfig::new("127.0.0.1:2379, http://e2:2379/", "/farm/")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(c.endpoints, ["http://127.0.0.1:2379", "http://e2:2379"]);
        let tls = EtcdConfig::new("https://e2:2379", "/farm")
            .unwrap()
            .finish();
        assert!(tls.unwrap_err().to_string().contains("CA"));
        assert_eq!(c.root, "/farm");
        assert!(EtcdConfig::new("", "/x").is_err());
        assert!(EtcdConfig::new("localhost", "/x").is_err());
        assert!(EtcdConfig::new("h:1", "relative").is_err());
    }

    #[test]
    fn password_is_never_printed() {
        let mut c = EtcdConfig::new("h:1", "/r").unwrap();
        c.username = Some("farm".into());
        c.password = Some(Secret::new("hunter2".into()));
        let c = c.finish().unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
        let mut half = EtcdConfig::new("h:1", "/r").unwrap();
        half.username = Some("farm".into());
        assert!(half.finish().is_err());
    }
}
