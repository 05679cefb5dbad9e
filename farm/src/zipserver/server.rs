//! The compression service on the Unix socket: one thread per client
//! connection reads a request, takes bytes from the memory budget, then
//! waits for one of `num_threads` compression slots and compresses the
//! block itself. So no more than `num_threads` blocks are ever compressed
//! at once (the zipserver's compression never uses more than `num_threads`
//! cores, however many children send), and a block is compressed on the
//! thread that read it: no hand-off between threads on the way, which on a
//! busy host costs more than compressing a 4 KiB block. Each connection
//! keeps one built-in compressor (with its working area) per set of
//! parameters it has seen.

use super::budget::Budget;
use super::frame::{self, Reply, Request};
use super::stats::ZipStats;
use crate::rocks::zip::{BuiltinCompressor, ZipParams};
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The compressors one connection has built, by parameters (`None`: those
/// parameters mean no compression).
type Compressors = HashMap<ZipParams, Option<BuiltinCompressor>>;

/// `num_threads` compression slots.
struct Slots {
    free: Mutex<usize>,
    released: Condvar,
}

impl Slots {
    fn take(&self) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.released.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
    }

    fn give_back(&self) {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.released.notify_one();
    }
}

/// What the connection threads share.
pub struct Service {
    pub stats: Arc<ZipStats>,
    budget: Budget,
    slots: Slots,
}

impl Service {
    pub fn new(num_threads: usize, memory_budget: u64, stats: Arc<ZipStats>) -> Arc<Service> {
        Arc::new(Service {
            stats,
            budget: Budget::new(memory_budget),
            slots: Slots {
                free: Mutex::new(num_threads),
                released: Condvar::new(),
            },
        })
    }

    /// Compresses one block, waiting for budget and for a free slot.
    fn compress(
        &self,
        compressors: &mut Compressors,
        params: ZipParams,
        capacity: usize,
        block: &[u8],
    ) -> Reply {
        let bytes = (block.len() + capacity) as u64;
        let len = block.len() as i64;
        let stats = &self.stats;
        stats.queue_depth.inc();
        stats.waiting_bytes.add(len);
        let held = self.budget.reserve(bytes);
        if held.is_some() {
            stats.budget_bytes.set(self.budget.used() as i64);
            self.slots.take();
        }
        stats.queue_depth.dec();
        stats.waiting_bytes.sub(len);
        let Some(held) = held else {
            return Reply::Error(format!(
                "block needs {bytes} bytes, more than the whole memory budget"
            ));
        };
        stats.working_bytes.add(len);
        let reply = compress_one(compressors, params, capacity, block);
        stats.working_bytes.sub(len);
        self.slots.give_back();
        drop(held);
        stats.budget_bytes.set(self.budget.used() as i64);
        reply
    }
}

fn compress_one(
    compressors: &mut Compressors,
    params: ZipParams,
    capacity: usize,
    block: &[u8],
) -> Reply {
    let compressor = match compressors.get_mut(&params) {
        Some(c) => c,
        None => match BuiltinCompressor::new(&params) {
            Ok(c) => compressors.entry(params).or_insert(c),
            Err(e) => return Reply::Error(e.to_string()),
        },
    };
    let Some(compressor) = compressor else {
        return Reply::Error(format!("parameters {params:?} mean no compression"));
    };
    let mut out = vec![0u8; capacity];
    match compressor.compress(block, &mut out) {
        Ok(result) => {
            let bytes = if result.kind == 0 {
                Vec::new()
            } else {
                out.truncate(result.size);
                out
            };
            Reply::Done { result, bytes }
        }
        Err(e) => Reply::Error(e.to_string()),
    }
}

/// Binds `path`, replacing a stale socket file left by a previous run.
pub fn bind(path: &std::path::Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("a zipserver already listens on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        other => other,
    }
}

/// Accepts connections until `stop` is set (checked between accepts; the
/// listener is non-blocking so the loop notices).
pub fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                let service = service.clone();
                std::thread::Builder::new()
                    .name("zip-conn".into())
                    .spawn(move || {
                        service.stats.connections.inc();
                        let r = connection(stream, &service);
                        service.stats.connections.dec();
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "client connection ended");
                        }
                    })?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn connection(stream: UnixStream, service: &Service) -> io::Result<()> {
    let mut r = BufReader::with_capacity(frame::MAX_BLOCK_READ, stream.try_clone()?);
    let mut w = BufWriter::new(stream);
    let mut client = None;
    let mut compressors = Compressors::new();
    while let Some(body) = frame::read_frame(&mut r)? {
        match frame::parse_request(body)? {
            Request::Hello { client: name } => client = Some(service.stats.client(&name)),
            Request::Compress {
                params,
                capacity,
                block,
            } => {
                let len = block.len();
                let reply = service.compress(&mut compressors, params, capacity, &block);
                match &reply {
                    Reply::Done { bytes, .. } => client
                        .get_or_insert_with(|| service.stats.client("unnamed"))
                        .count(len, bytes.len()),
                    Reply::Error(_) => service.stats.errors.inc(),
                }
                frame::write_reply(&mut w, &reply)?;
                w.flush()?;
            }
        }
    }
    Ok(())
}
