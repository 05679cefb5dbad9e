//! Blocks over the Unix socket, one round trip each: for blocks too large
//! for a ring slot, when every slot is busy, and with `transport=socket`.
//! Connections are pooled (one per block in flight); every read and write
//! is bounded by `client_timeout`.

use super::counts::{bump, Atomics};
use super::error::ClientError;
use crate::codec::{Compressed, ZipParams};
use crate::frame::{self, Reply};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A read or write that ran out of time is a timeout like any other.
fn io(e: std::io::Error) -> ClientError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ClientError::TimedOut,
        _ => ClientError::Io(e),
    }
}

pub struct SocketPath {
    socket: PathBuf,
    name: String,
    timeout: Duration,
    idle: Mutex<Vec<BufReader<UnixStream>>>,
}

impl SocketPath {
    pub fn new(socket: PathBuf, name: String, timeout: Duration) -> Self {
        SocketPath {
            socket,
            name,
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Forgets every pooled connection (they may all lead to a dead
    /// process).
    pub fn forget(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn connection(&self, counts: &Atomics) -> Result<BufReader<UnixStream>, ClientError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut s = &stream;
        frame::write_hello(&mut s, &self.name)?;
        s.flush()?;
        bump(&counts.connects, 1);
        Ok(BufReader::with_capacity(frame::MAX_BLOCK_READ, stream))
    }

    /// Compresses one block at the zipserver.
    pub fn compress(
        &self,
        params: &ZipParams,
        input: &[u8],
        out: &mut [u8],
        counts: &Atomics,
    ) -> Result<Compressed, ClientError> {
        let mut conn = self.connection(counts)?;
        let deadline = Instant::now() + self.timeout;
        {
            let mut s = conn.get_ref();
            frame::write_compress(&mut s, params, out.len(), input).map_err(io)?;
            s.flush().map_err(io)?;
        }
        let body = frame::read_frame(&mut conn)
            .map_err(io)?
            .ok_or(ClientError::Gone)?;
        if Instant::now() > deadline {
            return Err(ClientError::TimedOut);
        }
        let result = match frame::parse_reply(&body)? {
            Reply::Done { result, bytes } => {
                if result.size > out.len() || bytes.len() > out.len() {
                    return Err(ClientError::Malformed(
                        "reply larger than the output buffer",
                    ));
                }
                out[..bytes.len()].copy_from_slice(&bytes);
                result
            }
            Reply::Error(e) => return Err(ClientError::Refused(e)),
        };
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        Ok(result)
    }
}
