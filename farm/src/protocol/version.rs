//! The protocol's version number, and how each side learns the other's.
//!
//! The contract only grows: fields and endpoints are added, never renamed,
//! retyped, given another meaning or removed. A release that adds to it
//! raises [`PROTOCOL_VERSION`] by one (`docs/PROTOCOL.md` lists what each
//! version added). Both sides say which version they speak:
//!
//! - the worker in `GET /health` (`protocol`), in the answer of an
//!   accepted `POST /dcompact` and in its etcd registration;
//! - the hoster in every job (`protocol`).
//!
//! A missing `protocol` means version 1: the protocol as it was before the
//! number existed, which differs from version 1 only by lacking the number.
//! A reader ignores fields it does not know, so a newer peer's messages
//! always parse; a client that needs something added in version N sends it
//! only to workers that announce N or more. `docs/PROTOCOL.md` is the
//! written contract.

/// The version of the worker protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 4;

/// The version a message without a `protocol` field speaks (serde's
/// default for every `protocol` field).
pub fn unversioned() -> u32 {
    1
}
