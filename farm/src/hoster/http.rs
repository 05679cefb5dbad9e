//! The worker protocol over blocking HTTP (RocksDB's callbacks are blocking
//! threads already). `https://` workers go through rustls: with their
//! `ca` (and client `cert`/`key`) when the entry names one, else against
//! the public roots.

use super::config::{HosterConfig, WorkerEndpoint};
use super::service::HosterError;
use super::stats::FallbackReason;
use crate::protocol::answers::ProbeAnswer;
use crate::protocol::attempt::AttemptKey;
use crate::protocol::endpoints::Endpoint;
use crate::protocol::job::Job;
use crate::protocol::probe::ProbeRequest;
use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

/// A failed request, classified into the reason the hoster falls back for.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {detail}")]
pub struct RequestError {
    pub reason: FallbackReason,
    pub url: String,
    pub detail: String,
    /// The HTTP status, when the worker answered one.
    pub status: Option<u16>,
    /// The `status` word of the worker's error answer, when it sent one.
    pub answer: Option<String>,
}

impl RequestError {
    /// A 503 `stopping`: the worker drains and takes no job for a while
    /// (protocol 3; older workers answer 412 while they stop).
    pub fn worker_stopping(&self) -> bool {
        self.status == Some(503) && self.answer.as_deref() == Some("stopping")
    }
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// Agents of the `https://` workers with their own `ca`, by base URL
    /// and by submit URL.
    tls_agents: HashMap<String, ureq::Agent>,
    headers: Vec<(String, String)>,
}

/// Largest answer read from a worker: a result is a few KiB per output file.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

impl Client {
    pub fn new(config: &HosterConfig) -> Result<Self, HosterError> {
        let builder = || {
            ureq::AgentBuilder::new()
                .timeout(config.http_timeout)
                .redirects(0)
        };
        let mut tls_agents = HashMap::new();
        for w in &config.http_workers {
            let Some(tls) = &w.tls else {
                continue;
            };
            let client = tls.client.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            let tls_config = crate::tls::client_config(&tls.ca, client).map_err(|source| {
                HosterError::WorkerTls {
                    worker: w.base_url.clone(),
                    source,
                }
            })?;
            let agent = builder().tls_config(tls_config).build();
            tls_agents.insert(w.base_url.clone(), agent.clone());
            tls_agents.insert(w.submit_url.clone(), agent);
        }
        Ok(Client {
            agent: builder().build(),
            tls_agents,
            headers: config.dcompact_http_headers.clone(),
        })
    }

    /// The agent for `url`: a worker's own TLS settings, or the default.
    fn agent(&self, url: &str) -> &ureq::Agent {
        self.tls_agents
            .iter()
            .find(|(prefix, _)| {
                url.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .map_or(&self.agent, |(_, agent)| agent)
    }

    fn post(&self, url: &str, body: &str) -> Result<String, RequestError> {
        let mut req = self
            .agent(url)
            .post(url)
            .set("Content-Type", "application/json");
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        let fail = |reason, detail: String, status| RequestError {
            reason,
            url: url.to_owned(),
            detail,
            status,
            answer: None,
        };
        match req.send_string(body) {
            Ok(resp) => {
                let mut text = String::new();
                resp.into_reader()
                    .take(MAX_ANSWER_BYTES)
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        fail(classify_io(&e), format!("failed to read answer: {e}"), None)
                    })?;
                Ok(text)
            }
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let reason = match code {
                    503 => FallbackReason::Busy,
                    412 => FallbackReason::Refused,
                    404 => FallbackReason::NotFound,
                    _ => FallbackReason::HttpStatus,
                };
                let detail = format!(
                    "HTTP {code}: {}",
                    text.chars().take(500).collect::<String>()
                );
                let answer = serde_json::from_str::<crate::protocol::answers::ErrorAnswer>(&text)
                    .ok()
                    .map(|a| a.status);
                Err(RequestError {
                    answer,
                    ..fail(reason, detail, Some(code))
                })
            }
            Err(ureq::Error::Transport(t)) => {
                let detail = t.to_string();
                let timed_out = detail.contains("timed out")
                    || detail.contains("Timeout")
                    || std::error::Error::source(&t)
                        .and_then(|s| s.downcast_ref::<std::io::Error>())
                        .is_some_and(|e| classify_io(e) == FallbackReason::Timeout);
                let reason = if timed_out {
                    FallbackReason::Timeout
                } else {
                    FallbackReason::Connection
                };
                Err(fail(reason, detail, None))
            }
        }
    }

    /// `POST /dcompact` to the worker's submit URL.
    pub fn submit(&self, worker: &WorkerEndpoint, job: &Job) -> Result<(), RequestError> {
        let url = worker.submit_url.clone();
        let body = serde_json::to_string(job).expect("a job always serializes");
        let text = self.post(&url, &body).map_err(|mut e| {
            // A 404 here means no /dcompact endpoint, not a lost attempt.
            if e.reason == FallbackReason::NotFound {
                e.reason = FallbackReason::HttpStatus;
            }
            e
        })?;
        let answer: serde_json::Value = serde_json::from_str(&text).map_err(|e| RequestError {
            reason: FallbackReason::Protocol,
            url: url.clone(),
            detail: format!("answer is not JSON: {e}"),
            status: Some(200),
            answer: None,
        })?;
        if answer.get("status").and_then(|s| s.as_str()) != Some("ok") {
            return Err(RequestError {
                reason: FallbackReason::Protocol,
                url,
                detail: format!("unexpected answer {answer}"),
                status: Some(200),
                answer: None,
            });
        }
        Ok(())
    }

    /// `POST /probe`; with a non-zero `wait`, the worker may hold the
    /// answer that long while the attempt runs (see
    /// [`crate::protocol::probe`]).
    pub fn probe(
        &self,
        base_url: &str,
        key: &AttemptKey,
        wait: Duration,
    ) -> Result<ProbeAnswer, RequestError> {
        let url = format!("{base_url}{}", Endpoint::Probe.path());
        let request = ProbeRequest {
            key: key.clone(),
            wait_ms: wait.as_millis() as u64,
        };
        let body = serde_json::to_string(&request).expect("a key always serializes");
        let text = self.post(&url, &body)?;
        serde_json::from_str(&text).map_err(|e| RequestError {
            reason: FallbackReason::Protocol,
            url,
            detail: format!("answer is not a probe answer: {e}"),
            status: Some(200),
            answer: None,
        })
    }

    /// `POST /shutdown`: best effort, the answer does not matter.
    pub fn cancel(&self, base_url: &str, key: &AttemptKey) {
        let url = format!("{base_url}{}", Endpoint::Shutdown.path());
        let body = serde_json::to_string(key).expect("a key always serializes");
        if let Err(e) = self.post(&url, &body) {
            tracing::debug!(error = %e, "cancel not delivered");
        }
    }
}

fn classify_io(e: &std::io::Error) -> FallbackReason {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FallbackReason::Timeout,
        _ => FallbackReason::Connection,
    }
}
