//! Why a block was not compressed by the zipserver (the client then
//! compresses it in-process).

use crate::shm::map::MapError;
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("zipserver socket: {0}")]
    Io(#[from] io::Error),
    #[error("the zipserver answered too late")]
    TimedOut,
    #[error("the zipserver refused the block: {0}")]
    Refused(String),
    #[error("the zipserver's answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("the zipserver went away")]
    Gone,
    #[error("the zipserver refused the ring: {0}")]
    RingRefused(String),
    #[error("shared memory: {0}")]
    Map(#[from] MapError),
}
