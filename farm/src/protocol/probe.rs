//! The body of `POST /probe`: the attempt's five key fields and, optionally,
//! `wait_ms`: how long the worker may hold its answer while the attempt is
//! still queued or running. It answers as soon as the attempt ends (or is
//! unknown), else when `wait_ms` has passed, with the attempt's state then.
//! Absent or 0: the answer comes at once.
//!
//! A long wait lets a hoster learn of an attempt's end within a round trip
//! instead of at its next probe, with one request per `wait_ms` instead of
//! one per pause. Workers that predate the field ignore it and answer at
//! once, so a client that asks for a wait still paces its probes when an
//! answer comes back early.

use crate::protocol::attempt::AttemptKey;
use serde::{Deserialize, Serialize};

/// The longest a worker holds a probe, whatever `wait_ms` asks.
pub const MAX_PROBE_WAIT_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    #[serde(flatten)]
    pub key: AttemptKey,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_optional_both_ways() {
        let key = AttemptKey {
            instance_name: "i".into(),
            start_time: 1,
            dbname: "/d/db".into(),
            job_id: 2,
            attempt: 0,
        };
        let bare = serde_json::to_string(&key).unwrap();
        let r: ProbeRequest = serde_json::from_str(&bare).unwrap();
        assert_eq!((r.key.clone(), r.wait_ms), (key.clone(), 0));
        assert_eq!(serde_json::to_string(&r).unwrap(), bare);
        let waiting = ProbeRequest {
            key: key.clone(),
            wait_ms: 500,
        };
        let text = serde_json::to_string(&waiting).unwrap();
        assert!(text.contains("\"wait_ms\":500"), "{text}");
        // A worker that knows only the key reads the same body.
        assert_eq!(serde_json::from_str::<AttemptKey>(&text).unwrap(), key);
    }
}
