//! The framed protocol on the zipserver's Unix socket.
//!
//! Every frame is a little-endian `u32` length followed by that many bytes;
//! the first byte of a request says what it is. A connection carries one
//! request at a time.
//!
//! | frame | bytes after the length |
//! | --- | --- |
//! | hello (client, first) | `1`, the client's name (UTF-8): its attempt name |
//! | compress (client) | `2`, [`ZipParams`] (30 bytes), capacity `u32`, the uncompressed block |
//! | reply (server) | status `u8` (0 ok, 1 error), type `u8`, size `u32`, then `size` compressed bytes when type != 0, or the error text |
//! | ring hello (client, first and only) | `3`, slots `u32`, input area `u32`, output area `u32`, the client's name; the ring's `memfd` attached (`SCM_RIGHTS`) |
//! | ring answer (server) | `0` with the control page's `memfd` attached, or `1` and why not |
//!
//! A reply's type and size are exactly what RocksDB's built-in
//! `Compressor::CompressBlock` produced: type 0 with size 0 (bypassed) or 1
//! (rejected) carries no bytes. After a ring answer the connection carries
//! nothing more: it stays open while both sides live, and its end tells the
//! other side that the ring is gone (`crate::shm`).

use crate::codec::params::PARAMS_LEN;
use crate::codec::{Compressed, ZipParams};
use crate::shm::layout::RingLayout;
use std::io::{self, Read, Write};

pub const HELLO: u8 = 1;
pub const COMPRESS: u8 = 2;
pub const RING_HELLO: u8 = 3;
/// The largest frame either side accepts: RocksDB does not compress blocks
/// above 2 GiB, but a zipserver has no business with blocks this large.
pub const MAX_FRAME: usize = 64 << 20;
/// Read buffer of either side: a frame of a block up to 64 KiB arrives in
/// one read.
pub const MAX_BLOCK_READ: usize = 64 << 10;

/// A request as the server reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Hello {
        client: String,
    },
    RingHello {
        layout: RingLayout,
        client: String,
    },
    Compress {
        params: ZipParams,
        capacity: usize,
        block: Vec<u8>,
    },
}

/// A server's answer to a compress request.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Done { result: Compressed, bytes: Vec<u8> },
    Error(String),
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Reads one frame's body; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(bad(format!("frame of {len} bytes exceeds {MAX_FRAME}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

fn write_frame(w: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len)
        .ok()
        .filter(|l| *l as usize <= MAX_FRAME)
        .ok_or_else(|| bad(format!("frame of {len} bytes exceeds {MAX_FRAME}")))?;
    let mut buf = Vec::with_capacity(4 + len as usize);
    buf.extend_from_slice(&len.to_le_bytes());
    for p in parts {
        buf.extend_from_slice(p);
    }
    w.write_all(&buf)
}

pub fn write_hello(w: &mut impl Write, client: &str) -> io::Result<()> {
    write_frame(w, &[&[HELLO], client.as_bytes()])
}

pub fn write_compress(
    w: &mut impl Write,
    params: &ZipParams,
    capacity: usize,
    block: &[u8],
) -> io::Result<()> {
    let cap = u32::try_from(capacity).map_err(|_| bad("capacity exceeds u32"))?;
    write_frame(
        w,
        &[&[COMPRESS], &params.encode(), &cap.to_le_bytes(), block],
    )
}

pub fn parse_request(body: Vec<u8>) -> io::Result<Request> {
    match body.first() {
        Some(&HELLO) => Ok(Request::Hello {
            client: String::from_utf8_lossy(&body[1..]).into_owned(),
        }),
        Some(&COMPRESS) if body.len() >= 1 + PARAMS_LEN + 4 => {
            let mut p = [0u8; PARAMS_LEN];
            p.copy_from_slice(&body[1..1 + PARAMS_LEN]);
            let params = ZipParams::decode(&p);
            let at = 1 + PARAMS_LEN;
            let capacity =
                u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes")) as usize;
            let block = body[at + 4..].to_vec();
            Ok(Request::Compress {
                params,
                capacity,
                block,
            })
        }
        Some(&COMPRESS) => Err(bad("compress frame too short")),
        Some(&RING_HELLO) if body.len() >= 13 => {
            let w = |i: usize| {
                u32::from_le_bytes(body[1 + 4 * i..5 + 4 * i].try_into().expect("4 bytes"))
            };
            Ok(Request::RingHello {
                layout: RingLayout {
                    slots: w(0),
                    slot_in: w(1),
                    slot_out: w(2),
                },
                client: String::from_utf8_lossy(&body[13..]).into_owned(),
            })
        }
        Some(&RING_HELLO) => Err(bad("ring hello too short")),
        Some(other) => Err(bad(format!("unknown request kind {other}"))),
        None => Err(bad("empty frame")),
    }
}

/// The body of a ring hello (framed; the caller attaches the `memfd`).
pub fn ring_hello(layout: &RingLayout, client: &str) -> Vec<u8> {
    let mut body = vec![RING_HELLO];
    for w in [layout.slots, layout.slot_in, layout.slot_out] {
        body.extend_from_slice(&w.to_le_bytes());
    }
    body.extend_from_slice(client.as_bytes());
    framed(&body)
}

/// The body of a ring answer: `Ok` (the caller attaches the control page)
/// or why the ring was refused.
pub fn ring_answer(answer: Result<(), &str>) -> Vec<u8> {
    match answer {
        Ok(()) => framed(&[0]),
        Err(why) => framed(&[&[1u8][..], why.as_bytes()].concat()),
    }
}

/// Reads a ring answer's body.
pub fn parse_ring_answer(body: &[u8]) -> io::Result<Result<(), String>> {
    match body.first() {
        Some(0) => Ok(Ok(())),
        Some(1) => Ok(Err(String::from_utf8_lossy(&body[1..]).into_owned())),
        _ => Err(bad("malformed ring answer")),
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + body.len());
    f.extend_from_slice(&(body.len() as u32).to_le_bytes());
    f.extend_from_slice(body);
    f
}

pub fn write_reply(w: &mut impl Write, reply: &Reply) -> io::Result<()> {
    match reply {
        Reply::Done { result, bytes } => {
            let size = u32::try_from(result.size).map_err(|_| bad("size exceeds u32"))?;
            let head = [&[0u8, result.kind][..], &size.to_le_bytes()].concat();
            write_frame(w, &[&head, bytes])
        }
        Reply::Error(msg) => {
            let head = [0u8, 0, 0, 0];
            write_frame(w, &[&[1u8, 0], &head, msg.as_bytes()])
        }
    }
}

pub fn parse_reply(body: &[u8]) -> io::Result<Reply> {
    if body.len() < 6 {
        return Err(bad("reply frame too short"));
    }
    let kind = body[1];
    let size = u32::from_le_bytes(body[2..6].try_into().expect("4 bytes")) as usize;
    let rest = &body[6..];
    match body[0] {
        0 => {
            let expected = if kind == 0 { 0 } else { size };
            if rest.len() != expected {
                return Err(bad(format!(
                    "reply carries {} bytes for type {kind} size {size}",
                    rest.len()
                )));
            }
            Ok(Reply::Done {
                result: Compressed { size, kind },
                bytes: rest.to_vec(),
            })
        }
        1 => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
        s => Err(bad(format!("unknown reply status {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let params = ZipParams {
            kind: 7,
            checksum: 1,
            level: -3,
            window_bits: -14,
            strategy: 2,
            max_dict_bytes: 5,
            zstd_max_train_bytes: 6,
            parallel_threads: 1,
            max_compressed_bytes_per_kb: 896,
        };
        let mut buf = Vec::new();
        write_hello(&mut buf, "inst/1/db/job-00001-00/att-00").unwrap();
        write_compress(&mut buf, &params, 900, b"block").unwrap();
        let mut r = &buf[..];
        assert_eq!(
            parse_request(read_frame(&mut r).unwrap().unwrap()).unwrap(),
            Request::Hello {
                client: "inst/1/db/job-00001-00/att-00".into()
            }
        );
        assert_eq!(
            parse_request(read_frame(&mut r).unwrap().unwrap()).unwrap(),
            Request::Compress {
                params,
                capacity: 900,
                block: b"block".to_vec()
            }
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);

        let layout = RingLayout {
            slots: 8,
            slot_in: 65536,
            slot_out: 65536,
        };
        let hello = ring_hello(&layout, "att");
        let body = read_frame(&mut &hello[..]).unwrap().unwrap();
        assert_eq!(
            parse_request(body).unwrap(),
            Request::RingHello {
                layout,
                client: "att".into()
            }
        );
        for answer in [Ok(()), Err("no")] {
            let f = ring_answer(answer);
            let body = read_frame(&mut &f[..]).unwrap().unwrap();
            assert_eq!(
                parse_ring_answer(&body).unwrap(),
                answer.map_err(str::to_owned)
            );
        }

        for reply in [
            Reply::Done {
                result: Compressed { size: 3, kind: 1 },
                bytes: b"abc".to_vec(),
            },
            Reply::Done {
                result: Compressed { size: 1, kind: 0 },
                bytes: Vec::new(),
            },
            Reply::Error("over budget".into()),
        ] {
            let mut buf = Vec::new();
            write_reply(&mut buf, &reply).unwrap();
            let body = read_frame(&mut &buf[..]).unwrap().unwrap();
            assert_eq!(parse_reply(&body).unwrap(), reply);
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(parse_request(vec![9]).is_err());
        assert!(parse_request(vec![COMPRESS, 1, 2]).is_err());
        assert!(parse_reply(&[0, 1, 5, 0, 0, 0, 1]).is_err());
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(read_frame(&mut &huge[..]).is_err());
    }
}
