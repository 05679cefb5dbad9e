//! A blocking client for etcd's v3 JSON gateway.
//!
//! Keys and values travel base64-encoded, 64-bit numbers as JSON strings.
//! With a username, the client authenticates (`/v3/auth/authenticate`) and
//! sends the token on every request, authenticating again when etcd says
//! the token is no longer valid. Requests go to the endpoints in turn (or
//! the first that works, see [`EndpointBalance`]); a failed endpoint passes
//! the request to the next, and so does one answering 5xx.
//!
//! A watch is one long HTTP response of newline-separated JSON messages.
//! Its reads time out after `idle`, so its owner can check whether to stop
//! and resume from the next revision on a new stream; no event is lost.

use super::config::{EndpointBalance, EtcdConfig};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd unreachable at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("etcd answered {status} to {path}: {message}")]
    Status {
        status: u16,
        path: &'static str,
        message: String,
    },
    #[error("etcd answer to {path} is not understood: {message}")]
    Protocol { path: &'static str, message: String },
    #[error("failed to read {what} {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TLS setup: {0}")]
    Tls(String),
}

/// One key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub mod_revision: i64,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    Delete { key: String, mod_revision: i64 },
}

pub struct EtcdClient {
    endpoints: Vec<String>,
    balance: EndpointBalance,
    next: AtomicUsize,
    agent: ureq::Agent,
    /// For watches: reads time out after the idle period.
    watch_agent: ureq::Agent,
    credentials: Option<(String, String)>,
    token: Mutex<Option<String>>,
}

/// The end of the range of keys starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A 64-bit number that the gateway may send as a string or a number.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn key_value(kv: &Value) -> KeyValue {
    KeyValue {
        key: text(&kv["key"]),
        value: text(&kv["value"]),
        mod_revision: int(&kv["mod_revision"]),
    }
}

fn tls_config(config: &EtcdConfig) -> Result<Option<Arc<rustls::ClientConfig>>, EtcdError> {
    // `EtcdConfig::finish` made sure a CA is given whenever TLS is used.
    let Some(ca) = &config.ca else {
        return Ok(None);
    };
    let client = config.cert.as_deref().zip(config.key.as_deref());
    crate::tls::client_config(ca, client)
        .map(Some)
        .map_err(|e| match e {
            crate::tls::TlsError::File { what, path, source } => {
                EtcdError::TlsFile { what, path, source }
            }
            crate::tls::TlsError::Config(why) => EtcdError::Tls(why),
        })
}

impl EtcdClient {
    /// `idle`: how long a watch read waits before its owner gets control.
    pub fn new(config: &EtcdConfig, idle: Duration) -> Result<Self, EtcdError> {
        let tls = tls_config(config)?;
        let build = |read: Duration| {
            let mut b = ureq::AgentBuilder::new()
                .timeout_connect(config.request_timeout.min(Duration::from_secs(2)))
                .timeout_read(read)
                .timeout_write(config.request_timeout);
            if let Some(tls) = &tls {
                b = b.tls_config(tls.clone());
            }
            b.build()
        };
        Ok(EtcdClient {
            endpoints: config.endpoints.clone(),
            balance: config.balance,
            next: AtomicUsize::new(0),
            agent: build(config.request_timeout),
            watch_agent: build(idle),
            credentials: config
                .username
                .clone()
                .zip(config.password.as_ref().map(|p| p.expose().to_owned())),
            token: Mutex::new(None),
        })
    }

    fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_token(&self, t: Option<String>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// Sends `body` to `path` on the endpoints in turn; the answer of the
    /// first that answers at all.
    fn send(
        &self,
        agent: &ureq::Agent,
        path: &'static str,
        body: &Value,
    ) -> Result<ureq::Response, EtcdError> {
        let n = self.endpoints.len();
        let start = match self.balance {
            EndpointBalance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
            EndpointBalance::PickFirst => self.next.load(Ordering::Relaxed),
        };
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let endpoint = &self.endpoints[idx];
            let mut req = agent
                .post(&format!("{endpoint}{path}"))
                .set("Content-Type", "application/json");
            if path != "/v3/auth/authenticate" {
                if let Some(t) = self.token() {
                    req = req.set("Authorization", &t);
                }
            }
            match req.send_string(&body.to_string()) {
                Ok(r) => {
                    if self.balance == EndpointBalance::PickFirst {
                        self.next.store(idx, Ordering::Relaxed);
                    }
                    return Ok(r);
                }
                Err(ureq::Error::Status(status, r)) => {
                    let message = r.into_string().unwrap_or_default();
                    let e = EtcdError::Status {
                        status,
                        path,
                        message,
                    };
                    // An unavailable member (no leader, shutting down):
                    // another endpoint may serve.
                    if status < 500 {
                        return Err(e);
                    }
                    tracing::debug!(%endpoint, error = %e, "etcd endpoint failed; trying the next");
                    last = Some(e);
                }
                Err(ureq::Error::Transport(t)) => {
                    let e = EtcdError::Unreachable {
                        endpoint: endpoint.clone(),
                        message: t.to_string(),
                    };
                    tracing::debug!(%endpoint, error = %e, "etcd endpoint failed; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::Protocol {
            path,
            message: "no endpoint configured".into(),
        }))
    }

    fn authenticate(&self) -> Result<(), EtcdError> {
        let Some((name, password)) = &self.credentials else {
            return Ok(());
        };
        let path = "/v3/auth/authenticate";
        let r = self.send(
            &self.agent,
            path,
            &json!({"name": name, "password": password}),
        )?;
        let v: Value = r.into_json().map_err(|e| EtcdError::Protocol {
            path,
            message: e.to_string(),
        })?;
        let token = v["token"].as_str().ok_or_else(|| EtcdError::Protocol {
            path,
            message: "no token in the answer".into(),
        })?;
        self.set_token(Some(token.to_owned()));
        Ok(())
    }

    /// Sends with authentication: logs in first when needed, and once more
    /// when etcd no longer accepts the token.
    fn request(
        &self,
        agent: &ureq::Agent,
        path: &'static str,
        body: &Value,
    ) -> Result<ureq::Response, EtcdError> {
        if self.credentials.is_some() && self.token().is_none() {
            self.authenticate()?;
        }
        match self.send(agent, path, body) {
            Err(EtcdError::Status { message, .. })
                if self.credentials.is_some() && message.contains("token") =>
            {
                self.set_token(None);
                self.authenticate()?;
                self.send(agent, path, body)
            }
            other => other,
        }
    }

    fn call(&self, path: &'static str, body: Value) -> Result<Value, EtcdError> {
        let r = self.request(&self.agent, path, &body)?;
        r.into_json().map_err(|e| EtcdError::Protocol {
            path,
            message: e.to_string(),
        })
    }

    /// Grants a lease of `ttl`; returns its id.
    pub fn grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let v = self.call(
            "/v3/lease/grant",
            json!({"TTL": ttl.as_secs().max(1).to_string()}),
        )?;
        let id = int(&v["ID"]);
        if id == 0 {
            return Err(EtcdError::Protocol {
                path: "/v3/lease/grant",
                message: format!("no lease id in {v}"),
            });
        }
        Ok(id)
    }

    /// Refreshes a lease; returns its remaining TTL in seconds (0: the
    /// lease is gone).
    pub fn keep_alive(&self, lease: i64) -> Result<i64, EtcdError> {
        let v = self.call("/v3/lease/keepalive", json!({"ID": lease.to_string()}))?;
        Ok(int(&v["result"]["TTL"]))
    }

    pub fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.call("/v3/lease/revoke", json!({"ID": lease.to_string()}))
            .map(drop)
    }

    pub fn put(&self, key: &str, value: &str, lease: Option<i64>) -> Result<(), EtcdError> {
        let mut body = json!({"key": B64.encode(key), "value": B64.encode(value)});
        if let Some(l) = lease {
            body["lease"] = json!(l.to_string());
        }
        self.call("/v3/kv/put", body).map(drop)
    }

    pub fn delete(&self, key: &str) -> Result<(), EtcdError> {
        self.call("/v3/kv/deleterange", json!({"key": B64.encode(key)}))
            .map(drop)
    }

    /// Every key below `prefix`, and the store's revision they are from.
    pub fn list(&self, prefix: &str) -> Result<(i64, Vec<KeyValue>), EtcdError> {
        let v = self.call(
            "/v3/kv/range",
            json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix))}),
        )?;
        let revision = int(&v["header"]["revision"]);
        let kvs = v["kvs"]
            .as_array()
            .map(|a| a.iter().map(key_value).collect())
            .unwrap_or_default();
        Ok((revision, kvs))
    }

    /// Watches the keys below `prefix` from revision `from` on.
    pub fn watch(&self, prefix: &str, from: i64) -> Result<WatchStream, EtcdError> {
        let body = json!({"create_request": {
            "key": B64.encode(prefix),
            "range_end": B64.encode(prefix_end(prefix)),
            "start_revision": from.to_string(),
        }});
        let r = self.request(&self.watch_agent, "/v3/watch", &body)?;
        Ok(WatchStream {
            reader: BufReader::new(r.into_reader()),
            next_revision: from,
        })
    }
}

/// An open watch.
pub struct WatchStream {
    reader: BufReader<Box<dyn Read + Send + Sync + 'static>>,
    /// The revision to resume from on a new stream.
    pub next_revision: i64,
}

/// What one read of a watch gave.
#[derive(Debug)]
pub enum WatchRead {
    Events(Vec<WatchEvent>),
    /// Nothing within the idle period: the stream is still good.
    Idle,
    /// The stream ended or broke; resume on a new one from `next_revision`.
    Closed(String),
    /// The watch cannot resume (history compacted): list again.
    Reset,
}

impl WatchStream {
    pub fn read(&mut self) -> WatchRead {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return WatchRead::Closed("stream ended".into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A partial line is lost with the stream: start anew.
                return if line.is_empty() {
                    WatchRead::Idle
                } else {
                    WatchRead::Closed("read timed out mid-message".into())
                };
            }
            Err(e) => return WatchRead::Closed(e.to_string()),
        }
        let v: Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(e) => return WatchRead::Closed(format!("not JSON: {e}")),
        };
        if v.get("error").is_some() {
            return WatchRead::Closed(format!("watch error: {}", v["error"]));
        }
        let result = &v["result"];
        if int(&result["compact_revision"]) > 0 {
            return WatchRead::Reset;
        }
        if result["canceled"].as_bool() == Some(true) {
            return WatchRead::Closed(format!("watch canceled: {}", result["cancel_reason"]));
        }
        let events: Vec<WatchEvent> = result["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let kv = key_value(&e["kv"]);
                        if e["type"].as_str() == Some("DELETE") {
                            WatchEvent::Delete {
                                key: kv.key,
                                mod_revision: kv.mod_revision,
                            }
                        } else {
                            WatchEvent::Put(kv)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        for e in &events {
            let rev = match e {
                WatchEvent::Put(kv) => kv.mod_revision,
                WatchEvent::Delete { mod_revision, .. } => *mod_revision,
            };
            self.next_revision = self.next_revision.max(rev + 1);
        }
        WatchRead::Events(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("ab"), b"ac".to_vec());
    }

    #[test]
    fn numbers_as_strings_or_numbers() {
        assert_eq!(int(&json!("42")), 42);
        assert_eq!(int(&json!(42)), 42);
        assert_eq!(int(&Value::Null), 0);
        assert_eq!(text(&json!(B64.encode("k"))), "k");
    }
}
