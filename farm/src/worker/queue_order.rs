//! Which waiting attempt runs next.
//!
//! ToplingDB weighs a waiting job by `wait / estimate / 1.618^level *
//! (attempt + 1)`: long waits rise, short jobs go first (they free a slot
//! soon), lower output levels go first (their compactions unblock the
//! hoster's writes: L0 stalls writes, the bottom level never does), and a
//! retried attempt gets a push. The farm keeps that weight; an unknown
//! estimate counts as one second, so such jobs are ordered by wait, level
//! and attempt alone.

use std::time::Duration;

const LEVEL_BASE: f64 = 1.618;

pub fn priority(waited: Duration, estimate_us: u64, output_level: i32, attempt: u32) -> f64 {
    let estimate = if estimate_us == 0 {
        1.0
    } else {
        (estimate_us as f64 / 1e6).max(1e-3)
    };
    waited.as_secs_f64() / estimate / LEVEL_BASE.powi(output_level.max(0)) * f64::from(attempt + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn lower_levels_shorter_jobs_longer_waits_and_retries_first() {
        assert!(priority(S, 0, 1, 0) > priority(S, 0, 4, 0));
        assert!(priority(S, 500_000, 1, 0) > priority(S, 5_000_000, 1, 0));
        assert!(priority(2 * S, 0, 1, 0) > priority(S, 0, 1, 0));
        assert!(priority(S, 0, 1, 1) > priority(S, 0, 1, 0));
        // A long wait overtakes a lower level eventually.
        assert!(priority(10 * S, 0, 3, 0) > priority(S, 0, 1, 0));
    }
}
