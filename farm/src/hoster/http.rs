//! The worker protocol over blocking HTTP (RocksDB's callbacks are blocking
//! threads already).

use super::config::HosterConfig;
use super::stats::FallbackReason;
use crate::protocol::answers::ProbeAnswer;
use crate::protocol::attempt::AttemptKey;
use crate::protocol::endpoints::Endpoint;
use crate::protocol::job::Job;
use crate::protocol::probe::ProbeRequest;
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
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    headers: Vec<(String, String)>,
}

/// Largest answer read from a worker: a result is a few KiB per output file.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

impl Client {
    pub fn new(config: &HosterConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(config.http_timeout)
            .redirects(0)
            .build();
        Client {
            agent,
            headers: config.dcompact_http_headers.clone(),
        }
    }

    fn post(&self, url: &str, body: &str) -> Result<String, RequestError> {
        let mut req = self.agent.post(url).set("Content-Type", "application/json");
        for (k, v) in &self.headers {
            req = req.set(k, v);
        }
        let fail = |reason, detail: String, status| RequestError {
            reason,
            url: url.to_owned(),
            detail,
            status,
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
                Err(fail(reason, detail, Some(code)))
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

    /// `POST /dcompact`.
    pub fn submit(&self, base_url: &str, job: &Job) -> Result<(), RequestError> {
        let url = format!("{base_url}{}", Endpoint::Dcompact.path());
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
        })?;
        if answer.get("status").and_then(|s| s.as_str()) != Some("ok") {
            return Err(RequestError {
                reason: FallbackReason::Protocol,
                url,
                detail: format!("unexpected answer {answer}"),
                status: Some(200),
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
