//! Worker configuration: environment variables with ToplingDB's names over an
//! optional TOML file (`--config`) whose keys are the same names in lower
//! case. The environment wins over the file. Everything is validated at
//! start-up; an error names the setting and what is wrong with it.
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | `LISTEN_ADDR` | `0.0.0.0:8080` | HTTP address; port 0 picks a free port |
//! | `ADVERTISE_ADDR` | the bound address | how hosters and pages reach this worker |
//! | `WORKER_DB_ROOT` | `/tmp/dcompact-worker` | attempt directories live below it |
//! | `DEL_WORKER_TEMP_DB` | `false` | remove an attempt's directory when it ends |
//! | `NFS_MOUNT_ROOT` | unset | hoster paths map to `<root>/<instance_name>/...`; unset: same paths as the hoster |
//! | `MAX_PARALLEL_COMPACTIONS` | number of CPUs | attempts running at once |
//! | `MAX_WAITING_COMPACTIONS` | 2 × parallel | attempts queued beyond that; more get 503 |
//! | `RESULT_RETENTION` | `10m` | how long a finished attempt stays answerable by `/probe` |
//! | `MAX_REQUEST_BYTES` | `64MiB` as bytes (67108864) | larger request bodies get 413 |
//! | `WORKER_AUTH_TOKEN` | unset | when set, `/dcompact` and `/shutdown` need `Authorization: Bearer <token>` |
//! | `MULTI_PROCESS`, `NFS_DYNAMIC_MOUNT`, `PLUGINS`, `ZIP_SERVER_OPTIONS`, `ETCD_URL` | off | not yet in this build: setting them is refused at start-up |

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration error, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML for the worker: {source}")]
    ParseFile {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{name}={value:?}: {why}")]
    Invalid {
        name: &'static str,
        value: String,
        why: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub listen: SocketAddr,
    /// `None`: the address the listener bound.
    pub advertise_addr: Option<String>,
    pub worker_db_root: PathBuf,
    pub del_worker_temp_db: bool,
    pub nfs_mount_root: Option<PathBuf>,
    pub max_parallel_compactions: usize,
    pub max_waiting_compactions: usize,
    pub result_retention: Duration,
    pub max_request_bytes: usize,
    pub auth_token: Option<String>,
}

/// The TOML file: every key optional, same names as the environment in
/// lower case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen_addr: Option<String>,
    advertise_addr: Option<String>,
    worker_db_root: Option<String>,
    del_worker_temp_db: Option<toml::Value>,
    nfs_mount_root: Option<String>,
    max_parallel_compactions: Option<toml::Value>,
    max_waiting_compactions: Option<toml::Value>,
    result_retention: Option<String>,
    max_request_bytes: Option<toml::Value>,
    worker_auth_token: Option<String>,
    multi_process: Option<toml::Value>,
    nfs_dynamic_mount: Option<toml::Value>,
    plugins: Option<String>,
    zip_server_options: Option<String>,
    etcd_url: Option<String>,
}

/// Where settings come from: the environment first, then the file.
struct Sources<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: FileConfig,
}

impl Sources<'_> {
    fn get(&self, name: &'static str) -> Option<String> {
        if let Some(v) = (self.env)(name) {
            return Some(v);
        }
        let f = &self.file;
        let value = |v: &Option<toml::Value>| {
            v.as_ref().map(|v| match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        match name {
            "LISTEN_ADDR" => f.listen_addr.clone(),
            "ADVERTISE_ADDR" => f.advertise_addr.clone(),
            "WORKER_DB_ROOT" => f.worker_db_root.clone(),
            "DEL_WORKER_TEMP_DB" => value(&f.del_worker_temp_db),
            "NFS_MOUNT_ROOT" => f.nfs_mount_root.clone(),
            "MAX_PARALLEL_COMPACTIONS" => value(&f.max_parallel_compactions),
            "MAX_WAITING_COMPACTIONS" => value(&f.max_waiting_compactions),
            "RESULT_RETENTION" => f.result_retention.clone(),
            "MAX_REQUEST_BYTES" => value(&f.max_request_bytes),
            "WORKER_AUTH_TOKEN" => f.worker_auth_token.clone(),
            "MULTI_PROCESS" => value(&f.multi_process),
            "NFS_DYNAMIC_MOUNT" => value(&f.nfs_dynamic_mount),
            "PLUGINS" => f.plugins.clone(),
            "ZIP_SERVER_OPTIONS" => f.zip_server_options.clone(),
            "ETCD_URL" => f.etcd_url.clone(),
            _ => None,
        }
        .filter(|v| !v.is_empty())
    }
}

fn invalid(name: &'static str, value: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        why: why.into(),
    }
}

pub fn parse_bool(name: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            name,
            v,
            "expected true/false (or 1/0, yes/no, on/off)",
        )),
    }
}

fn parse_count(name: &'static str, v: &str, min: usize) -> Result<usize, ConfigError> {
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| invalid(name, v, "expected a whole number"))?;
    if n < min {
        return Err(invalid(name, v, format!("must be at least {min}")));
    }
    Ok(n)
}

/// Parses "250ms", "30s", "10m", "2h" (a bare number is seconds).
pub fn parse_duration(name: &'static str, v: &str) -> Result<Duration, ConfigError> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| invalid(name, v, "expected a duration such as 500ms, 30s, 10m or 2h"))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(invalid(name, v, "unit must be ms, s, m or h")),
    };
    Ok(d)
}

impl WorkerConfig {
    /// Loads from the process environment and the optional file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, &|name| std::env::var(name).ok())
    }

    /// Loads with an explicit environment (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = match file {
            None => FileConfig::default(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.to_owned(),
                        source,
                    })?;
                toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
                    path: path.to_owned(),
                    source: Box::new(source),
                })?
            }
        };
        let src = Sources { env, file };

        for name in ["MULTI_PROCESS", "NFS_DYNAMIC_MOUNT"] {
            if let Some(v) = src.get(name) {
                if parse_bool(name, &v)? {
                    return Err(invalid(
                        name,
                        &v,
                        "not supported by this build yet; leave it unset or false",
                    ));
                }
            }
        }
        for name in ["PLUGINS", "ZIP_SERVER_OPTIONS", "ETCD_URL"] {
            if let Some(v) = src.get(name) {
                return Err(invalid(
                    name,
                    &v,
                    "not supported by this build yet; leave it unset",
                ));
            }
        }

        let listen_raw = src
            .get("LISTEN_ADDR")
            .unwrap_or_else(|| "0.0.0.0:8080".into());
        let listen = listen_raw.parse().map_err(|_| {
            invalid(
                "LISTEN_ADDR",
                &listen_raw,
                "expected ip:port, e.g. 127.0.0.1:8080",
            )
        })?;

        let advertise_addr = src.get("ADVERTISE_ADDR");
        if let Some(a) = &advertise_addr {
            if a.contains(char::is_whitespace) || a.contains('/') {
                return Err(invalid("ADVERTISE_ADDR", a, "expected host:port"));
            }
        }

        let root_raw = src
            .get("WORKER_DB_ROOT")
            .unwrap_or_else(|| "/tmp/dcompact-worker".into());
        let worker_db_root = PathBuf::from(&root_raw);
        if !worker_db_root.is_absolute() {
            return Err(invalid(
                "WORKER_DB_ROOT",
                &root_raw,
                "must be an absolute path",
            ));
        }

        let del_worker_temp_db = match src.get("DEL_WORKER_TEMP_DB") {
            Some(v) => parse_bool("DEL_WORKER_TEMP_DB", &v)?,
            None => false,
        };

        let nfs_mount_root = match src.get("NFS_MOUNT_ROOT") {
            Some(v) => {
                let p = PathBuf::from(&v);
                crate::protocol::attempt::check_normal(&v, "NFS_MOUNT_ROOT")
                    .map_err(|e| invalid("NFS_MOUNT_ROOT", &v, e.to_string()))?;
                Some(p)
            }
            None => None,
        };

        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let max_parallel_compactions = match src.get("MAX_PARALLEL_COMPACTIONS") {
            Some(v) => parse_count("MAX_PARALLEL_COMPACTIONS", &v, 1)?,
            None => cpus,
        };
        let max_waiting_compactions = match src.get("MAX_WAITING_COMPACTIONS") {
            Some(v) => parse_count("MAX_WAITING_COMPACTIONS", &v, 0)?,
            None => 2 * max_parallel_compactions,
        };
        let result_retention = match src.get("RESULT_RETENTION") {
            Some(v) => parse_duration("RESULT_RETENTION", &v)?,
            None => Duration::from_secs(600),
        };
        let max_request_bytes = match src.get("MAX_REQUEST_BYTES") {
            Some(v) => parse_count("MAX_REQUEST_BYTES", &v, 4096)?,
            None => 64 << 20,
        };
        let auth_token = src.get("WORKER_AUTH_TOKEN");

        Ok(WorkerConfig {
            listen,
            advertise_addr,
            worker_db_root,
            del_worker_temp_db,
            nfs_mount_root,
            max_parallel_compactions,
            max_waiting_compactions,
            result_retention,
            max_request_bytes,
            auth_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<WorkerConfig, ConfigError> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = file.map(|text| {
            let p = dir.path().join("worker.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        WorkerConfig::load_from(path.as_deref(), &|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.worker_db_root, PathBuf::from("/tmp/dcompact-worker"));
        assert!(!c.del_worker_temp_db);
        assert_eq!(c.max_waiting_compactions, 2 * c.max_parallel_compactions);
    }

    #[test]
    fn environment_wins_over_file() {
        let c = load(
            &[("MAX_PARALLEL_COMPACTIONS", "3")],
            Some("max_parallel_compactions = 7\nworker_db_root = \"/srv/w\"\ndel_worker_temp_db = true\n"),
        )
        .unwrap();
        assert_eq!(c.max_parallel_compactions, 3);
        assert_eq!(c.worker_db_root, PathBuf::from("/srv/w"));
        assert!(c.del_worker_temp_db);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = load(&[("MAX_PARALLEL_COMPACTIONS", "zero")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MAX_PARALLEL_COMPACTIONS"), "{e}");
        let e = load(&[("WORKER_DB_ROOT", "relative/dir")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute"), "{e}");
        let e = load(&[("MULTI_PROCESS", "true")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MULTI_PROCESS"), "{e}");
        let e = load(&[("DEL_WORKER_TEMP_DB", "maybe")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DEL_WORKER_TEMP_DB"), "{e}");
        let e = load(&[], Some("no_such_key = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no_such_key"), "{e}");
        assert!(load(&[("MULTI_PROCESS", "false")], None).is_ok());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("X", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("X", "10m").unwrap(),
            Duration::from_secs(600)
        );
        assert_eq!(parse_duration("X", "5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("X", "5d").is_err());
    }
}
