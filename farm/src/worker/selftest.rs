//! `FARM_SELFTEST_DROP_KEYS`: a deliberately wrong worker, for the crash
//! test's self-test (`scripts/crashtest.sh --selftest`) and nothing else.
//!
//! With `FARM_SELFTEST_DROP_KEYS=<n>` (n >= 1) in the worker's environment,
//! every attempt, in-process or in a child, drops every n-th plain value it
//! compacts. Its outputs stay well-formed: every checksum is valid and every
//! size matches the result, so the hoster's checks pass and the loss is
//! visible only to a reader that knows what the data should be. The
//! self-test proves that db_stress's expected-state verification catches
//! such a worker. The variable is not a setting: it is read at each attempt
//! and is absent from the worker's configuration on purpose.

use crate::rocks::open_and_compact::Override;
use crate::rocks::RocksError;

/// The environment variable; only the crash test's self-test sets it.
pub const DROP_KEYS_VAR: &str = "FARM_SELFTEST_DROP_KEYS";

/// What the variable asks for: `Some(n)` for a positive integer `n`.
pub fn drop_every() -> Option<u64> {
    std::env::var(DROP_KEYS_VAR)
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
}

/// Makes `overrides` drop keys when the variable asks for it.
pub fn apply(overrides: &mut Override) -> Result<(), RocksError> {
    match drop_every() {
        None => Ok(()),
        Some(n) => {
            tracing::warn!(
                every = n,
                "{DROP_KEYS_VAR} is set: this attempt drops keys on purpose"
            );
            overrides.drop_every_nth_value(n)
        }
    }
}
