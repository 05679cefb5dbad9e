//! `TERMINATION_CHECK_URL`: a URL the worker polls every
//! `TERMINATION_CHECK_INTERVAL` (5 s by default) that says when the
//! machine is about to go away, as clouds' instance metadata does for spot
//! instances (AWS: `http://169.254.169.254/latest/meta-data/spot/instance-action`
//! answers 404 until a termination is scheduled, then 200). A 200 begins a
//! drain ([`crate::worker::drain`]); any other answer, or none, means
//! "not yet" (ToplingDB also stops on other answers than 404: here a
//! misconfigured URL answering 403 or 500 must not drain a farm).
//!
//! Failure modes: a URL that does not answer costs one blocking thread for
//! at most the request timeout (the interval, at most 5 s) per poll; the
//! first failure is logged as a warning, later ones at debug level.

use crate::worker::drain::{Drain, DrainCause};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest one poll may take.
const MAX_REQUEST_TIME: Duration = Duration::from_secs(5);

/// What one poll learned.
#[derive(Debug, PartialEq, Eq)]
enum Notice {
    /// 200: the machine goes away.
    Terminating,
    /// Another status: not yet.
    NotYet(u16),
    /// No answer.
    Unreachable(String),
}

/// Polls `url` until it answers 200 (then begins `drain`), the drain
/// began otherwise, or `stop` is cancelled.
pub fn start(
    url: String,
    interval: Duration,
    drain: Arc<Drain>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout(interval.min(MAX_REQUEST_TIME))
        .redirects(0)
        .build();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u64;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = drain.begun() => return,
                _ = tick.tick() => {}
            }
            let (agent, target) = (agent.clone(), url.clone());
            let Ok(notice) = tokio::task::spawn_blocking(move || poll(&agent, &target)).await
            else {
                return;
            };
            match notice {
                Notice::Terminating => {
                    tracing::warn!(
                        url,
                        "termination notice: TERMINATION_CHECK_URL answered 200"
                    );
                    drain.begin(DrainCause::TerminationNotice);
                    return;
                }
                Notice::NotYet(status) => {
                    tracing::debug!(url, status, "no termination notice");
                }
                Notice::Unreachable(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(
                            url,
                            error,
                            "TERMINATION_CHECK_URL did not answer; polling on"
                        );
                    } else {
                        tracing::debug!(
                            url,
                            error,
                            failures,
                            "TERMINATION_CHECK_URL did not answer"
                        );
                    }
                }
            }
        }
    })
}

fn poll(agent: &ureq::Agent, url: &str) -> Notice {
    match agent.get(url).call() {
        Ok(r) if r.status() == 200 => Notice::Terminating,
        Ok(r) => Notice::NotYet(r.status()),
        Err(ureq::Error::Status(code, _)) => Notice::NotYet(code),
        Err(ureq::Error::Transport(t)) => Notice::Unreachable(t.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP server answering `status`.
    fn answer_once(status: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let status = status.to_owned();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        });
        format!("http://{addr}/latest/meta-data/spot/instance-action")
    }

    #[test]
    fn only_a_200_is_a_notice() {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .redirects(0)
            .build();
        assert_eq!(poll(&agent, &answer_once("200 OK")), Notice::Terminating);
        assert_eq!(
            poll(&agent, &answer_once("404 Not Found")),
            Notice::NotYet(404)
        );
        assert_eq!(
            poll(&agent, &answer_once("500 Internal Server Error")),
            Notice::NotYet(500)
        );
        assert_eq!(poll(&agent, &answer_once("302 Found")), Notice::NotYet(302));
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", l.local_addr().unwrap())
        };
        assert!(matches!(poll(&agent, &closed), Notice::Unreachable(_)));
    }
}
