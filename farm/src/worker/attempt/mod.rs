//! One attempt, one owner.
//!
//! Everything one run of an attempt holds is owned by one value, and each
//! piece is given back exactly once, when its owner lets go of it:
//!
//! | piece | owner | given back |
//! | --- | --- | --- |
//! | queue place ([`crate::worker::admission_gate::Reservation`]) | the queue entry while queued, then [`end::AttemptEnd`] | at the run's end (or with the queued entry when it is cancelled) |
//! | running slot, counters, the ended state | [`end::AttemptEnd`] | once, by whoever ends the run first: its thread, its watchdog, or the drop of an [`owned::Attempt`] that never reported |
//! | prepared job with its mount lease ([`crate::worker::mounts::table::MountLease`]) | [`owned::Attempt`] | when the attempt's thread lets go of it |
//! | cancel flag | [`owned::Attempt`], shared with the supervisor's running entry (`cancel`, shutdown) and the watchdog (timeout) | with the last of them |
//! | deadline ([`crate::worker::deadline::Watchdog`]) | [`owned::Attempt`] | when the attempt returns |
//! | attempt directory ([`directory::OwnedDir`]) | [`owned::Attempt`] | removed (with `DEL_WORKER_TEMP_DB`) before the end is reported |
//!
//! - [`owned`]: the [`owned::Attempt`] an attempt's thread owns, and its
//!   `finish`.
//! - [`end`]: the once-only end of a run ([`end::AttemptEnd`]) and what it
//!   reports ([`end::Ended`]).
//! - [`directory`]: the attempt directory, removed when dropped if the
//!   worker keeps none.

pub mod directory;
pub mod end;
pub mod owned;
