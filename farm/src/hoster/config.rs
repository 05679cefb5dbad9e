//! The hoster's configuration: ToplingDB's `DcompactEtcd` JSON `params`,
//! accepted bare or inside
//! `{"CompactionExecutorFactory":{"dcompact":{"class":"DcompactEtcd","params":{...}}}}`.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `etcd` | unset | `{"url": "host:port,...", "username", "password", "ca", "cert", "key", "load_balancer"}`: discover workers registered in etcd (merged with `http_workers`) and wake on their "done" events |
//! | `etcd_root` | `/dcompact` | the farm's key prefix in etcd |
//! | `http_workers` | [] | workers: strings (a URL), or objects with ToplingDB's fields: `url` (where jobs are submitted; `/dcompact` is appended unless it ends so), `base_url` (where `/probe` and `/shutdown` go; default `url` without `/dcompact`), `web_url` (the worker's pages for people, `<web_url>/stat`; default `base_url`), `weight`, and for `https://` workers `ca` (PEM file of the CA to trust instead of the public roots), `cert` and `key` (a client certificate); entries starting with `//` or `#` are skipped (see [`WorkerEndpoint`]) |
//! | `hoster_root` | required | root of the shared storage, in this process's path space |
//! | `instance_name` | required | this hoster's name: one path component |
//! | `http_max_retry` | 3 | submissions tried (each on the next worker) before compacting locally |
//! | `http_timeout` | 3 | seconds for one HTTP request |
//! | `retry_sleep_time` | 0.1 | seconds to wait after a 503 before the next try |
//! | `overall_timeout` | 3600 | seconds a remote attempt may take before it is cancelled |
//! | `worker_backoff` | 10 | seconds a worker that failed is skipped |
//! | `load_balance` | `kRoundRobin` | `kRoundRobin` (from a random start) or `kWeight` (smooth weighted round robin over `weight`) |
//! | `estimate_speed` | 0 | bytes/s a compaction is assumed to read before one was measured (0: unknown) |
//! | `timeout_multiplier` | 10 | an attempt may take this times its estimate (at least 30 s, at most `overall_timeout`) |
//! | `dcompact_min_level`, `dcompact_max_level` | 0, unlimited | output levels sent to the farm; others compact locally |
//! | `allow_fallback_to_local` | true | the farm always falls back (see below) |
//! | `dcompact_http_headers` | {} | headers sent on every request (e.g. `Authorization`) |
//! | `plugin_versions` | {} | the version of each plugin class the hoster uses, e.g. `{"counter": 1}`: sent with every job, and a worker with another version refuses it |
//! | `verify_output` | true | read every output before installing it: the CRC32C of the whole file against the file checksum the worker's RocksDB computed while writing it, or its block checksums when it has none (see `hoster::verify`) |
//! | `verify_output_blocks` | false | with `verify_output`, check every output's block checksums instead of its whole-file checksum (slower, the check before file checksums) |
//! | `max_background_jobs` | 8 | `enable` raises the DB's `max_background_jobs` to this (never lowers it; 0: leave it), so that several compactions run on the farm at once (see `hoster::tuning`) |
//! | `flush_compression` | unset | `enable` makes flushes (level 0) write this (`none`, `snappy`, `lz4`, `zstd`; the other levels keep theirs): with compactions on the farm, the hoster's own CPU goes mostly to its flushes, and a cheap codec there leaves the costly one to the workers' compactions out of level 0 (see `hoster::tuning`); unset leaves the DB's setting |
//! | `probe_wait` | 1 | seconds a worker may hold a `/probe` until the attempt ends (at most half of `http_timeout`); 0: probe with pauses of 5 ms doubling to 100 ms, as workers that ignore it are probed anyway |
//! | `nfs_type` | `nfs` when `nfs_mnt_src` is set, else "" | passed to workers for dynamic mounts |
//! | `nfs_mnt_src`, `nfs_mnt_opt` | "" | passed to workers for dynamic mounts |
//! | `storage` | `shared` | `shared`: workers see the DB on shared storage (NFS, one disk); `http`: workers read the job's files from this process's file endpoint and push the outputs there, with no shared filesystem (`docs/REMOTE_STORAGE.md`) |
//! | `remote_listen` | `127.0.0.1:0` | with `storage: "http"`: the address the file endpoint listens on (port 0 picks one) |
//! | `remote_url` | `http://<bound address>` | with `storage: "http"`: how workers reach the file endpoint (`http://host:port`, a proxy's address) |
//! | `nfs_mnt_flags` | "" | ToplingDB's mount flags (`noatime,rdma`): each becomes a mount option appended to `nfs_mnt_opt` (see [`crate::protocol::mount_flags`]); the worker's `MOUNT_ALLOWED_OPTIONS` decides as for any option |
//!
//! `allow_fallback_to_local: false` cannot be honoured safely: the only other
//! answers RocksDB accepts stop the database's writes. It is accepted for
//! compatibility and logged as a warning.

use super::workers::LoadBalance;
use crate::etcd::config::{EndpointBalance, EtcdConfig, Secret};
use crate::protocol::job::PluginVersion;
use crate::protocol::mount_flags;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why the params were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or a key holds a value of the wrong type (a string where
    /// a number belongs, an unknown key inside `etcd`).
    #[error("hoster params are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A value outside its range, a missing required key, or settings that
    /// do not fit together; the message names the key.
    #[error("hoster params: {0}")]
    Invalid(String),
}

/// One worker endpoint, with ToplingDB's meaning of each URL: behind a
/// reverse proxy or load balancer, jobs may be submitted to one address
/// while an attempt's probes and cancels must reach the worker that took
/// it, and people's browsers yet another.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerEndpoint {
    /// Where jobs are submitted: `url`, ending in `/dcompact`.
    pub submit_url: String,
    /// `http(s)://host:port[/path]`, without a trailing `/`: probes go to
    /// `<base_url>/probe`, cancels to `<base_url>/shutdown`. It identifies
    /// the worker in the rotation.
    pub base_url: String,
    /// The worker's pages for people (`<web_url>/stat`, `/list`), when one
    /// was given or registered; else `base_url`'s.
    pub web_url: Option<String>,
    /// Its share of the jobs under `kWeight` (1 when not given).
    pub weight: u32,
    /// For an `https://` worker: the CA and client certificate to use
    /// instead of the public roots.
    pub tls: Option<WorkerTls>,
}

/// An `https://` worker's TLS files (ToplingDB's `ca`, `cert`, `key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTls {
    /// PEM file of the CA whose certificates are trusted.
    pub ca: std::path::PathBuf,
    /// A client certificate and its key (PEM files).
    pub client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl WorkerEndpoint {
    /// A worker known by its base URL alone (etcd, tests).
    pub fn at(base_url: &str, weight: u32) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        WorkerEndpoint {
            submit_url: format!("{base_url}/dcompact"),
            base_url,
            web_url: None,
            weight,
            tls: None,
        }
    }

    /// The worker's status page: `<web_url>/stat`.
    pub fn stat_url(&self) -> String {
        let web = self.web_url.as_deref().unwrap_or(&self.base_url);
        let web = web.trim_end_matches('/');
        let web = web.strip_suffix("/stat").unwrap_or(web);
        format!("{web}/stat")
    }
}

/// The validated params (see the module's table for each key's default).
/// Built by [`HosterConfig::from_json`]; [`crate::hoster::enable`] does that
/// for you.
#[derive(Debug, Clone)]
pub struct HosterConfig {
    /// `http_workers`, commented-out entries dropped.
    pub http_workers: Vec<WorkerEndpoint>,
    /// `hoster_root`: an absolute path without `.` or `..`; the DB must lie
    /// below it.
    pub hoster_root: String,
    /// `instance_name`: one path component of `[A-Za-z0-9._-]`.
    pub instance_name: String,
    /// `http_max_retry`: submissions tried before compacting locally (at
    /// least 1).
    pub http_max_retry: u32,
    /// `http_timeout`: one HTTP request.
    pub http_timeout: Duration,
    /// `retry_sleep_time`: the pause after a busy (503) worker.
    pub retry_sleep_time: Duration,
    /// `overall_timeout`: the longest a remote attempt may take.
    pub overall_timeout: Duration,
    /// `worker_backoff`: how long a failed worker is skipped.
    pub worker_backoff: Duration,
    /// `load_balance`: how jobs spread over workers.
    pub load_balance: LoadBalance,
    /// `estimate_speed`: bytes/s assumed before a compaction was measured
    /// (0: unknown).
    pub estimate_speed: f64,
    /// `timeout_multiplier`: an attempt may take this times its estimate.
    pub timeout_multiplier: f64,
    /// `dcompact_min_level`, `dcompact_max_level`: output levels sent to the
    /// farm.
    pub dcompact_min_level: i32,
    pub dcompact_max_level: i32,
    /// `allow_fallback_to_local`: accepted for compatibility; the farm
    /// always falls back.
    pub allow_fallback_to_local: bool,
    /// `dcompact_http_headers`: sent on every request to a worker.
    pub dcompact_http_headers: Vec<(String, String)>,
    /// `verify_output`: read every output before answering success, its
    /// whole-file checksum or its block checksums (sizes and presence are
    /// always checked).
    pub verify_output: bool,
    /// `verify_output_blocks`: with `verify_output`, check block checksums
    /// even for an output that carries a whole-file checksum.
    pub verify_output_blocks: bool,
    /// How long a worker may hold a probe (see `probe_wait`).
    pub probe_wait: Duration,
    /// The least `max_background_jobs` `enable` gives the DB (0: none).
    pub max_background_jobs: i32,
    /// `flush_compression`: what `enable` makes flushes write.
    pub flush_compression: Option<rocksdb::DBCompressionType>,
    /// `plugin_versions`: sent with every job, beside the installed plugins.
    pub plugin_versions: Vec<PluginVersion>,
    /// `nfs_type`, `nfs_mnt_src`, `nfs_mnt_opt`: passed to workers that
    /// mount each hoster's storage themselves (`NFS_DYNAMIC_MOUNT`).
    pub nfs_type: String,
    pub nfs_mnt_src: String,
    pub nfs_mnt_opt: String,
    /// Discovery and "done" events; `None` without `etcd`.
    pub etcd: Option<EtcdConfig>,
    /// `storage`: where workers read the DB.
    pub storage: Storage,
}

/// Where workers read the DB and write the outputs (`storage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Through a filesystem both sides see (NFS, one local disk).
    Shared,
    /// From this process's file endpoint over HTTP.
    Http {
        /// `remote_listen`: where the endpoint listens.
        listen: std::net::SocketAddr,
        /// `remote_url`: how workers reach it (`None`: `http://<bound>`).
        url: Option<String>,
    },
}

/// The `etcd` object (ToplingDB's field names).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEtcd {
    url: String,
    username: Option<String>,
    password: Option<String>,
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    load_balancer: Option<String>,
}

impl std::fmt::Debug for RawEtcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEtcd")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn etcd_config(raw: RawEtcd, root: Option<String>) -> Result<EtcdConfig, ConfigError> {
    let invalid = |e: crate::etcd::config::EtcdConfigError| {
        ConfigError::Invalid(format!("etcd: {}: {}", e.field, e.why))
    };
    let mut c =
        EtcdConfig::new(&raw.url, root.as_deref().unwrap_or("/dcompact")).map_err(invalid)?;
    c.password = match (&raw.username, raw.password) {
        (None, Some(_)) => {
            // As ToplingDB: without a username the password is not used.
            tracing::warn!("etcd: password without username is ignored, as ToplingDB ignores it");
            None
        }
        (_, password) => password.map(Secret::new),
    };
    c.username = raw.username;
    c.ca = raw.ca.map(Into::into);
    c.cert = raw.cert.map(Into::into);
    c.key = raw.key.map(Into::into);
    if let Some(lb) = raw.load_balancer {
        c.balance = EndpointBalance::parse(&lb).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "etcd load_balancer {lb:?}: expected round_robin or pick_first"
            ))
        })?;
    }
    c.finish().map_err(invalid)
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawWorker {
    Url(String),
    Object {
        url: Option<String>,
        base_url: Option<String>,
        web_url: Option<String>,
        weight: Option<u32>,
        ca: Option<String>,
        cert: Option<String>,
        key: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    http_workers: Vec<RawWorker>,
    hoster_root: Option<String>,
    instance_name: Option<String>,
    http_max_retry: Option<u32>,
    http_timeout: Option<f64>,
    retry_sleep_time: Option<f64>,
    overall_timeout: Option<f64>,
    worker_backoff: Option<f64>,
    load_balance: Option<String>,
    estimate_speed: Option<f64>,
    timeout_multiplier: Option<f64>,
    dcompact_min_level: Option<i32>,
    dcompact_max_level: Option<i32>,
    allow_fallback_to_local: Option<bool>,
    #[serde(default)]
    dcompact_http_headers: BTreeMap<String, String>,
    verify_output: Option<bool>,
    verify_output_blocks: Option<bool>,
    probe_wait: Option<f64>,
    max_background_jobs: Option<u16>,
    flush_compression: Option<String>,
    #[serde(default)]
    plugin_versions: BTreeMap<String, u32>,
    nfs_type: Option<String>,
    nfs_mnt_src: Option<String>,
    nfs_mnt_opt: Option<String>,
    nfs_mnt_flags: Option<String>,
    etcd: Option<RawEtcd>,
    etcd_root: Option<String>,
    storage: Option<String>,
    remote_listen: Option<String>,
    remote_url: Option<String>,
}

fn storage(
    raw_storage: Option<&str>,
    listen: Option<&str>,
    url: Option<String>,
) -> Result<Storage, ConfigError> {
    match raw_storage.unwrap_or("shared") {
        "shared" => Ok(Storage::Shared),
        "http" => {
            let listen = listen.unwrap_or("127.0.0.1:0");
            let listen = listen.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "remote_listen {listen:?} is not an ip:port address"
                ))
            })?;
            if let Some(u) = &url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(ConfigError::Invalid(format!(
                        "remote_url {u:?}: expected http://host:port or https://host:port"
                    )));
                }
            }
            Ok(Storage::Http { listen, url })
        }
        other => Err(ConfigError::Invalid(format!(
            "storage {other:?}: expected \"shared\" or \"http\""
        ))),
    }
}

/// `flush_compression`'s codec.
fn flush_compression(name: &str) -> Result<rocksdb::DBCompressionType, ConfigError> {
    crate::rocks::options::compression_named(name).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "flush_compression {name:?}: expected none, snappy, lz4 or zstd"
        ))
    })
}

fn seconds(name: &str, v: Option<f64>, default: f64) -> Result<Duration, ConfigError> {
    let s = v.unwrap_or(default);
    if !(s.is_finite() && s >= 0.0) {
        return Err(ConfigError::Invalid(format!(
            "{name} must be a non-negative number of seconds"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

/// `url` trimmed of spaces and a trailing `/`, when it is an `http://` or
/// `https://` URL with a host.
fn web_address(field: &str, url: &str) -> Result<String, ConfigError> {
    let u = url.trim().trim_end_matches('/');
    let host = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .unwrap_or("");
    if host.is_empty() || host.starts_with('/') {
        return Err(ConfigError::Invalid(format!(
            "http_workers: {field} {url:?} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(u.to_owned())
}

/// One `http_workers` entry as ToplingDB reads it (`HttpParams::FromJson`
/// in topling-dcompact): `url` submits (`/dcompact` appended unless it
/// ends so), `base_url` probes and cancels (default: `url` without
/// `/dcompact`), `web_url` shows pages (default: `base_url`). `None` for a
/// commented-out entry.
fn worker_endpoint(raw: RawWorker) -> Result<Option<WorkerEndpoint>, ConfigError> {
    let (url, base_url, web_url, weight, tls) = match raw {
        RawWorker::Url(u) => (Some(u), None, None, 1, (None, None, None)),
        RawWorker::Object {
            url,
            base_url,
            web_url,
            weight,
            ca,
            cert,
            key,
        } => (url, base_url, web_url, weight.unwrap_or(1), (ca, cert, key)),
    };
    let Some(given) = url.clone().or_else(|| base_url.clone()) else {
        return Err(ConfigError::Invalid(
            "http_workers object needs url (or base_url)".into(),
        ));
    };
    let t = given.trim_start();
    if t.starts_with("//") || t.starts_with('#') {
        return Ok(None);
    }
    let (submit_url, base_url) = match base_url {
        // `given` is `url` then.
        None => {
            let u = web_address("url", &given)?;
            match u.strip_suffix("/dcompact") {
                Some(base) => (u.clone(), base.to_owned()),
                None => (format!("{u}/dcompact"), u),
            }
        }
        Some(b) => {
            let base = web_address("base_url", &b)?;
            let u = web_address("url", url.as_deref().unwrap_or(&base))?;
            let submit = if u.ends_with("/dcompact") {
                u
            } else {
                format!("{u}/dcompact")
            };
            (submit, base)
        }
    };
    let web_url = web_url.map(|w| web_address("web_url", &w)).transpose()?;
    let tls = match tls {
        (None, None, None) => None,
        (Some(ca), cert, key) => {
            if !(submit_url.starts_with("https://") && base_url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "http_workers: {given:?} has a ca, so its url and base_url must be https://"
                )));
            }
            let client = match (cert, key) {
                (Some(c), Some(k)) => Some((c.into(), k.into())),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "http_workers: {given:?}: cert and key go together"
                    )))
                }
            };
            Some(WorkerTls {
                ca: ca.into(),
                client,
            })
        }
        (None, _, _) => {
            return Err(ConfigError::Invalid(format!(
                "http_workers: {given:?}: a client cert and key need the ca to check the worker by"
            )))
        }
    };
    Ok(Some(WorkerEndpoint {
        submit_url,
        base_url,
        web_url,
        weight: weight.max(1),
        tls,
    }))
}

/// The value of the first `CompactionExecutorFactory` entry whose `class`
/// is ToplingDB's dcompact class (`DcompactEtcd`), whatever its name;
/// `value` itself when it has no `CompactionExecutorFactory`.
fn dcompact_params(value: serde_json::Value) -> Result<serde_json::Value, ConfigError> {
    let Some(factories) = value.get("CompactionExecutorFactory") else {
        return Ok(value);
    };
    let Some(entries) = factories.as_object() else {
        return Err(ConfigError::Invalid(
            "CompactionExecutorFactory must be an object of named entries".into(),
        ));
    };
    let mut found = Vec::new();
    let mut others = Vec::new();
    for (name, entry) in entries {
        match entry.get("class").and_then(|c| c.as_str()) {
            Some(DCOMPACT_CLASS) => found.push((name, entry)),
            class => others.push(format!("{name} (class {:?})", class.unwrap_or(""))),
        }
    }
    match found.as_slice() {
        [(_, entry)] => Ok(entry
            .get("params")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}))),
        [] => Err(ConfigError::Invalid(format!(
            "CompactionExecutorFactory has no entry of class {DCOMPACT_CLASS} (found: {})",
            others.join(", ")
        ))),
        several => Err(ConfigError::Invalid(format!(
            "CompactionExecutorFactory has {} entries of class {DCOMPACT_CLASS} ({}): give this \
             client the params of one",
            several.len(),
            several
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The class of ToplingDB's dcompact `CompactionExecutorFactory`.
pub const DCOMPACT_CLASS: &str = "DcompactEtcd";

impl HosterConfig {
    /// Parses ToplingDB's `DcompactEtcd` params, bare or nested inside
    /// `CompactionExecutorFactory.dcompact.params`. Keys this client does
    /// not know are ignored (ToplingDB's `alert_email`, `job_url_root`,
    /// ...: `docs/TOPLINGDB.md` says what becomes of each), except inside
    /// `etcd`, where an unknown key is an error.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let raw: Raw = serde_json::from_value(dcompact_params(value)?)?;

        let mut http_workers = Vec::new();
        for w in raw.http_workers {
            http_workers.extend(worker_endpoint(w)?);
        }
        let hoster_root = raw
            .hoster_root
            .ok_or_else(|| ConfigError::Invalid("hoster_root is required".into()))?;
        crate::protocol::attempt::check_normal(&hoster_root, "hoster_root")
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let instance_name = raw
            .instance_name
            .ok_or_else(|| ConfigError::Invalid("instance_name is required".into()))?;
        crate::protocol::attempt::check_instance_name(&instance_name)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let min = raw.dcompact_min_level.unwrap_or(0);
        let max = raw.dcompact_max_level.unwrap_or(i32::MAX);
        if min > max {
            return Err(ConfigError::Invalid(format!(
                "dcompact_min_level {min} is above dcompact_max_level {max}"
            )));
        }
        let allow_fallback_to_local = raw.allow_fallback_to_local.unwrap_or(true);
        if !allow_fallback_to_local {
            tracing::warn!("allow_fallback_to_local=false is not honoured: a failed remote compaction always runs locally, because the alternative stops the database's writes");
        }
        let load_balance = match raw.load_balance.as_deref() {
            None => LoadBalance::RoundRobin,
            Some(name) => LoadBalance::parse(name).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "load_balance {name:?}: expected kRoundRobin or kWeight"
                ))
            })?,
        };
        let positive = |name: &str, v: Option<f64>, default: f64| match v {
            None => Ok(default),
            Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
            Some(_) => Err(ConfigError::Invalid(format!(
                "{name} must be a non-negative number"
            ))),
        };
        let estimate_speed = positive("estimate_speed", raw.estimate_speed, 0.0)?;
        let timeout_multiplier =
            positive("timeout_multiplier", raw.timeout_multiplier, 10.0)?.max(1.0);
        let etcd = raw
            .etcd
            .map(|e| etcd_config(e, raw.etcd_root))
            .transpose()?;
        if http_workers.is_empty() && etcd.is_none() {
            tracing::warn!(
                "neither http_workers nor etcd is configured: every compaction runs locally"
            );
        }
        let storage = storage(
            raw.storage.as_deref(),
            raw.remote_listen.as_deref(),
            raw.remote_url.clone(),
        )?;
        let http_timeout = seconds("http_timeout", raw.http_timeout, 3.0)?;
        let probe_wait = seconds("probe_wait", raw.probe_wait, 1.0)?.min(http_timeout / 2);
        Ok(HosterConfig {
            http_workers,
            hoster_root,
            instance_name,
            http_max_retry: raw.http_max_retry.unwrap_or(3).max(1),
            http_timeout,
            retry_sleep_time: seconds("retry_sleep_time", raw.retry_sleep_time, 0.1)?,
            overall_timeout: seconds("overall_timeout", raw.overall_timeout, 3600.0)?,
            worker_backoff: seconds("worker_backoff", raw.worker_backoff, 10.0)?,
            load_balance,
            estimate_speed,
            timeout_multiplier,
            dcompact_min_level: min,
            dcompact_max_level: max,
            allow_fallback_to_local,
            dcompact_http_headers: raw.dcompact_http_headers.into_iter().collect(),
            verify_output: raw.verify_output.unwrap_or(true),
            verify_output_blocks: raw.verify_output_blocks.unwrap_or(false),
            probe_wait,
            max_background_jobs: raw.max_background_jobs.map_or(8, i32::from),
            flush_compression: raw
                .flush_compression
                .as_deref()
                .map(flush_compression)
                .transpose()?,
            plugin_versions: raw
                .plugin_versions
                .into_iter()
                .map(|(name, version)| PluginVersion { name, version })
                .collect(),
            // ToplingDB's default type, once there is something to mount.
            nfs_type: raw.nfs_type.unwrap_or_else(|| match &raw.nfs_mnt_src {
                Some(src) if !src.is_empty() => "nfs".into(),
                _ => String::new(),
            }),
            nfs_mnt_opt: mount_flags::with_flags(
                &raw.nfs_mnt_opt.unwrap_or_default(),
                raw.nfs_mnt_flags.as_deref().unwrap_or(""),
            )
            .map_err(|e| ConfigError::Invalid(format!("nfs_mnt_flags: {e}")))?,
            nfs_mnt_src: raw.nfs_mnt_src.unwrap_or_default(),
            etcd,
            storage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_shared_unless_http_is_chosen() {
        let base = r#""hoster_root":"/d","instance_name":"i""#;
        let c = HosterConfig::from_json(&format!("{{{base}}}")).unwrap();
        assert_eq!(c.storage, Storage::Shared);
        let c = HosterConfig::from_json(&format!(
            r#"{{{base},"storage":"http","remote_listen":"0.0.0.0:7070"}}"#
        ))
        .unwrap();
        assert_eq!(
            c.storage,
            Storage::Http {
                listen: "0.0.0.0:7070".parse().unwrap(),
                url: None
            }
        );
        for bad in [
            r#""storage":"nfs""#,
            r#""storage":"http","remote_listen":"here""#,
            r#""storage":"http","remote_url":"ftp://x""#,
        ] {
            let e = HosterConfig::from_json(&format!("{{{base},{bad}}}")).unwrap_err();
            assert!(
                e.to_string().contains("storage") || e.to_string().contains("remote_"),
                "{e}"
            );
        }
    }

    #[test]
    fn bare_and_nested_params() {
        let bare = r##"{"http_workers":["http://a:1/dcompact","#http://skip:2",{"url":"//x"},
            {"base_url":"http://b:2/","weight":5}],"hoster_root":"/data","instance_name":"i"}"##;
        let c = HosterConfig::from_json(bare).unwrap();
        assert_eq!(c.http_workers.len(), 2);
        assert_eq!(c.http_workers[0].base_url, "http://a:1");
        assert_eq!(c.http_workers[1].base_url, "http://b:2");
        assert_eq!(c.http_workers[1].weight, 5);
        let nested = format!(
            r#"{{"CompactionExecutorFactory":{{"dcompact":{{"class":"DcompactEtcd","params":{bare}}}}}}}"#
        );
        let n = HosterConfig::from_json(&nested).unwrap();
        assert_eq!(n.http_workers, c.http_workers);
        assert!(n.allow_fallback_to_local);
    }

    #[test]
    fn etcd_object() {
        let c = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","etcd_root":"/farm",
                "etcd":{"url":"127.0.0.1:2379","username":"u","password":"pw-secret"}}"#,
        )
        .unwrap();
        let e = c.etcd.as_ref().unwrap();
        assert_eq!(e.endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(e.root, "/farm");
        assert!(c.http_workers.is_empty());
        assert!(!format!("{c:?}").contains("pw-secret"));
        let err = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","etcd":{"url":"h:1","cert":"/c.pem"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("etcd"), "{err}");
        let err = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","etcd":{"url":"h:1","passwd":"x"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("passwd") && !err.contains("\"x\""), "{err}");
    }

    /// The params of ToplingDB's README, with the keys this client does
    /// not know (see docs/TOPLINGDB.md): accepted, the unknown ones ignored.
    #[test]
    fn toplingdb_params_are_accepted() {
        let topling = r#"{"CompactionExecutorFactory": {"dcompact": {"class": "DcompactEtcd",
            "params": {
              "allow_fallback_to_local": true,
              "hoster_root": "/nvmepool/shared/db1",
              "instance_name": "db1",
              "nfs_mnt_src": ":/nvmepool/shared",
              "nfs_mnt_opt": "nolock,addr=192.168.31.16",
              "nfs_mnt_flags": "noatime,rdma",
              "http_max_retry": 3,
              "http_timeout": 1,
              "retry_sleep_time": 1,
              "overall_timeout": 5,
              "timeout_multiplier": 10,
              "load_balance": "kWeight",
              "max_book_dbcf": 20,
              "job_url_root": "http://web.page.proxy",
              "alert_email": "ops@example.com",
              "alert_http": "http://alert",
              "alert_interval": 60,
              "web_domain": "example.com",
              "web_show_secret": false,
              "copy_sst_files": false,
              "copy_file_threads": 10,
              "info_log_level": "INFO_LEVEL",
              "need_db_get": false,
              "fee_conf": {"url": "http://fee", "provider": "x"},
              "http_workers": [
                "http://active-host:8080",
                {"url": "http://worker.for.submit.compact.job",
                 "base_url": "http://worker.for.probe.and.shutdown.compact.job",
                 "web_url": "https://web.page.proxy", "weight": 100},
                "//http://commented-host:8080",
                "//end_http_workers"
              ],
              "dcompact_min_level": 2
            }}}}"#;
        let c = HosterConfig::from_json(topling).unwrap();
        assert_eq!(c.instance_name, "db1");
        assert_eq!(
            c.http_workers
                .iter()
                .map(|w| w.base_url.as_str())
                .collect::<Vec<_>>(),
            [
                "http://active-host:8080",
                "http://worker.for.probe.and.shutdown.compact.job"
            ]
        );
        assert_eq!(c.http_workers[1].weight, 100);
        assert_eq!(c.load_balance, LoadBalance::Weight);
        assert_eq!(c.dcompact_min_level, 2);
        assert_eq!(c.retry_sleep_time, Duration::from_secs(1));
        assert_eq!(
            c.nfs_type, "nfs",
            "ToplingDB's default, as nfs_mnt_src is set"
        );
        assert_eq!(c.nfs_mnt_opt, "nolock,addr=192.168.31.16,noatime,rdma");
        // url submits, base_url probes, web_url shows (ToplingDB's meaning).
        let w = &c.http_workers[1];
        assert_eq!(
            w.submit_url,
            "http://worker.for.submit.compact.job/dcompact"
        );
        assert_eq!(w.stat_url(), "https://web.page.proxy/stat");
        assert_eq!(
            c.http_workers[0].submit_url,
            "http://active-host:8080/dcompact"
        );
        // ToplingDB's size syntax is not taken for estimate_speed.
        let e = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","estimate_speed":"10M"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn factory_entries_are_found_by_class() {
        let entry = |name: &str, class: &str| {
            format!(
                r#"{{"CompactionExecutorFactory":{{"{name}":{{"class":"{class}","params":
                {{"hoster_root":"/d","instance_name":"i","http_workers":["http://a:1"]}}}}}}}}"#
            )
        };
        let c = HosterConfig::from_json(&entry("dcompact-ssd", "DcompactEtcd")).unwrap();
        assert_eq!(c.http_workers[0].base_url, "http://a:1");
        let e = HosterConfig::from_json(&entry("dcompact", "Local"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("DcompactEtcd") && e.contains("Local"), "{e}");
        let nfs = HosterConfig::from_json(r#"{"hoster_root":"/d","instance_name":"i"}"#).unwrap();
        assert_eq!(nfs.nfs_type, "", "nothing to mount, no type");
    }

    #[test]
    fn https_workers_and_their_tls_files() {
        let c = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","http_workers":[
                {"url":"https://w:443/dcompact","ca":"/etc/farm/ca.pem"},
                {"base_url":"https://p/worker-2/","cert":"/c","key":"/k","ca":"/ca"},
                "https://public.example"]}"#,
        )
        .unwrap();
        let w = &c.http_workers;
        assert_eq!(
            (w[0].base_url.as_str(), w[0].submit_url.as_str()),
            ("https://w:443", "https://w:443/dcompact")
        );
        assert_eq!(
            w[0].tls.as_ref().unwrap().ca,
            std::path::PathBuf::from("/etc/farm/ca.pem")
        );
        assert_eq!(w[1].submit_url, "https://p/worker-2/dcompact");
        assert!(w[1].tls.as_ref().unwrap().client.is_some());
        assert!(w[2].tls.is_none(), "public roots");
        for bad in [
            r#"{"url":"http://w:1","ca":"/ca"}"#,
            r#"{"url":"https://w:1","ca":"/ca","cert":"/c"}"#,
            r#"{"url":"https://w:1","cert":"/c","key":"/k"}"#,
        ] {
            let p = format!(r#"{{"hoster_root":"/d","instance_name":"i","http_workers":[{bad}]}}"#);
            assert!(HosterConfig::from_json(&p).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = HosterConfig::from_json(r#"{"instance_name":"i"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("hoster_root"), "{e}");
        let e = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","http_workers":["ftp://x"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http://"), "{e}");
        let e = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","http_timeout":-1}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http_timeout"), "{e}");
        let e = HosterConfig::from_json(r#"{"hoster_root":"/d","instance_name":"a/b"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("instance_name"), "{e}");
    }
}
