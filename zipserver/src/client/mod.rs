//! The child's side: [`transport::ZipClient`], the transport the
//! `FarmZipServer` compressor hands blocks to.
//!
//! - [`transport`]: ring or socket per block, fallback and pause.
//! - [`ring`]: the child's shared-memory ring.
//! - [`socket`]: one round trip per block on the Unix socket.
//! - [`pause`]: in-process compression for a while after a failure.
//! - [`counts`]: what the child sent and compressed itself.
//! - [`error`]: why a block was not compressed remotely.

pub mod counts;
pub mod error;
pub mod pause;
pub mod ring;
pub mod socket;
pub mod transport;

pub use counts::ZipCounts;
pub use transport::{ClientConfig, ZipClient};
