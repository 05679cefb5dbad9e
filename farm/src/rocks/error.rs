//! Errors that cross the RocksDB boundary.

/// A failure reported by RocksDB or by the C++ shim, with RocksDB's message.
#[derive(Debug, thiserror::Error)]
pub enum RocksError {
    /// RocksDB returned a non-OK `Status`; the message is `Status::ToString()`.
    #[error("rocksdb: {operation}: {message}")]
    Status {
        operation: &'static str,
        message: String,
    },
    /// A string handed to RocksDB contained an interior NUL byte.
    #[error("{what} contains a NUL byte")]
    Nul { what: &'static str },
    /// The shim answered text the bridge could not read.
    #[error("unreadable answer from {operation}: {detail}")]
    Answer {
        operation: &'static str,
        detail: String,
    },
}
