//! `ZIP_SERVER_OPTIONS`: civetweb style, `key=value` pairs separated by `:`
//! where the next `key=` starts, so `listening_ports=127.0.0.1:0:num_threads=2`
//! is two options. Parsed strictly: unknown or repeated keys, empty values
//! and malformed numbers are errors that name the key.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `listening_ports` | `127.0.0.1:8090` | HTTP (`/stat`, `/metrics`): `port` or `ip:port`; port 0 picks a free one |
//! | `num_threads` | number of CPUs | compression threads: the zipserver never uses more cores for compression |
//! | `unix_socket` | `/tmp/zipserver.sock`; a worker uses `WORKER_DB_ROOT/zipserver.sock` | where compression requests arrive |
//! | `memory_budget` | `256M` | bytes of blocks (input and output) held at once; beyond it requests wait |
//! | `client_timeout` | `500ms` | worker side: a block not answered within this is compressed in-process |
//! | `blocks_in_flight` | `4` | worker side: blocks of one compaction output at the zipserver at once (RocksDB's parallel compression threads); 1 sends one block at a time |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An invalid `ZIP_SERVER_OPTIONS` value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("ZIP_SERVER_OPTIONS: {part:?} is not key=value")]
    NotKeyValue { part: String },
    #[error("ZIP_SERVER_OPTIONS: unknown key {key:?} (known: {})", KEYS.join(", "))]
    UnknownKey { key: String },
    #[error("ZIP_SERVER_OPTIONS: {key} is given twice")]
    Repeated { key: String },
    #[error("ZIP_SERVER_OPTIONS: {key}={value:?}: {why}")]
    Invalid {
        key: &'static str,
        value: String,
        why: String,
    },
}

const KEYS: [&str; 6] = [
    "listening_ports",
    "num_threads",
    "unix_socket",
    "memory_budget",
    "client_timeout",
    "blocks_in_flight",
];

/// The validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipServerOptions {
    pub listening_ports: SocketAddr,
    pub num_threads: usize,
    /// `None`: the default for who starts it (see the table above).
    pub unix_socket: Option<PathBuf>,
    pub memory_budget: u64,
    pub client_timeout: Duration,
    pub blocks_in_flight: u32,
}

impl Default for ZipServerOptions {
    fn default() -> Self {
        ZipServerOptions {
            listening_ports: SocketAddr::from(([127, 0, 0, 1], 8090)),
            num_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            unix_socket: None,
            memory_budget: 256 << 20,
            client_timeout: Duration::from_millis(500),
            blocks_in_flight: 4,
        }
    }
}

/// Splits civetweb-style text into `(key, value)` pairs.
fn split(text: &str) -> Result<Vec<(String, String)>, OptionsError> {
    let starts_key = |s: &str| {
        s.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in text.trim().split(':') {
        if starts_key(part) {
            let (k, v) = part.split_once('=').expect("checked by starts_key");
            pairs.push((k.to_owned(), v.to_owned()));
        } else if let Some((_, v)) = pairs.last_mut() {
            v.push(':');
            v.push_str(part);
        } else {
            return Err(OptionsError::NotKeyValue {
                part: part.to_owned(),
            });
        }
    }
    Ok(pairs)
}

impl ZipServerOptions {
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        let mut o = ZipServerOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in split(text)? {
            if seen.contains(&key) {
                return Err(OptionsError::Repeated { key });
            }
            seen.push(key.clone());
            let Some(&name) = KEYS.iter().find(|k| **k == key) else {
                return Err(OptionsError::UnknownKey { key });
            };
            let invalid = |why: &str| OptionsError::Invalid {
                key: name,
                value: value.clone(),
                why: why.to_owned(),
            };
            if value.trim().is_empty() {
                return Err(invalid("empty value"));
            }
            match name {
                "listening_ports" => {
                    o.listening_ports = match value.parse::<u16>() {
                        Ok(port) => SocketAddr::from(([0, 0, 0, 0], port)),
                        Err(_) => value.parse().map_err(|_| {
                            invalid("expected one port or ip:port, e.g. 8090 or 127.0.0.1:0")
                        })?,
                    }
                }
                "num_threads" => {
                    o.num_threads = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or_else(|| invalid("expected a whole number from 1 to 1024"))?
                }
                "unix_socket" => {
                    let p = PathBuf::from(&value);
                    if !p.is_absolute() {
                        return Err(invalid("must be an absolute path"));
                    }
                    // sockaddr_un.sun_path holds 108 bytes with the NUL.
                    if value.len() > 107 {
                        return Err(invalid("longer than a Unix socket path may be (107 bytes)"));
                    }
                    o.unix_socket = Some(p);
                }
                "memory_budget" => {
                    o.memory_budget =
                        crate::worker::config::parse_bytes("ZIP_SERVER_OPTIONS", &value).map_err(
                            |_| invalid("expected a byte count such as 1048576, 512K, 64M or 2G"),
                        )?
                }
                "client_timeout" => {
                    o.client_timeout =
                        crate::worker::config::parse_duration("ZIP_SERVER_OPTIONS", &value)
                            .ok()
                            .filter(|d| !d.is_zero())
                            .ok_or_else(|| {
                                invalid("expected a positive duration such as 500ms or 2s")
                            })?
                }
                "blocks_in_flight" => {
                    o.blocks_in_flight = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| invalid("expected a whole number from 1 to 64"))?
                }
                _ => unreachable!("every key of KEYS has an arm"),
            }
        }
        Ok(o)
    }

    /// The text form, for the environment of a zipserver the worker starts.
    pub fn render(&self, unix_socket: &std::path::Path) -> String {
        format!(
            "listening_ports={}:num_threads={}:unix_socket={}:memory_budget={}:client_timeout={}ms:blocks_in_flight={}",
            self.listening_ports,
            self.num_threads,
            unix_socket.display(),
            self.memory_budget,
            self.client_timeout.as_millis(),
            self.blocks_in_flight
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civetweb_style_with_colons_in_values() {
        let o = ZipServerOptions::parse(
            "listening_ports=127.0.0.1:0:num_threads=2:unix_socket=/tmp/z.sock:memory_budget=64M",
        )
        .unwrap();
        assert_eq!(o.listening_ports, "127.0.0.1:0".parse().unwrap());
        assert_eq!(o.num_threads, 2);
        assert_eq!(o.unix_socket, Some(PathBuf::from("/tmp/z.sock")));
        assert_eq!(o.memory_budget, 64 << 20);
        let o = ZipServerOptions::parse("listening_ports=8090:num_threads=32").unwrap();
        assert_eq!(o.listening_ports, "0.0.0.0:8090".parse().unwrap());
        assert_eq!(o.num_threads, 32);
        let again = ZipServerOptions::parse(&o.render(std::path::Path::new("/x/z.sock"))).unwrap();
        assert_eq!(again.num_threads, 32);
        assert_eq!(again.unix_socket, Some(PathBuf::from("/x/z.sock")));
    }

    #[test]
    fn strict_errors_name_the_key() {
        let err = |t: &str| ZipServerOptions::parse(t).unwrap_err().to_string();
        assert!(err("num_thread=2").contains("unknown key \"num_thread\""));
        assert!(err("num_threads=2:num_threads=3").contains("given twice"));
        assert!(err("num_threads=0").contains("num_threads"));
        assert!(err("num_threads=").contains("empty value"));
        assert!(err("listening_ports=here").contains("listening_ports"));
        assert!(err("unix_socket=relative.sock").contains("absolute"));
        assert!(err("memory_budget=lots").contains("memory_budget"));
        assert!(err("client_timeout=0s").contains("client_timeout"));
        assert!(err("8090").contains("not key=value"));
    }
}
