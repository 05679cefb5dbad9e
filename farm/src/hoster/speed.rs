//! How long a compaction should take: a read speed learned per column family
//! from the hoster's own remote compactions (ToplingDB's `estimate_speed`
//! and `timeout_multiplier`).
//!
//! The estimate goes to the worker (`estimate_time_us`, which orders its
//! queue and sets its timeout) and bounds the hoster's own wait: an attempt
//! may take `timeout_multiplier` times its estimate, at least 30 s and at
//! most `overall_timeout`. Before anything was measured the configured
//! `estimate_speed` is used, and when that is 0 too, only `overall_timeout`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How much a new measurement moves the learned speed.
const SMOOTHING: f64 = 0.3;
/// The shortest wait an estimate can give.
const MIN_WAIT: Duration = Duration::from_secs(30);

pub struct SpeedModel {
    /// Bytes per second assumed before a measurement; 0 = unknown.
    initial: f64,
    learned: Mutex<HashMap<String, f64>>,
}

impl SpeedModel {
    pub fn new(initial: f64) -> Self {
        SpeedModel {
            initial,
            learned: Mutex::new(HashMap::new()),
        }
    }

    /// Bytes per second for `cf`, if known.
    pub fn speed(&self, cf: &str) -> Option<f64> {
        let learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        learned
            .get(cf)
            .copied()
            .or((self.initial > 0.0).then_some(self.initial))
    }

    /// How long reading `input_bytes` of `cf` should take.
    pub fn estimate(&self, cf: &str, input_bytes: u64) -> Option<Duration> {
        let speed = self.speed(cf)?;
        Some(Duration::from_secs_f64(input_bytes as f64 / speed))
    }

    /// Learns from a remote compaction of `cf` that read `input_bytes` in
    /// `elapsed` (submission to result).
    pub fn observe(&self, cf: &str, input_bytes: u64, elapsed: Duration) {
        if input_bytes == 0 || elapsed.is_zero() {
            return;
        }
        let sample = input_bytes as f64 / elapsed.as_secs_f64();
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        let v = learned.entry(cf.to_owned()).or_insert(sample);
        *v = *v * (1.0 - SMOOTHING) + sample * SMOOTHING;
    }
}

/// How long the hoster waits for an attempt with `estimate`.
pub fn wait_limit(estimate: Option<Duration>, multiplier: f64, overall: Duration) -> Duration {
    match estimate {
        Some(e) => e.mul_f64(multiplier).max(MIN_WAIT).min(overall),
        None => overall,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_per_family_and_bounds_the_wait() {
        let m = SpeedModel::new(0.0);
        assert_eq!(m.estimate("a", 1000), None);
        m.observe("a", 100 << 20, Duration::from_secs(1));
        let e = m.estimate("a", 200 << 20).unwrap();
        assert_eq!(e, Duration::from_secs(2));
        assert_eq!(m.estimate("b", 1), None, "per column family");
        m.observe("a", 50 << 20, Duration::from_secs(1));
        let s = m.speed("a").unwrap();
        assert!(
            s < (100 << 20) as f64 && s > (50 << 20) as f64,
            "smoothed: {s}"
        );

        let hour = Duration::from_secs(3600);
        assert_eq!(wait_limit(None, 10.0, hour), hour);
        assert_eq!(
            wait_limit(Some(Duration::from_secs(1)), 10.0, hour),
            MIN_WAIT
        );
        assert_eq!(
            wait_limit(Some(Duration::from_secs(60)), 10.0, hour),
            Duration::from_secs(600)
        );
        assert_eq!(wait_limit(Some(hour), 10.0, hour), hour);
        assert_eq!(
            SpeedModel::new(1e6).estimate("x", 2_000_000),
            Some(Duration::from_secs(2))
        );
    }
}
