//! The Unix socket: one thread per client connection. A connection either
//! hands over a ring (and then only stays open while the child lives), or
//! carries whole blocks, one request at a time, for blocks that do not fit
//! a ring slot or for clients without rings: each read into memory under
//! the budget, then compressed on the connection's thread once it holds a
//! compression permit.

use super::compressors::Compressors;
use super::rings::ServerRing;
use super::service::Service;
use crate::frame::{self, Reply, Request};
use crate::shm::fdpass;
use crate::shm::layout::{Ring, RingLayout};
use crate::shm::map::SharedMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    // The first bytes may carry a ring's memfd.
    let mut head = vec![0u8; 4096];
    let (n, fd) = fdpass::recv_with_fd(&stream, &mut head)?;
    head.truncate(n);
    let mut r = BufReader::with_capacity(
        frame::MAX_BLOCK_READ,
        io::Cursor::new(head).chain(stream.try_clone()?),
    );
    let mut w = BufWriter::new(stream.try_clone()?);
    let mut client = None;
    let mut compressors = Compressors::default();
    while let Some(body) = frame::read_frame(&mut r)? {
        match frame::parse_request(body)? {
            Request::Hello { client: name } => client = Some(service.stats.client(&name)),
            Request::RingHello { layout, client } => {
                return serve_ring(&stream, r, service, layout, &client, fd);
            }
            Request::Compress {
                params,
                capacity,
                block,
            } => {
                let reply =
                    match service.compress_socket_block(&mut compressors, params, capacity, &block)
                    {
                        Ok((result, bytes)) => {
                            client
                                .get_or_insert_with(|| service.stats.client("unnamed"))
                                .count(block.len(), bytes.len());
                            Reply::Done { result, bytes }
                        }
                        Err(e) => {
                            service.stats.errors.inc();
                            Reply::Error(e.to_string())
                        }
                    };
                frame::write_reply(&mut w, &reply)?;
                w.flush()?;
            }
        }
    }
    Ok(())
}

/// Takes a child's ring into service until its connection ends.
fn serve_ring(
    stream: &UnixStream,
    mut rest: impl Read,
    service: &Service,
    layout: RingLayout,
    client: &str,
    fd: Option<OwnedFd>,
) -> io::Result<()> {
    let ring = fd
        .ok_or_else(|| "no memfd came with the ring hello".to_owned())
        .and_then(|fd| {
            let layout = layout.checked().map_err(|e| e.to_string())?;
            let map = SharedMap::receive(&fd, layout.size()).map_err(|e| e.to_string())?;
            Ring::new(map, layout).map_err(|e| e.to_string())
        });
    let ring = match ring {
        Ok(ring) => Arc::new(ServerRing {
            ring,
            client: service.stats.client(client),
        }),
        Err(why) => {
            tracing::warn!(client, why, "ring refused");
            (&*stream).write_all(&frame::ring_answer(Err(&why)))?;
            return Ok(());
        }
    };
    service.rings.add(ring.clone());
    service.stats.rings.inc();
    let answered = fdpass::send_with_fd(stream, &frame::ring_answer(Ok(())), service.control_fd());
    if answered.is_ok() {
        // Nothing more comes; the end of the stream is the child's end.
        let mut sink = [0u8; 64];
        while matches!(rest.read(&mut sink), Ok(n) if n > 0) {}
    }
    service.rings.remove(&ring);
    service.stats.rings.dec();
    answered
}
