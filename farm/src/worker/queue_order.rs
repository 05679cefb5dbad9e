//! Which waiting attempt runs next.
//!
//! ToplingDB weighs a waiting job by `wait / estimate / 1.618^level *
//! (attempt + 1)`: long waits rise, short jobs go first (they free a slot
//! soon), lower output levels go first (their compactions unblock the
//! hoster's writes: L0 stalls writes, the bottom level never does), and a
//! retried attempt gets a push. The farm keeps that weight, but from what
//! the worker knows rather than what a request claims:
//!
//! - the estimate is the worker's own, from the input bytes it measured at
//!   admission ([`ASSUMED_BYTES_PER_US`]); a hoster's `estimate_time_us` is
//!   only a hint that may lengthen it, up to [`MAX_HINT_FACTOR`] times,
//!   never shorten it (a job cannot raise its priority by claiming to be
//!   quick);
//! - the level is the one the compaction input itself names (admission
//!   refuses a job whose `output_level` differs), clamped to
//!   `0..=`[`MAX_LEVEL`];
//! - the retry push is capped at [`MAX_ATTEMPT_PUSH`].
//!
//! Every step is floating point on bounded values: nothing here can
//! overflow or panic, whatever the request said.

use std::time::Duration;

const LEVEL_BASE: f64 = 1.618;
/// The compaction speed the worker assumes to turn input bytes into an
/// estimate: 50 MB/s.
pub const ASSUMED_BYTES_PER_US: u64 = 50;
/// The shortest estimate: 1 ms.
const MIN_ESTIMATE_US: u64 = 1000;
/// How far a hint may lengthen the worker's own estimate.
pub const MAX_HINT_FACTOR: u64 = 16;
/// Attempts beyond this number get no further push.
pub const MAX_ATTEMPT_PUSH: u32 = 3;
/// Levels beyond this one weigh as this one.
pub const MAX_LEVEL: i32 = 63;

/// What ordering knows of a waiting attempt.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    pub waited: Duration,
    /// The input's size as the worker measured it.
    pub input_bytes: u64,
    /// The hoster's `estimate_time_us` (0 when unknown).
    pub hint_us: u64,
    /// The output level the input names.
    pub output_level: i32,
    pub attempt: u32,
}

/// The estimate ordering uses, in microseconds: the worker's own from the
/// input's size, lengthened (never shortened) by the hint.
pub fn estimate_us(input_bytes: u64, hint_us: u64) -> u64 {
    let own = (input_bytes / ASSUMED_BYTES_PER_US).max(MIN_ESTIMATE_US);
    hint_us.clamp(own, own.saturating_mul(MAX_HINT_FACTOR))
}

pub fn priority(w: Waiting) -> f64 {
    let estimate = estimate_us(w.input_bytes, w.hint_us) as f64 / 1e6;
    let level = w.output_level.clamp(0, MAX_LEVEL);
    let push = f64::from(w.attempt.min(MAX_ATTEMPT_PUSH)) + 1.0;
    w.waited.as_secs_f64() / estimate / LEVEL_BASE.powi(level) * push
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MB: u64 = 1 << 20;

    fn w(waited: Duration, input_bytes: u64, output_level: i32, attempt: u32) -> Waiting {
        Waiting {
            waited,
            input_bytes,
            hint_us: 0,
            output_level,
            attempt,
        }
    }

    #[test]
    fn lower_levels_smaller_inputs_longer_waits_and_retries_first() {
        assert!(priority(w(S, MB, 1, 0)) > priority(w(S, MB, 4, 0)));
        assert!(priority(w(S, MB, 1, 0)) > priority(w(S, 100 * MB, 1, 0)));
        assert!(priority(w(2 * S, MB, 1, 0)) > priority(w(S, MB, 1, 0)));
        assert!(priority(w(S, MB, 1, 1)) > priority(w(S, MB, 1, 0)));
        // A long wait overtakes a lower level eventually.
        assert!(priority(w(10 * S, MB, 3, 0)) > priority(w(S, MB, 1, 0)));
    }

    #[test]
    fn a_hint_only_lengthens_and_the_push_is_capped() {
        let honest = w(S, 10 * MB, 1, 0);
        let quick = Waiting {
            hint_us: 1,
            ..honest
        };
        assert_eq!(priority(quick), priority(honest));
        let slow = Waiting {
            hint_us: u64::MAX,
            ..honest
        };
        assert!(priority(slow) < priority(honest));
        assert_eq!(
            estimate_us(10 * MB, u64::MAX),
            estimate_us(10 * MB, 0) * MAX_HINT_FACTOR
        );
        assert_eq!(
            priority(w(S, MB, 1, u32::MAX)),
            priority(w(S, MB, 1, MAX_ATTEMPT_PUSH))
        );
    }

    #[test]
    fn any_numbers_give_a_number() {
        for attempt in [0, 1, u32::MAX] {
            for level in [i32::MIN, -1, 0, 7, i32::MAX] {
                for bytes in [0, 1, u64::MAX] {
                    for hint in [0, 1, u64::MAX] {
                        let p = priority(Waiting {
                            waited: Duration::MAX,
                            input_bytes: bytes,
                            hint_us: hint,
                            output_level: level,
                            attempt,
                        });
                        assert!(!p.is_nan(), "{attempt} {level} {bytes} {hint}");
                    }
                }
            }
        }
    }
}
