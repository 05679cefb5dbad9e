//! One remote attempt, one owner, on the hoster's side.
//!
//! From a successful submission to its end, an attempt is one
//! [`owned::RemoteAttempt`]: held by the waiting RocksDB thread, then by
//! the service's pending map between a verified result and RocksDB's
//! installation. Whichever way it ends (installed, failed, timed out,
//! cancelled by RocksDB, overridden by the bridge, the service dropped),
//! dropping it gives back, exactly once, what it held:
//!
//! | held | given back |
//! | --- | --- |
//! | its output directory `farm-output/<run>/job-NNNNN-NN-att-NN` | removed |
//! | its job's attempt numbering ([`book::AttemptBook`]) | forgotten |
//! | its wake-up for etcd's "done" event | forgotten |
//! | its place in the in-flight count | given back |
//! | with `storage: "http"`, its capability and snapshot | revoked, removed |
//!
//! Cancelling it on the worker is asked for explicitly, where the end
//! calls for it ([`owned::RemoteAttempt::cancel_on_worker`]); a submission
//! that timed out before any attempt existed is cancelled in the
//! background ([`cancel::cancel_in_background`]).
//!
//! - [`owned`]: the attempt and its release on drop.
//! - [`book`]: what the service shares with its attempts: numbering,
//!   in-flight count, completion wake-ups.
//! - [`output_dir`]: an attempt's output directory: its name, the result a
//!   worker left in it, its removal.
//! - [`cancel`]: the cancel of a submission that timed out.

pub mod book;
pub mod cancel;
pub mod output_dir;
pub mod owned;
