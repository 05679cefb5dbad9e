//! `ZIP_SERVER_OPTIONS`: civetweb style, `key=value` pairs separated by `:`
//! where the next `key=` starts, so `listening_ports=127.0.0.1:0:num_threads=2`
//! is two options. Parsed strictly: unknown or repeated keys, empty values
//! and malformed numbers are errors that name the key. A worker also reads
//! `off` (or `false`, `none`): no zipserver, and `on` (or `true`): a
//! zipserver with the defaults and HTTP on a free loopback port
//! ([`Setting`]).
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `listening_ports` | `127.0.0.1:8090`; a worker told `on`: `127.0.0.1:0` | HTTP (`/stat`, `/metrics`): `port` or `ip:port`; port 0 picks a free one |
//! | `num_threads` | number of CPUs | compression threads: the zipserver never compresses on more cores |
//! | `unix_socket` | `/tmp/zipserver.sock`; a worker uses `WORKER_DB_ROOT/zipserver.sock` | where children connect |
//! | `memory_budget` | `256M` | bytes of blocks (input and output) being compressed or read from sockets at once; beyond it blocks wait, and a block larger than all of it is refused |
//! | `server_spin` | `50us` | how long an idle compression thread keeps polling the rings before it sleeps |
//! | `pin_threads` | `true` | pin each compression thread to a CPU and have children hand blocks to the thread on their own CPU (`crate::shm::control`); `false` lets the scheduler place them |
//! | `client_timeout` | `500ms` | child side: a block not answered within this is compressed in-process |
//! | `blocks_in_flight` | `4` | child side: blocks of one compaction output at the zipserver at once (RocksDB's parallel compression threads); 1 sends one block at a time |
//! | `client_spin` | `0us` | child side: how long a thread waiting for its block polls before it sleeps |
//! | `transport` | `ring` | child side: `ring` (shared memory, several blocks per wake-up) or `socket` (one round trip per block, as before rings) |

use crate::units;
use serde::{Deserialize, Serialize};
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
        why: &'static str,
    },
}

const KEYS: [&str; 10] = [
    "listening_ports",
    "num_threads",
    "unix_socket",
    "memory_budget",
    "server_spin",
    "pin_threads",
    "client_timeout",
    "blocks_in_flight",
    "client_spin",
    "transport",
];

/// How a child sends its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A shared-memory ring per child; blocks that do not fit a slot go
    /// over the socket.
    #[default]
    Ring,
    /// Every block is one round trip on the Unix socket.
    Socket,
}

/// The validated options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipServerOptions {
    pub listening_ports: SocketAddr,
    pub num_threads: usize,
    /// `None`: the default for who starts it (see the table above).
    pub unix_socket: Option<PathBuf>,
    pub memory_budget: u64,
    pub server_spin: Duration,
    pub pin_threads: bool,
    pub client_timeout: Duration,
    pub blocks_in_flight: u32,
    pub client_spin: Duration,
    pub transport: Transport,
}

impl Default for ZipServerOptions {
    fn default() -> Self {
        ZipServerOptions {
            listening_ports: SocketAddr::from(([127, 0, 0, 1], 8090)),
            num_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            unix_socket: None,
            memory_budget: 256 << 20,
            server_spin: Duration::from_micros(50),
            pin_threads: true,
            client_timeout: Duration::from_millis(500),
            blocks_in_flight: 4,
            client_spin: Duration::ZERO,
            transport: Transport::Ring,
        }
    }
}

/// What a worker makes of `ZIP_SERVER_OPTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `off`, `false` or `none`: no zipserver.
    Off,
    /// Options given (or `on`, `true`: the defaults, HTTP on a free
    /// loopback port): a zipserver with these.
    On(ZipServerOptions),
}

impl Setting {
    pub fn parse(text: &str) -> Result<Setting, OptionsError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "none" => Ok(Setting::Off),
            "on" | "true" => Ok(Setting::On(ZipServerOptions::started_by_default())),
            _ => ZipServerOptions::parse(text).map(Setting::On),
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
    if text.trim().is_empty() {
        return Ok(pairs);
    }
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

/// A whole number in `range`.
fn count<T: std::str::FromStr + PartialOrd>(
    value: &str,
    range: std::ops::RangeInclusive<T>,
) -> Option<T> {
    value.parse().ok().filter(|n| range.contains(n))
}

impl ZipServerOptions {
    /// The options of a zipserver a worker is told to start with `on`:
    /// like the defaults, but HTTP on a free loopback port, so several
    /// workers on one host never collide.
    pub fn started_by_default() -> Self {
        ZipServerOptions {
            listening_ports: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ZipServerOptions::default()
        }
    }

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
            o.set(name, &value)?;
        }
        Ok(o)
    }

    fn set(&mut self, key: &'static str, value: &str) -> Result<(), OptionsError> {
        let invalid = |why: &'static str| OptionsError::Invalid {
            key,
            value: value.to_owned(),
            why,
        };
        if value.trim().is_empty() {
            return Err(invalid("empty value"));
        }
        let spin = |v: &str| {
            units::parse_duration(v)
                .filter(|d| *d <= Duration::from_millis(10))
                .ok_or_else(|| invalid("expected a duration up to 10ms, such as 0us, 50us or 1ms"))
        };
        match key {
            "listening_ports" => {
                self.listening_ports = match value.parse::<u16>() {
                    Ok(port) => SocketAddr::from(([0, 0, 0, 0], port)),
                    Err(_) => value.parse().map_err(|_| {
                        invalid("expected one port or ip:port, e.g. 8090 or 127.0.0.1:0")
                    })?,
                }
            }
            "num_threads" => {
                self.num_threads = count(value, 1..=1024)
                    .ok_or_else(|| invalid("expected a whole number from 1 to 1024"))?
            }
            "unix_socket" => {
                let p = PathBuf::from(value);
                if !p.is_absolute() {
                    return Err(invalid("must be an absolute path"));
                }
                // sockaddr_un.sun_path holds 108 bytes with the NUL.
                if value.len() > 107 {
                    return Err(invalid("longer than a Unix socket path may be (107 bytes)"));
                }
                self.unix_socket = Some(p);
            }
            "memory_budget" => {
                self.memory_budget = units::parse_bytes(value).ok_or_else(|| {
                    invalid("expected a byte count such as 1048576, 512K, 64M or 2G")
                })?
            }
            "server_spin" => self.server_spin = spin(value)?,
            "pin_threads" => {
                self.pin_threads = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("expected true or false")),
                }
            }
            "client_timeout" => {
                self.client_timeout = units::parse_duration(value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| invalid("expected a positive duration such as 500ms or 2s"))?
            }
            "blocks_in_flight" => {
                self.blocks_in_flight = count(value, 1..=64)
                    .ok_or_else(|| invalid("expected a whole number from 1 to 64"))?
            }
            "client_spin" => self.client_spin = spin(value)?,
            "transport" => {
                self.transport = match value {
                    "ring" => Transport::Ring,
                    "socket" => Transport::Socket,
                    _ => return Err(invalid("expected ring or socket")),
                }
            }
            _ => unreachable!("every key of KEYS has an arm"),
        }
        Ok(())
    }

    /// The text form, for the environment of a zipserver a worker starts.
    pub fn render(&self, unix_socket: &std::path::Path) -> String {
        format!(
            "listening_ports={}:num_threads={}:unix_socket={}:memory_budget={}:server_spin={}:pin_threads={}:client_timeout={}:blocks_in_flight={}:client_spin={}:transport={}",
            self.listening_ports,
            self.num_threads,
            unix_socket.display(),
            self.memory_budget,
            units::render_duration(self.server_spin),
            self.pin_threads,
            units::render_duration(self.client_timeout),
            self.blocks_in_flight,
            units::render_duration(self.client_spin),
            match self.transport {
                Transport::Ring => "ring",
                Transport::Socket => "socket",
            }
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
        let o = ZipServerOptions::parse(
            "listening_ports=8090:num_threads=32:server_spin=20us:client_spin=5us:transport=socket:pin_threads=false",
        )
        .unwrap();
        assert_eq!(o.listening_ports, "0.0.0.0:8090".parse().unwrap());
        assert_eq!(o.num_threads, 32);
        assert_eq!(o.server_spin, Duration::from_micros(20));
        assert_eq!(o.transport, Transport::Socket);
        assert!(!o.pin_threads);
        let again = ZipServerOptions::parse(&o.render(std::path::Path::new("/x/z.sock"))).unwrap();
        assert_eq!(
            again,
            ZipServerOptions {
                unix_socket: Some(PathBuf::from("/x/z.sock")),
                ..o
            }
        );
        assert_eq!(
            ZipServerOptions::parse("").unwrap(),
            ZipServerOptions::default()
        );
    }

    #[test]
    fn off_turns_it_off() {
        for off in ["off", "OFF", " false ", "none"] {
            assert_eq!(Setting::parse(off).unwrap(), Setting::Off);
        }
        assert!(
            matches!(Setting::parse("num_threads=1"), Ok(Setting::On(o)) if o.num_threads == 1)
        );
        for on in ["on", "TRUE"] {
            assert_eq!(
                Setting::parse(on).unwrap(),
                Setting::On(ZipServerOptions::started_by_default())
            );
        }
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
        assert!(err("server_spin=1s").contains("server_spin"));
        assert!(err("transport=pipe").contains("transport"));
        assert!(err("pin_threads=yes").contains("pin_threads"));
        assert!(err("8090").contains("not key=value"));
    }
}
