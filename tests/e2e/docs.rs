//! The repository's documents tell the truth about it.
//!
//! - [`links`]: every path and link that `README.md`, `docs/*.md` and the
//!   directories' READMEs name exists inside the repository (none leads out
//!   with `../`).
//! - [`protocol`]: every JSON example of `docs/PROTOCOL.md` parses with the
//!   protocol's own types and says no more and no less than they do; the
//!   page describes exactly the endpoints the worker's router serves; a live
//!   worker answers in the documented shapes and leaves the documented
//!   files.
//! - [`markdown`]: reading the documents.

mod links;
mod markdown;
mod protocol;
