//! The compression service on the Unix socket: one thread per client
//! connection reads requests, takes bytes from the memory budget and queues
//! the block; `num_threads` compression threads take blocks from the queue,
//! so no more than `num_threads` cores ever compress, however many children
//! send. Each compression thread keeps one built-in compressor (with its
//! working area) per set of parameters it has seen.

use super::budget::Budget;
use super::frame::{self, Reply, Request};
use super::stats::ZipStats;
use crate::rocks::zip::{BuiltinCompressor, ZipParams};
use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Job {
    params: ZipParams,
    capacity: usize,
    block: Vec<u8>,
    reply: mpsc::Sender<Reply>,
}

/// What the connection threads and compression threads share.
pub struct Service {
    pub stats: Arc<ZipStats>,
    budget: Budget,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Service {
    /// Starts `num_threads` compression threads.
    pub fn start(
        num_threads: usize,
        memory_budget: u64,
        stats: Arc<ZipStats>,
    ) -> io::Result<Arc<Service>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..num_threads {
            let rx = rx.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name(format!("zip-{i}"))
                .spawn(move || compress_loop(&rx, &stats))?;
        }
        Ok(Arc::new(Service {
            stats,
            budget: Budget::new(memory_budget),
            queue: Mutex::new(Some(tx)),
        }))
    }

    /// Compresses one block on a compression thread, waiting for budget
    /// and for a free thread.
    fn compress(&self, params: ZipParams, capacity: usize, block: Vec<u8>) -> Reply {
        let bytes = (block.len() + capacity) as u64;
        let Some(_held) = self.budget.reserve(bytes) else {
            return Reply::Error(format!(
                "block needs {bytes} bytes, more than the whole memory budget"
            ));
        };
        self.stats.budget_bytes.set(self.budget.used() as i64);
        let (reply, answer) = mpsc::channel();
        let len = block.len() as i64;
        let job = Job {
            params,
            capacity,
            block,
            reply,
        };
        let sent = match &*self.queue.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(q) => {
                self.stats.queue_depth.inc();
                self.stats.waiting_bytes.add(len);
                q.send(job).is_ok()
            }
            None => false,
        };
        let r = if sent {
            answer
                .recv()
                .unwrap_or_else(|_| Reply::Error("compression thread is gone".into()))
        } else {
            Reply::Error("zipserver is stopping".into())
        };
        drop(_held);
        self.stats.budget_bytes.set(self.budget.used() as i64);
        r
    }

    /// Lets the compression threads end once the queue is empty.
    pub fn stop(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn compress_loop(rx: &Mutex<mpsc::Receiver<Job>>, stats: &ZipStats) {
    let mut compressors: HashMap<ZipParams, Option<BuiltinCompressor>> = HashMap::new();
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let len = job.block.len() as i64;
        stats.queue_depth.dec();
        stats.waiting_bytes.sub(len);
        stats.working_bytes.add(len);
        let reply = compress_one(&mut compressors, &job);
        stats.working_bytes.sub(len);
        let _ = job.reply.send(reply);
    }
}

fn compress_one(
    compressors: &mut HashMap<ZipParams, Option<BuiltinCompressor>>,
    job: &Job,
) -> Reply {
    let compressor = match compressors.get_mut(&job.params) {
        Some(c) => c,
        None => match BuiltinCompressor::new(&job.params) {
            Ok(c) => compressors.entry(job.params).or_insert(c),
            Err(e) => return Reply::Error(e.to_string()),
        },
    };
    let Some(compressor) = compressor else {
        return Reply::Error(format!("parameters {:?} mean no compression", job.params));
    };
    let mut out = vec![0u8; job.capacity];
    match compressor.compress(&job.block, &mut out) {
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
pub fn bind(path: &Path) -> io::Result<UnixListener> {
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
    service.stop();
    Ok(())
}

fn connection(stream: UnixStream, service: &Service) -> io::Result<()> {
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = BufWriter::new(stream);
    let mut client = String::from("unnamed");
    while let Some(body) = frame::read_frame(&mut r)? {
        match frame::parse_request(body)? {
            Request::Hello { client: name } => {
                service.stats.add_client(&name);
                client = name;
            }
            Request::Compress {
                params,
                capacity,
                block,
            } => {
                let len = block.len();
                let reply = service.compress(params, capacity, block);
                match &reply {
                    Reply::Done { bytes, .. } => service.stats.count(&client, len, bytes.len()),
                    Reply::Error(_) => service.stats.errors.inc(),
                }
                frame::write_reply(&mut w, &reply)?;
                w.flush()?;
            }
        }
    }
    Ok(())
}
