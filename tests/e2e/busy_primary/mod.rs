//! A busy primary, and the retry of a secondary open that lost a race
//! with it (`farm/src/worker/open_retry.rs`).
//!
//! - [`busy`]: a hoster that replaces its MANIFEST at nearly every edit,
//!   with several compactions at once: at least 95% of them run remotely.
//! - [`lost_race`]: the retry made certain with a `CURRENT` that names a
//!   missing MANIFEST: bounded when the race is never won, successful when
//!   it is won on a retry, counted in the log, on `/stat` and `/metrics`.
//! - [`scrape`]: reading one series of the worker's `/metrics`.

mod busy;
mod lost_race;
mod scrape;
