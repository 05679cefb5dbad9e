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
//!
//! A reply's type and size are exactly what RocksDB's built-in
//! `Compressor::CompressBlock` produced: type 0 with size 0 (bypassed) or 1
//! (rejected) carries no bytes.

use crate::rocks::zip::{Compressed, ZipParams};
use std::io::{self, Read, Write};

pub const HELLO: u8 = 1;
pub const COMPRESS: u8 = 2;
/// The largest frame either side accepts: RocksDB does not compress blocks
/// above 2 GiB, but a zipserver has no business with blocks this large.
pub const MAX_FRAME: usize = 64 << 20;
const PARAMS_LEN: usize = 30;
/// Read buffer of either side: a frame of a block up to 64 KiB arrives in
/// one read.
pub const MAX_BLOCK_READ: usize = 64 << 10;

/// A request as the server reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Hello {
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

fn encode_params(p: &ZipParams) -> [u8; PARAMS_LEN] {
    let mut b = [0u8; PARAMS_LEN];
    b[0] = p.kind;
    b[1] = p.checksum;
    let words = [
        p.level as u32,
        p.window_bits as u32,
        p.strategy as u32,
        p.max_dict_bytes,
        p.zstd_max_train_bytes,
        p.parallel_threads,
        p.max_compressed_bytes_per_kb,
    ];
    for (i, w) in words.iter().enumerate() {
        b[2 + 4 * i..6 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    b
}

fn decode_params(b: &[u8]) -> ZipParams {
    let w = |i: usize| u32::from_le_bytes(b[2 + 4 * i..6 + 4 * i].try_into().expect("4 bytes"));
    ZipParams {
        kind: b[0],
        checksum: b[1],
        level: w(0) as i32,
        window_bits: w(1) as i32,
        strategy: w(2) as i32,
        max_dict_bytes: w(3),
        zstd_max_train_bytes: w(4),
        parallel_threads: w(5),
        max_compressed_bytes_per_kb: w(6),
    }
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
        &[
            &[COMPRESS],
            &encode_params(params),
            &cap.to_le_bytes(),
            block,
        ],
    )
}

pub fn parse_request(body: Vec<u8>) -> io::Result<Request> {
    match body.first() {
        Some(&HELLO) => Ok(Request::Hello {
            client: String::from_utf8_lossy(&body[1..]).into_owned(),
        }),
        Some(&COMPRESS) if body.len() >= 1 + PARAMS_LEN + 4 => {
            let params = decode_params(&body[1..1 + PARAMS_LEN]);
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
        Some(other) => Err(bad(format!("unknown request kind {other}"))),
        None => Err(bad("empty frame")),
    }
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
