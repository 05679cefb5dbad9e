//! Worker configuration: environment variables with ToplingDB's names over an
//! optional TOML file (`--config`) whose keys are the same names in lower
//! case. The environment wins over the file. Everything is validated at
//! start-up; an error names the setting and what is wrong with it.
//!
//! | setting | default | meaning |
//! | --- | --- | --- |
//! | `LISTEN_ADDR` | `0.0.0.0:8080` | HTTP address; port 0 picks a free port |
//! | `ADVERTISE_ADDR` | the bound address | how hosters and pages reach this worker: `host:port`, or an `http://`/`https://` URL (a reverse proxy); `self` means the bound address (see [`crate::worker::advertise`]) |
//! | `WORKER_DB_ROOT` | `/var/lib/dcompact-worker` | attempt directories live below it; created `0700` with a marker file, refused when it is `/`, a system directory, or a directory the worker did not create that holds anything (see [`crate::worker::root_guard`]) |
//! | `DEL_WORKER_TEMP_DB` | `false` | remove an attempt's directory when it ends |
//! | `NFS_MOUNT_ROOT` | unset | hoster paths map to `<root>/<instance_name>/...`; unset: same paths as the hoster, below `HOSTER_ROOTS` |
//! | `HOSTER_ROOTS` | unset | without `NFS_MOUNT_ROOT`: the `:`-separated roots a job's `hoster_root` must be (or lie below); its paths are confined to that configured root, never to one the request chose. One of `NFS_MOUNT_ROOT` and `HOSTER_ROOTS` is required |
//! | `MAX_PARALLEL_COMPACTIONS` | number of CPUs | attempts running at once |
//! | `MAX_WAITING_COMPACTIONS` | 2 × parallel | attempts queued beyond that; more get 503 |
//! | `RESULT_RETENTION` | `10m` | how long a finished attempt stays answerable by `/probe` |
//! | `QUEUE_PROBE_TIMEOUT` | `60s` | a queued attempt that no hoster probed (or submitted) for this long is cancelled: its hoster gave up on it |
//! | `MAX_REQUEST_BYTES` | `64MiB` as bytes (67108864) | larger request bodies get 400 (`malformed`) |
//! | `MAX_ADMISSIONS` | 4 | jobs admitted at once (storage mounted, `CURRENT`, inputs and OPTIONS read, on blocking threads); a submission beyond it gets 503 at once. Admission takes milliseconds on healthy storage, so 4 keep up with hundreds of submissions a second, while a dead NFS server can hold no more than 4 threads |
//! | `HTTP_HEADER_TIMEOUT` | `10s` | a request's head must be complete this long after the connection was accepted (or after its first byte on a kept-alive connection); else the connection is closed |
//! | `HTTP_BODY_TIMEOUT` | `60s` | a request's body must have arrived this long after its head (else 408 and the connection closes); an answer the client stops reading may stall this long |
//! | `HTTP_IDLE_TIMEOUT` | `30s` | a kept-alive connection with no request for this long is closed |
//! | `MAX_CONNECTIONS` | 1024, or half the open-file limit when lower | HTTP connections open at once; more wait in the listen backlog until one closes (see [`crate::worker::listener`]) |
//! | `WORKER_AUTH_TOKEN` | unset | when set, `/dcompact` and `/shutdown` need `Authorization: Bearer <token>`; required when the worker listens on an address other than loopback |
//! | `WORKER_ALLOW_NO_TOKEN` | `false` | `true`: listen beyond loopback without `WORKER_AUTH_TOKEN` (anyone who reaches the port may submit jobs); logged as a warning at every start |
//! | `MULTI_PROCESS` | `false` | run each attempt in its own child process |
//! | `REMOTE_STORAGE` | `false` | `true`: take jobs in the HTTP storage mode (a job's `remote` object): read the DB from the hoster's file endpoint the job names and push the outputs there (`docs/REMOTE_STORAGE.md`); off, such a job is refused (412), so no request makes the worker fetch from an address it names |
//! | `PLUGINS` | unset | `:`-separated plugin `.so` files (with the worker's own `LD_PRELOAD`): loaded (`dlopen`) into the worker, or with `MULTI_PROCESS` into each child once its own initialisers have run; the worker's own `LD_PRELOAD` is preloaded into each child as into the worker |
//! | `CHILD_MEMORY_LIMIT` | unlimited | a child's memory, bytes (suffixes K, M, G): its cgroup's memory limit, with no swap beyond it where the host accounts swap; `RLIMIT_AS` where no cgroup can be made. A child past it is killed by the kernel (`out_of_memory`) |
//! | `CHILD_MAX_PROCESSES` | 1024 | processes and threads at once in a child's cgroup (`pids.max`); no limit without a cgroup |
//! | `CHILD_CPU_WEIGHT` | 100 | a child's cgroup's CPU weight, 1 to 10000 (100: the share of any other cgroup; cgroup v1: `cpu.shares` = weight × 1024 / 100) |
//! | `CHILD_CGROUP` | `auto` | with `MULTI_PROCESS`, each child (attempt, plugin description) in a cgroup of its own (v2 where delegated, else v1 `memory`, `pids`, `freezer`, `cpu`; see [`crate::worker::cgroup`]): `auto` (resource limits where none can be made, said in the log), `required` (refuse to start without), `off` |
//! | `CHILD_FILE_SIZE_LIMIT` | unlimited | a child's `RLIMIT_FSIZE`: a larger write kills it with SIGXFSZ |
//! | `CHILD_OPEN_FILES` | inherited | a child's `RLIMIT_NOFILE` |
//! | `CHILD_NICE` | 0 | added to a child's nice value (0 to 19) |
//! | `CHILD_SPARES` | 1 | with `MULTI_PROCESS`, children kept started ahead of their attempts (0 to 64; 0: each attempt starts its own): each waits, set up as an attempt child is, and serves one attempt (see [`crate::worker::child::spare`]) |
//! | `ATTEMPT_TIMEOUT_MULTIPLIER` | 10 | an attempt's timeout is this times the hoster's estimate ... |
//! | `ATTEMPT_TIMEOUT_MIN`, `ATTEMPT_TIMEOUT_MAX` | `60s`, `2h` | ... kept between these; with no estimate, the maximum |
//! | `CANCEL_GRACE` | `5s` | after SIGTERM, how long a child has before SIGKILL |
//! | `OUTPUT_SPACE_MARGIN` | `1G` | a job is refused when its output filesystem has less free space than its input size plus this |
//! | `ATTEMPT_RETENTION_AGE` | `168h` | retained attempt directories older than this are removed |
//! | `ATTEMPT_RETENTION_BYTES` | `10G` | ... and the oldest, until the rest fit in this |
//! | `SHUTDOWN_GRACE` | `30s` | once a drain began (`POST /drain`, SIGUSR1, SIGTERM, SIGINT, a termination notice), how long the accepted attempts may run before they are cancelled (see [`crate::worker::drain`]) |
//! | `TERMINATION_CHECK_URL` | unset | an `http://` or `https://` URL polled for a termination notice (a cloud's spot-instance metadata): a 200 answer begins a drain (see [`crate::worker::termination_check`]) |
//! | `TERMINATION_CHECK_INTERVAL` | `5s` | how often `TERMINATION_CHECK_URL` is polled (at least 100ms) |
//! | `WEB_DOMAIN` | unset | the web view sets `document.domain` to it, for pages embedded in an operator's portal |
//! | `NFS_DYNAMIC_MOUNT` | `false` | mount each instance's `nfs_mnt_src` on `NFS_MOUNT_ROOT/<instance_name>` on its first job; needs `NFS_MOUNT_ROOT` |
//! | `NFS_MOUNT_CACHE` | 32 | with `NFS_DYNAMIC_MOUNT`, idle mounts kept; the least recently used is unmounted beyond it |
//! | `MOUNT_TIMEOUT` | `60s` | a mount helper still running after this is killed (with what it started) and the job refused; jobs of the same instance wait for it, others do not |
//! | `MOUNT_ALLOWED_TYPES` | `nfs,nfs4` | the `nfs_type`s a job may ask for; only `nfs` and `nfs4` may be listed (their sources are checked: `host:/absolute/path`, not loopback); anything else is refused at start |
//! | `MOUNT_ALLOWED_OPTIONS` | the usual NFS options (see [`crate::worker::mounts::policy::DEFAULT_OPTIONS`]) | the option names a job's `nfs_mnt_opt` may use (`name=value` checked by name); replaces the default. Never allowed, even when listed (refused at start): `bind`, `rbind`, `remount`, `move`, propagation (`make-*`, `shared`...), `X-*`, `suid`, `dev`, `exec`, `defaults`, `user(s)`, `owner`, `group`, `helper`, `uhelper`, `loop`, `offset`, SELinux contexts. `nosuid,nodev,noexec` are always added |
//! | `ETCD_URL` | unset | etcd endpoints (`host:port` or `http(s)://host:port`, `,`-separated): register under `ETCD_ROOT/workers/<addr>` and publish finished attempts |
//! | `ETCD_ROOT` | `/dcompact` | the farm's key prefix in etcd |
//! | `ETCD_USERNAME`, `ETCD_PASSWORD` | unset | etcd credentials (never logged); `ETCD_PASSWORD` without `ETCD_USERNAME` is ignored, with a warning, as ToplingDB ignores it |
//! | `ETCD_CA`, `ETCD_CERT`, `ETCD_KEY` | unset | PEM files for TLS: the CA of etcd's certificate; a client certificate and key |
//! | `ETCD_LOAD_BALANCER` | `round_robin` | over several endpoints: `round_robin` or `pick_first` |
//! | `ETCD_LEASE_TTL` | `10s` | the registration's lease: a worker that dies disappears after this |
//! | `ETCD_DONE_TTL` | `60s` | how long a `dcompact-res/<attempt>` key lives |
//! | `ZIP_SERVER_OPTIONS` | unset: no zipserver | with `MULTI_PROCESS`: start a zipserver with these options (`zipserver::options`; its socket defaults to `WORKER_DB_ROOT/zipserver.sock`) and send the children's blocks to it; `on`: with the defaults (HTTP on a free loopback port); `off` starts none; without `MULTI_PROCESS` it is only warned about |
//! | `ZIP_SERVER_SOCKET` | unset | with `MULTI_PROCESS`: the Unix socket of a zipserver already running; the worker starts none |

use crate::etcd::config::{EndpointBalance, EtcdConfig, Secret};
use crate::worker::child::limits::{
    CgroupMode, ChildLimits, DEFAULT_CPU_WEIGHT, DEFAULT_MAX_PROCESSES,
};
use crate::worker::listener::limits::HttpLimits;
use crate::worker::mounts::policy::{self, MountPolicy};
use crate::worker::root_guard::{self, RootError, RootKind};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zipserver::options::Setting as ZipServerSetting;

/// `CHILD_SPARES` when unset: one child waits for the next attempt.
pub const DEFAULT_CHILD_SPARES: usize = 1;
/// The most `CHILD_SPARES` may be.
const MAX_CHILD_SPARES: usize = 64;

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
    #[error(transparent)]
    Root(Box<RootError>),
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
    /// `HOSTER_ROOTS`: without a mount root, the roots jobs' paths are
    /// confined to.
    pub hoster_roots: Vec<PathBuf>,
    pub max_parallel_compactions: usize,
    pub max_waiting_compactions: usize,
    pub result_retention: Duration,
    /// `QUEUE_PROBE_TIMEOUT`: a queued attempt no hoster probed for this
    /// long is cancelled.
    pub queue_probe_timeout: Duration,
    pub max_request_bytes: usize,
    /// `MAX_ADMISSIONS`: jobs admitted at once.
    pub max_admissions: usize,
    /// `HTTP_HEADER_TIMEOUT`, `HTTP_BODY_TIMEOUT`, `HTTP_IDLE_TIMEOUT`,
    /// `MAX_CONNECTIONS`.
    pub http: HttpLimits,
    /// Printed as `<redacted>` by `Debug`.
    pub auth_token: Option<Secret>,
    /// `WORKER_ALLOW_NO_TOKEN`: no token on a non-loopback address.
    pub allow_no_token: bool,
    pub multi_process: bool,
    /// `REMOTE_STORAGE`: HTTP storage jobs are taken.
    pub remote_storage: bool,
    /// Loaded into the worker or each child: `PLUGINS`, then the worker's
    /// own `LD_PRELOAD`.
    pub plugins: Vec<PathBuf>,
    /// The worker's own `LD_PRELOAD` (also in `plugins`): preloaded into
    /// each child as the dynamic loader preloaded it into the worker.
    /// `PLUGINS` are never preloaded: a preloaded object's constructors run
    /// before the worker binary's own static initialisers, RocksDB's among
    /// them, so a C++ plugin that registers from a constructor would see
    /// RocksDB's globals unset (and freeze them so: a function-local static
    /// copied from one, such as `GetBuiltinV2CompressionManager()`'s, stays
    /// empty and every compaction of the child crashes).
    pub preloaded: Vec<PathBuf>,
    pub child_limits: ChildLimits,
    /// `CHILD_SPARES`: children started ahead of their attempts.
    pub child_spares: usize,
    pub attempt_timeout_multiplier: u32,
    pub attempt_timeout_min: Duration,
    pub attempt_timeout_max: Duration,
    pub cancel_grace: Duration,
    pub shutdown_grace: Duration,
    /// `TERMINATION_CHECK_URL`: polled for a termination notice.
    pub termination_check_url: Option<String>,
    /// `TERMINATION_CHECK_INTERVAL`.
    pub termination_check_interval: Duration,
    pub attempt_retention_age: Duration,
    pub attempt_retention_bytes: u64,
    pub output_space_margin: u64,
    /// `WEB_DOMAIN`: the web view's `document.domain` when embedded.
    pub web_domain: Option<String>,
    /// `NFS_DYNAMIC_MOUNT` (only with `nfs_mount_root`).
    pub nfs_dynamic_mount: bool,
    pub nfs_mount_cache: usize,
    pub mount_timeout: Duration,
    /// `MOUNT_ALLOWED_TYPES` and `MOUNT_ALLOWED_OPTIONS`.
    pub mount_policy: MountPolicy,
    /// Registration and "done" events; `None` without `ETCD_URL`.
    pub etcd: Option<EtcdConfig>,
    /// `ZIP_SERVER_OPTIONS`, parsed: off, or the zipserver the worker
    /// starts (`worker::zip_link`); unset: none.
    pub zip_server: Option<ZipServerSetting>,
    /// `ZIP_SERVER_SOCKET`: a running zipserver; none is started.
    pub zip_server_socket: Option<PathBuf>,
}

impl WorkerConfig {
    /// The timeout of an attempt whose hoster estimated `estimate_us`.
    pub fn attempt_timeout(&self, estimate_us: u64) -> Duration {
        if estimate_us == 0 {
            return self.attempt_timeout_max;
        }
        let t = Duration::from_micros(
            estimate_us.saturating_mul(self.attempt_timeout_multiplier as u64),
        );
        t.clamp(
            self.attempt_timeout_min,
            self.attempt_timeout_max.max(self.attempt_timeout_min),
        )
    }
}

/// Where attempts live unless `WORKER_DB_ROOT` says otherwise.
pub const DEFAULT_WORKER_DB_ROOT: &str = "/var/lib/dcompact-worker";

/// A root setting: an absolute path without `.`/`..`, not a system
/// directory (see [`root_guard`]).
fn normal_root(name: &'static str, v: &str, kind: RootKind) -> Result<PathBuf, ConfigError> {
    crate::protocol::attempt::check_normal(v, name).map_err(|_| {
        invalid(
            name,
            v,
            "must be an absolute path without . or .. components",
        )
    })?;
    let p = PathBuf::from(v.trim_end_matches('/'));
    let p = if p.as_os_str().is_empty() {
        PathBuf::from("/")
    } else {
        p
    };
    root_guard::check_root(name, &p, kind).map_err(|e| ConfigError::Root(Box::new(e)))?;
    Ok(p)
}

/// The worker's root, the mount root and the hoster roots never contain
/// one another.
fn check_roots_apart(
    worker: &Path,
    mount: Option<&Path>,
    hosters: &[PathBuf],
) -> Result<(), ConfigError> {
    let mut roots: Vec<(&'static str, &Path)> = vec![("WORKER_DB_ROOT", worker)];
    roots.extend(mount.map(|m| ("NFS_MOUNT_ROOT", m)));
    roots.extend(hosters.iter().map(|h| ("HOSTER_ROOTS", h.as_path())));
    root_guard::check_apart(&roots).map_err(|e| ConfigError::Root(Box::new(e)))
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
    hoster_roots: Option<String>,
    max_parallel_compactions: Option<toml::Value>,
    max_waiting_compactions: Option<toml::Value>,
    result_retention: Option<String>,
    queue_probe_timeout: Option<String>,
    max_request_bytes: Option<toml::Value>,
    max_admissions: Option<toml::Value>,
    http_header_timeout: Option<String>,
    http_body_timeout: Option<String>,
    http_idle_timeout: Option<String>,
    max_connections: Option<toml::Value>,
    worker_auth_token: Option<String>,
    worker_allow_no_token: Option<toml::Value>,
    multi_process: Option<toml::Value>,
    remote_storage: Option<toml::Value>,
    nfs_dynamic_mount: Option<toml::Value>,
    nfs_mount_cache: Option<toml::Value>,
    mount_timeout: Option<String>,
    mount_allowed_types: Option<String>,
    mount_allowed_options: Option<String>,
    plugins: Option<String>,
    child_memory_limit: Option<toml::Value>,
    child_file_size_limit: Option<toml::Value>,
    child_open_files: Option<toml::Value>,
    child_nice: Option<toml::Value>,
    child_max_processes: Option<toml::Value>,
    child_cpu_weight: Option<toml::Value>,
    child_cgroup: Option<String>,
    child_spares: Option<toml::Value>,
    attempt_timeout_multiplier: Option<toml::Value>,
    attempt_timeout_min: Option<String>,
    attempt_timeout_max: Option<String>,
    cancel_grace: Option<String>,
    shutdown_grace: Option<String>,
    termination_check_url: Option<String>,
    termination_check_interval: Option<String>,
    attempt_retention_age: Option<String>,
    attempt_retention_bytes: Option<toml::Value>,
    output_space_margin: Option<toml::Value>,
    zip_server_options: Option<String>,
    zip_server_socket: Option<String>,
    etcd_url: Option<String>,
    web_domain: Option<String>,
    etcd_root: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    etcd_ca: Option<String>,
    etcd_cert: Option<String>,
    etcd_key: Option<String>,
    etcd_load_balancer: Option<String>,
    etcd_lease_ttl: Option<String>,
    etcd_done_ttl: Option<String>,
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
            "HOSTER_ROOTS" => f.hoster_roots.clone(),
            "MAX_PARALLEL_COMPACTIONS" => value(&f.max_parallel_compactions),
            "MAX_WAITING_COMPACTIONS" => value(&f.max_waiting_compactions),
            "RESULT_RETENTION" => f.result_retention.clone(),
            "QUEUE_PROBE_TIMEOUT" => f.queue_probe_timeout.clone(),
            "MAX_REQUEST_BYTES" => value(&f.max_request_bytes),
            "MAX_ADMISSIONS" => value(&f.max_admissions),
            "HTTP_HEADER_TIMEOUT" => f.http_header_timeout.clone(),
            "HTTP_BODY_TIMEOUT" => f.http_body_timeout.clone(),
            "HTTP_IDLE_TIMEOUT" => f.http_idle_timeout.clone(),
            "MAX_CONNECTIONS" => value(&f.max_connections),
            "WORKER_AUTH_TOKEN" => f.worker_auth_token.clone(),
            "WORKER_ALLOW_NO_TOKEN" => value(&f.worker_allow_no_token),
            "MULTI_PROCESS" => value(&f.multi_process),
            "REMOTE_STORAGE" => value(&f.remote_storage),
            "NFS_DYNAMIC_MOUNT" => value(&f.nfs_dynamic_mount),
            "NFS_MOUNT_CACHE" => value(&f.nfs_mount_cache),
            "MOUNT_TIMEOUT" => f.mount_timeout.clone(),
            "MOUNT_ALLOWED_TYPES" => f.mount_allowed_types.clone(),
            "MOUNT_ALLOWED_OPTIONS" => f.mount_allowed_options.clone(),
            "PLUGINS" => f.plugins.clone(),
            "CHILD_MEMORY_LIMIT" => value(&f.child_memory_limit),
            "CHILD_FILE_SIZE_LIMIT" => value(&f.child_file_size_limit),
            "CHILD_OPEN_FILES" => value(&f.child_open_files),
            "CHILD_NICE" => value(&f.child_nice),
            "CHILD_MAX_PROCESSES" => value(&f.child_max_processes),
            "CHILD_CPU_WEIGHT" => value(&f.child_cpu_weight),
            "CHILD_CGROUP" => f.child_cgroup.clone(),
            "CHILD_SPARES" => value(&f.child_spares),
            "ATTEMPT_TIMEOUT_MULTIPLIER" => value(&f.attempt_timeout_multiplier),
            "ATTEMPT_TIMEOUT_MIN" => f.attempt_timeout_min.clone(),
            "ATTEMPT_TIMEOUT_MAX" => f.attempt_timeout_max.clone(),
            "CANCEL_GRACE" => f.cancel_grace.clone(),
            "SHUTDOWN_GRACE" => f.shutdown_grace.clone(),
            "TERMINATION_CHECK_URL" => f.termination_check_url.clone(),
            "TERMINATION_CHECK_INTERVAL" => f.termination_check_interval.clone(),
            "ATTEMPT_RETENTION_AGE" => f.attempt_retention_age.clone(),
            "ATTEMPT_RETENTION_BYTES" => value(&f.attempt_retention_bytes),
            "OUTPUT_SPACE_MARGIN" => value(&f.output_space_margin),
            "ZIP_SERVER_OPTIONS" => f.zip_server_options.clone(),
            "ZIP_SERVER_SOCKET" => f.zip_server_socket.clone(),
            "ETCD_URL" => f.etcd_url.clone(),
            "WEB_DOMAIN" => f.web_domain.clone(),
            "ETCD_ROOT" => f.etcd_root.clone(),
            "ETCD_USERNAME" => f.etcd_username.clone(),
            "ETCD_PASSWORD" => f.etcd_password.clone(),
            "ETCD_CA" => f.etcd_ca.clone(),
            "ETCD_CERT" => f.etcd_cert.clone(),
            "ETCD_KEY" => f.etcd_key.clone(),
            "ETCD_LOAD_BALANCER" => f.etcd_load_balancer.clone(),
            "ETCD_LEASE_TTL" => f.etcd_lease_ttl.clone(),
            "ETCD_DONE_TTL" => f.etcd_done_ttl.clone(),
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

/// Parses a byte count: "1048576", "512K", "64M", "2G" (binary units).
pub fn parse_bytes(name: &'static str, v: &str) -> Result<u64, ConfigError> {
    let t = v.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| {
        invalid(
            name,
            v,
            "expected a byte count such as 1048576, 512K, 64M or 2G",
        )
    })?;
    n.checked_mul(mult)
        .filter(|b| *b > 0)
        .ok_or_else(|| invalid(name, v, "must be positive and fit in 64 bits"))
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

        let advertise_addr = match src.get("ADVERTISE_ADDR") {
            None => None,
            Some(a) => crate::worker::advertise::parse(&a)
                .map_err(|e| invalid("ADVERTISE_ADDR", &a, e.to_string()))?,
        };

        let root_raw = src
            .get("WORKER_DB_ROOT")
            .unwrap_or_else(|| DEFAULT_WORKER_DB_ROOT.into());
        let worker_db_root = normal_root("WORKER_DB_ROOT", &root_raw, RootKind::Owned)?;

        let del_worker_temp_db = match src.get("DEL_WORKER_TEMP_DB") {
            Some(v) => parse_bool("DEL_WORKER_TEMP_DB", &v)?,
            None => false,
        };

        let nfs_mount_root = src
            .get("NFS_MOUNT_ROOT")
            .map(|v| normal_root("NFS_MOUNT_ROOT", &v, RootKind::Owned))
            .transpose()?;
        let hoster_roots = match src.get("HOSTER_ROOTS") {
            Some(v) => v
                .split(':')
                .filter(|r| !r.is_empty())
                .map(|r| normal_root("HOSTER_ROOTS", r, RootKind::Hoster))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        check_roots_apart(&worker_db_root, nfs_mount_root.as_deref(), &hoster_roots)?;
        if nfs_mount_root.is_none() && hoster_roots.is_empty() {
            return Err(invalid(
                "HOSTER_ROOTS",
                "",
                "neither NFS_MOUNT_ROOT nor HOSTER_ROOTS is set: the worker would have no storage \
                 a job may use; set HOSTER_ROOTS to the directories hosters name as hoster_root \
                 (same paths on both sides), or NFS_MOUNT_ROOT",
            ));
        }

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
        let queue_probe_timeout = match src.get("QUEUE_PROBE_TIMEOUT") {
            Some(v) => parse_duration("QUEUE_PROBE_TIMEOUT", &v)?,
            None => Duration::from_secs(60),
        };
        let max_request_bytes = match src.get("MAX_REQUEST_BYTES") {
            Some(v) => parse_count("MAX_REQUEST_BYTES", &v, 4096)?,
            None => 64 << 20,
        };
        let max_admissions = match src.get("MAX_ADMISSIONS") {
            Some(v) => parse_count("MAX_ADMISSIONS", &v, 1)?,
            None => 4,
        };
        let http = http_limits(&src)?;
        let auth_token = src.get("WORKER_AUTH_TOKEN").map(Secret::new);
        let allow_no_token = match src.get("WORKER_ALLOW_NO_TOKEN") {
            Some(v) => parse_bool("WORKER_ALLOW_NO_TOKEN", &v)?,
            None => false,
        };

        let remote_storage = match src.get("REMOTE_STORAGE") {
            Some(v) => parse_bool("REMOTE_STORAGE", &v)?,
            None => false,
        };
        let multi_process = match src.get("MULTI_PROCESS") {
            Some(v) => parse_bool("MULTI_PROCESS", &v)?,
            None => false,
        };
        let mut plugins = Vec::new();
        let mut preloaded = Vec::new();
        let listed = src.get("PLUGINS");
        let preload = (env)("LD_PRELOAD").filter(|v| !v.is_empty());
        for (name, list) in [("PLUGINS", &listed), ("LD_PRELOAD", &preload)] {
            let Some(list) = list else { continue };
            for item in list.split([':', ' ']).filter(|s| !s.is_empty()) {
                let p = PathBuf::from(item);
                if !p.is_file() {
                    return Err(invalid(name, list, format!("{item} is not a file")));
                }
                if name == "LD_PRELOAD" {
                    preloaded.push(p.clone());
                }
                plugins.push(p);
            }
        }
        let bytes = |name: &'static str| src.get(name).map(|v| parse_bytes(name, &v)).transpose();
        let child_limits = ChildLimits {
            memory: bytes("CHILD_MEMORY_LIMIT")?,
            max_processes: match src.get("CHILD_MAX_PROCESSES") {
                Some(v) => parse_count("CHILD_MAX_PROCESSES", &v, 1)? as u64,
                None => DEFAULT_MAX_PROCESSES,
            },
            cpu_weight: match src.get("CHILD_CPU_WEIGHT") {
                Some(v) => {
                    let w = parse_count("CHILD_CPU_WEIGHT", &v, 1)?;
                    if w > 10_000 {
                        return Err(invalid("CHILD_CPU_WEIGHT", &v, "must be 1 to 10000"));
                    }
                    w as u32
                }
                None => DEFAULT_CPU_WEIGHT,
            },
            cgroup: match src.get("CHILD_CGROUP") {
                Some(v) => v
                    .parse::<CgroupMode>()
                    .map_err(|why| invalid("CHILD_CGROUP", &v, why))?,
                None => CgroupMode::Auto,
            },
            file_size: bytes("CHILD_FILE_SIZE_LIMIT")?,
            open_files: match src.get("CHILD_OPEN_FILES") {
                Some(v) => Some(parse_count("CHILD_OPEN_FILES", &v, 16)? as u64),
                None => None,
            },
            nice: match src.get("CHILD_NICE") {
                Some(v) => {
                    let n = parse_count("CHILD_NICE", &v, 0)?;
                    if n > 19 {
                        return Err(invalid("CHILD_NICE", &v, "must be 0 to 19"));
                    }
                    Some(n as i32)
                }
                None => None,
            },
        };
        let child_spares = match src.get("CHILD_SPARES") {
            Some(v) => {
                let n = parse_count("CHILD_SPARES", &v, 0)?;
                if n > MAX_CHILD_SPARES {
                    return Err(invalid("CHILD_SPARES", &v, "must be 0 to 64"));
                }
                n
            }
            None => DEFAULT_CHILD_SPARES,
        };
        let duration = |name: &'static str, default: Duration| {
            src.get(name)
                .map_or(Ok(default), |v| parse_duration(name, &v))
        };
        let attempt_timeout_multiplier = match src.get("ATTEMPT_TIMEOUT_MULTIPLIER") {
            Some(v) => parse_count("ATTEMPT_TIMEOUT_MULTIPLIER", &v, 1)? as u32,
            None => 10,
        };
        let attempt_timeout_min = duration("ATTEMPT_TIMEOUT_MIN", Duration::from_secs(60))?;
        let attempt_timeout_max = duration("ATTEMPT_TIMEOUT_MAX", Duration::from_secs(7200))?;
        let cancel_grace = duration("CANCEL_GRACE", Duration::from_secs(5))?;
        let shutdown_grace = duration("SHUTDOWN_GRACE", Duration::from_secs(30))?;
        let termination_check_url = src
            .get("TERMINATION_CHECK_URL")
            .map(|u| {
                let t = u.trim();
                let host = t
                    .strip_prefix("http://")
                    .or_else(|| t.strip_prefix("https://"))
                    .unwrap_or("");
                if host.is_empty() || host.starts_with('/') || t.contains(char::is_whitespace) {
                    return Err(invalid(
                        "TERMINATION_CHECK_URL",
                        &u,
                        "expected an http:// or https:// URL with a host",
                    ));
                }
                Ok(t.to_owned())
            })
            .transpose()?;
        let termination_check_interval =
            duration("TERMINATION_CHECK_INTERVAL", Duration::from_secs(5))?;
        if termination_check_interval < Duration::from_millis(100) {
            return Err(invalid(
                "TERMINATION_CHECK_INTERVAL",
                &format!("{termination_check_interval:?}"),
                "must be at least 100ms",
            ));
        }
        let attempt_retention_age =
            duration("ATTEMPT_RETENTION_AGE", Duration::from_secs(7 * 24 * 3600))?;
        let attempt_retention_bytes = bytes("ATTEMPT_RETENTION_BYTES")?.unwrap_or(10 << 30);
        let output_space_margin = bytes("OUTPUT_SPACE_MARGIN")?.unwrap_or(1 << 30);
        let web_domain = src.get("WEB_DOMAIN");
        if let Some(d) = &web_domain {
            if !d
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(invalid(
                    "WEB_DOMAIN",
                    d,
                    "expected a domain name, e.g. example.com",
                ));
            }
        }
        let nfs_dynamic_mount = match src.get("NFS_DYNAMIC_MOUNT") {
            Some(v) => {
                let on = parse_bool("NFS_DYNAMIC_MOUNT", &v)?;
                if on && nfs_mount_root.is_none() {
                    return Err(invalid(
                        "NFS_DYNAMIC_MOUNT",
                        &v,
                        "needs NFS_MOUNT_ROOT: instances are mounted on NFS_MOUNT_ROOT/<instance_name>",
                    ));
                }
                on
            }
            None => false,
        };
        let nfs_mount_cache = match src.get("NFS_MOUNT_CACHE") {
            Some(v) => parse_count("NFS_MOUNT_CACHE", &v, 1)?,
            None => 32,
        };
        let mount_timeout = duration("MOUNT_TIMEOUT", Duration::from_secs(60))?;
        let mount_policy = mount_policy(&src)?;
        let etcd = etcd_config(&src)?;
        let zip_server = src
            .get("ZIP_SERVER_OPTIONS")
            .map(|v| {
                ZipServerSetting::parse(&v)
                    .map_err(|e| invalid("ZIP_SERVER_OPTIONS", &v, e.to_string()))
            })
            .transpose()?;
        let zip_server_socket = src.get("ZIP_SERVER_SOCKET").map(PathBuf::from);
        if let Some(p) = &zip_server_socket {
            if !p.is_absolute() {
                return Err(invalid(
                    "ZIP_SERVER_SOCKET",
                    &p.display().to_string(),
                    "must be an absolute path",
                ));
            }
        }
        // ZIP_SERVER_OPTIONS without MULTI_PROCESS is only warned about
        // (`worker::zip_link`): operators export it everywhere.
        if zip_server_socket.is_some() && !multi_process {
            return Err(invalid(
                "ZIP_SERVER_SOCKET",
                &src.get("ZIP_SERVER_SOCKET").unwrap_or_default(),
                "needs MULTI_PROCESS=true: the zipserver compresses for attempt children",
            ));
        }

        Ok(WorkerConfig {
            listen,
            advertise_addr,
            worker_db_root,
            del_worker_temp_db,
            nfs_mount_root,
            hoster_roots,
            max_parallel_compactions,
            max_waiting_compactions,
            result_retention,
            queue_probe_timeout,
            max_request_bytes,
            max_admissions,
            http,
            auth_token,
            allow_no_token,
            multi_process,
            remote_storage,
            plugins,
            preloaded,
            child_limits,
            child_spares,
            attempt_timeout_multiplier,
            attempt_timeout_min,
            attempt_timeout_max,
            cancel_grace,
            shutdown_grace,
            termination_check_url,
            termination_check_interval,
            attempt_retention_age,
            attempt_retention_bytes,
            output_space_margin,
            web_domain,
            nfs_dynamic_mount,
            nfs_mount_cache,
            mount_timeout,
            mount_policy,
            etcd,
            zip_server,
            zip_server_socket,
        })
    }
}

/// `HTTP_HEADER_TIMEOUT`, `HTTP_BODY_TIMEOUT`, `HTTP_IDLE_TIMEOUT` (each
/// at least 1 ms) and `MAX_CONNECTIONS`.
fn http_limits(src: &Sources<'_>) -> Result<HttpLimits, ConfigError> {
    let timeout = |name: &'static str, default: Duration| {
        let Some(v) = src.get(name) else {
            return Ok(default);
        };
        let d = parse_duration(name, &v)?;
        if d.is_zero() {
            return Err(invalid(name, &v, "must be longer than 0"));
        }
        Ok(d)
    };
    let max_connections = match src.get("MAX_CONNECTIONS") {
        Some(v) => parse_count("MAX_CONNECTIONS", &v, 1)?,
        None => {
            let open_files =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .ok()
                    .map(|(soft, _)| soft);
            HttpLimits::default_max_connections(open_files)
        }
    };
    Ok(HttpLimits {
        header_timeout: timeout("HTTP_HEADER_TIMEOUT", HttpLimits::DEFAULT_HEADER_TIMEOUT)?,
        body_timeout: timeout("HTTP_BODY_TIMEOUT", HttpLimits::DEFAULT_BODY_TIMEOUT)?,
        idle_timeout: timeout("HTTP_IDLE_TIMEOUT", HttpLimits::DEFAULT_IDLE_TIMEOUT)?,
        max_connections,
    })
}

/// `MOUNT_ALLOWED_TYPES` and `MOUNT_ALLOWED_OPTIONS`: an error names the
/// setting and the item it refuses.
fn mount_policy(src: &Sources<'_>) -> Result<MountPolicy, ConfigError> {
    let types = src.get("MOUNT_ALLOWED_TYPES");
    let options = src.get("MOUNT_ALLOWED_OPTIONS");
    let types_text = types.as_deref().unwrap_or(policy::DEFAULT_TYPES);
    let options_text = options.as_deref().unwrap_or(policy::DEFAULT_OPTIONS);
    // Each list alone, so that the error names the setting at fault.
    MountPolicy::new(types_text, policy::DEFAULT_OPTIONS)
        .map_err(|e| invalid("MOUNT_ALLOWED_TYPES", types_text, e.to_string()))?;
    MountPolicy::new(policy::DEFAULT_TYPES, options_text)
        .map_err(|e| invalid("MOUNT_ALLOWED_OPTIONS", options_text, e.to_string()))?;
    MountPolicy::new(types_text, options_text)
        .map_err(|e| invalid("MOUNT_ALLOWED_TYPES", types_text, e.to_string()))
}

/// The `ETCD_*` settings, when `ETCD_URL` is set.
fn etcd_config(src: &Sources<'_>) -> Result<Option<EtcdConfig>, ConfigError> {
    let Some(url) = src.get("ETCD_URL") else {
        for name in ["ETCD_USERNAME", "ETCD_CA", "ETCD_CERT", "ETCD_KEY"] {
            if src.get(name).is_some() {
                return Err(invalid(name, "", "is set but ETCD_URL is not"));
            }
        }
        return Ok(None);
    };
    let root = src.get("ETCD_ROOT").unwrap_or_else(|| "/dcompact".into());
    let mut c = EtcdConfig::new(&url, &root).map_err(|e| {
        let name = if e.field == "etcd root" {
            "ETCD_ROOT"
        } else {
            "ETCD_URL"
        };
        invalid(name, &e.value, e.why)
    })?;
    c.username = src.get("ETCD_USERNAME");
    c.password = match (&c.username, src.get("ETCD_PASSWORD")) {
        (None, Some(_)) => {
            // ToplingDB connects without credentials then; so does this.
            tracing::warn!("ETCD_PASSWORD is set without ETCD_USERNAME: ignored, as ToplingDB ignores it; connecting to etcd without credentials");
            None
        }
        (_, password) => password.map(Secret::new),
    };
    c.ca = src.get("ETCD_CA").map(PathBuf::from);
    c.cert = src.get("ETCD_CERT").map(PathBuf::from);
    c.key = src.get("ETCD_KEY").map(PathBuf::from);
    if let Some(v) = src.get("ETCD_LOAD_BALANCER") {
        c.balance = EndpointBalance::parse(&v).ok_or_else(|| {
            invalid(
                "ETCD_LOAD_BALANCER",
                &v,
                "expected round_robin or pick_first",
            )
        })?;
    }
    if let Some(v) = src.get("ETCD_LEASE_TTL") {
        c.lease_ttl = parse_duration("ETCD_LEASE_TTL", &v)?;
    }
    if let Some(v) = src.get("ETCD_DONE_TTL") {
        c.done_ttl = parse_duration("ETCD_DONE_TTL", &v)?;
    }
    // The password is never part of an error message.
    c.finish()
        .map(Some)
        .map_err(|e| invalid("ETCD_*", &e.value, format!("{}: {}", e.field, e.why)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Loads with `env`, plus `HOSTER_ROOTS=/data` when `env` names no
    /// storage (every worker needs one).
    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<WorkerConfig, ConfigError> {
        let storage = ["HOSTER_ROOTS", "NFS_MOUNT_ROOT"];
        let named = env.iter().any(|(k, _)| storage.contains(k))
            || file.is_some_and(|f| f.contains("hoster_roots") || f.contains("nfs_mount_root"));
        let mut env = env.to_vec();
        if !named {
            env.push(("HOSTER_ROOTS", "/data"));
        }
        load_exact(&env, file)
    }

    fn load_exact(env: &[(&str, &str)], file: Option<&str>) -> Result<WorkerConfig, ConfigError> {
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
    fn defaults_need_only_the_storage() {
        let e = load_exact(&[], None).unwrap_err().to_string();
        assert!(
            e.contains("HOSTER_ROOTS") && e.contains("NFS_MOUNT_ROOT"),
            "{e}"
        );
        let c = load(&[("HOSTER_ROOTS", "/data")], None).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.worker_db_root, PathBuf::from("/var/lib/dcompact-worker"));
        assert_eq!(c.hoster_roots, [PathBuf::from("/data")]);
        assert!(!c.allow_no_token);
        assert!(!c.del_worker_temp_db);
        assert_eq!(c.max_waiting_compactions, 2 * c.max_parallel_compactions);
    }

    #[test]
    fn roots_that_are_not_the_workers_own_are_refused() {
        for (name, bad) in [
            ("WORKER_DB_ROOT", "/"),
            ("WORKER_DB_ROOT", "/var/lib"),
            ("WORKER_DB_ROOT", "/home/alice"),
            ("WORKER_DB_ROOT", "/usr/share/w"),
            ("NFS_MOUNT_ROOT", "/"),
            ("HOSTER_ROOTS", "/"),
            ("HOSTER_ROOTS", "/srv/a:/etc"),
        ] {
            let e = load(&[(name, bad)], None).unwrap_err().to_string();
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
        let e = load(
            &[
                ("WORKER_DB_ROOT", "/srv/w"),
                ("NFS_MOUNT_ROOT", "/srv/w/mnt"),
            ],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("contain"), "{e}");
        let e = load(
            &[("WORKER_DB_ROOT", "/data/w"), ("HOSTER_ROOTS", "/data")],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("WORKER_DB_ROOT") && e.contains("HOSTER_ROOTS"),
            "{e}"
        );
        let c = load(&[("HOSTER_ROOTS", "/data/a:/srv/b/")], None).unwrap();
        assert_eq!(
            c.hoster_roots,
            [PathBuf::from("/data/a"), PathBuf::from("/srv/b")]
        );
        assert!(!c.del_worker_temp_db);
        assert_eq!(c.max_waiting_compactions, 2 * c.max_parallel_compactions);
    }

    #[test]
    fn web_domain_must_be_a_domain_name() {
        let c = load(&[("WEB_DOMAIN", "ops.example.com")], None).unwrap();
        assert_eq!(c.web_domain.as_deref(), Some("ops.example.com"));
        let e = load(&[("WEB_DOMAIN", "x\";alert(1)//")], None).unwrap_err();
        assert!(e.to_string().starts_with("WEB_DOMAIN="), "{e}");
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

    /// `PLUGINS` are loaded, never preloaded into children; the worker's
    /// own `LD_PRELOAD` is both.
    #[test]
    fn only_the_workers_own_preload_is_preloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("liba.so");
        let b = dir.path().join("libb.so");
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        let (a_s, b_s) = (a.display().to_string(), b.display().to_string());
        let c = load(&[("PLUGINS", &a_s), ("LD_PRELOAD", &b_s)], None).unwrap();
        assert_eq!(c.plugins, vec![a.clone(), b.clone()]);
        assert_eq!(c.preloaded, vec![b]);
        let c = load(&[("PLUGINS", &a_s)], None).unwrap();
        assert_eq!(c.plugins, vec![a]);
        assert!(c.preloaded.is_empty());
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
        let e = load(&[("PLUGINS", "/nonexistent.so")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PLUGINS") && e.contains("not a file"), "{e}");
        let e = load(&[("CHILD_MEMORY_LIMIT", "lots")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CHILD_MEMORY_LIMIT"), "{e}");
        let e = load(&[("CHILD_NICE", "40")], None).unwrap_err().to_string();
        assert!(e.contains("CHILD_NICE"), "{e}");
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
    fn dynamic_mount_needs_a_mount_root() {
        let e = load(&[("NFS_DYNAMIC_MOUNT", "1")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NFS_MOUNT_ROOT"), "{e}");
        let c = load(
            &[("NFS_DYNAMIC_MOUNT", "1"), ("NFS_MOUNT_ROOT", "/mnt/farm")],
            Some("nfs_mount_cache = 4\nmount_timeout = \"5s\"\n"),
        )
        .unwrap();
        assert!(c.nfs_dynamic_mount);
        assert_eq!(c.nfs_mount_cache, 4);
        assert_eq!(c.mount_timeout, Duration::from_secs(5));
        assert_eq!(load(&[], None).unwrap().nfs_mount_cache, 32);
        assert!(load(&[("NFS_MOUNT_CACHE", "0")], None).is_err());
    }

    #[test]
    fn mount_allow_lists_refuse_what_cannot_be_a_boundary() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.mount_policy, MountPolicy::default());
        let c = load(
            &[("MOUNT_ALLOWED_TYPES", "nfs4")],
            Some("mount_allowed_options = \"vers,hard,timeo=\"\n"),
        )
        .unwrap();
        assert_eq!(
            c.mount_policy,
            MountPolicy::new("nfs4", "vers,hard,timeo").unwrap()
        );
        for (name, value, says) in [
            ("MOUNT_ALLOWED_TYPES", "nfs,none", "only nfs and nfs4"),
            ("MOUNT_ALLOWED_TYPES", "tmpfs", "only nfs and nfs4"),
            ("MOUNT_ALLOWED_TYPES", "fuse.sshfs", "only nfs and nfs4"),
            ("MOUNT_ALLOWED_TYPES", "ext4", "only nfs and nfs4"),
            ("MOUNT_ALLOWED_OPTIONS", "vers,bind", "never allowed"),
            ("MOUNT_ALLOWED_OPTIONS", "vers,suid", "never allowed"),
            ("MOUNT_ALLOWED_OPTIONS", "X-mount.mkdir", "never allowed"),
            ("MOUNT_ALLOWED_OPTIONS", "helper=", "never allowed"),
            (
                "MOUNT_ALLOWED_OPTIONS",
                "vers;sh",
                "not a mount option name",
            ),
        ] {
            let e = load(&[(name, value)], None).unwrap_err().to_string();
            assert!(
                e.starts_with(name) && e.contains(says),
                "{name}={value}: {e}"
            );
        }
    }

    #[test]
    fn child_settings() {
        let c = load(
            &[
                ("MULTI_PROCESS", "true"),
                ("CHILD_MEMORY_LIMIT", "2G"),
                ("CHILD_FILE_SIZE_LIMIT", "64M"),
            ],
            None,
        )
        .unwrap();
        assert!(c.multi_process);
        assert_eq!(c.child_limits.memory, Some(2 << 30));
        assert_eq!(c.child_limits.file_size, Some(64 << 20));
        assert_eq!(c.child_limits.max_processes, 1024);
        assert_eq!(c.child_limits.cpu_weight, 100);
        assert_eq!(c.child_limits.cgroup, CgroupMode::Auto);
        assert_eq!(c.attempt_timeout(0), Duration::from_secs(7200));
        assert_eq!(c.attempt_timeout(1_000_000), Duration::from_secs(60));
        assert_eq!(c.attempt_timeout(60_000_000), Duration::from_secs(600));
        assert_eq!(c.attempt_timeout(u64::MAX), Duration::from_secs(7200));
    }

    #[test]
    fn termination_check_and_advertise_settings() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.termination_check_url, None);
        assert_eq!(c.termination_check_interval, Duration::from_secs(5));
        assert_eq!(c.advertise_addr, None);
        let c = load(
            &[
                (
                    "TERMINATION_CHECK_URL",
                    "http://169.254.169.254/latest/meta-data/spot/instance-action",
                ),
                ("TERMINATION_CHECK_INTERVAL", "2s"),
                ("ADVERTISE_ADDR", "https://proxy.example.com/w1/"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            c.termination_check_url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/spot/instance-action")
        );
        assert_eq!(c.termination_check_interval, Duration::from_secs(2));
        assert_eq!(
            c.advertise_addr.as_deref(),
            Some("https://proxy.example.com/w1")
        );
        let c = load(&[("ADVERTISE_ADDR", "self")], None).unwrap();
        assert_eq!(c.advertise_addr, None, "ToplingDB's default");
        for (name, bad) in [
            ("TERMINATION_CHECK_URL", "169.254.169.254/x"),
            ("TERMINATION_CHECK_URL", "http://"),
            ("TERMINATION_CHECK_INTERVAL", "10ms"),
            ("ADVERTISE_ADDR", "ftp://x:1"),
        ] {
            let e = load(&[(name, bad)], None).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn child_cgroup_settings() {
        let c = load(
            &[
                ("CHILD_MAX_PROCESSES", "64"),
                ("CHILD_CPU_WEIGHT", "50"),
                ("CHILD_CGROUP", "required"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.child_limits.max_processes, 64);
        assert_eq!(c.child_limits.cpu_weight, 50);
        assert_eq!(c.child_limits.cgroup, CgroupMode::Required);
        for (name, bad) in [
            ("CHILD_MAX_PROCESSES", "0"),
            ("CHILD_CPU_WEIGHT", "0"),
            ("CHILD_CPU_WEIGHT", "10001"),
            ("CHILD_CGROUP", "v1"),
        ] {
            let e = load(&[(name, bad)], None).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn etcd_settings() {
        assert!(load(&[], None).unwrap().etcd.is_none());
        let c = load(
            &[
                ("ETCD_URL", "127.0.0.1:2379,127.0.0.1:2380"),
                ("ETCD_USERNAME", "farm"),
                ("ETCD_PASSWORD", "s3cret"),
                ("ETCD_LEASE_TTL", "3s"),
            ],
            Some("etcd_root = \"/farm\"\n"),
        )
        .unwrap();
        let e = c.etcd.as_ref().unwrap();
        assert_eq!(
            e.endpoints,
            ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!(e.root, "/farm");
        assert_eq!(e.lease_ttl, Duration::from_secs(3));
        assert!(!format!("{c:?}").contains("s3cret"));
        // ToplingDB's meaning: a password without a username is ignored.
        let c = load(&[("ETCD_URL", "h:1"), ("ETCD_PASSWORD", "s3cret")], None).unwrap();
        let e = c.etcd.as_ref().unwrap();
        assert!(e.username.is_none() && e.password.is_none());
        let err = load(&[("ETCD_CA", "/x.pem")], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ETCD_URL"), "{err}");
        let err = load(
            &[("ETCD_URL", "h:1"), ("ETCD_LOAD_BALANCER", "random")],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ETCD_LOAD_BALANCER"), "{err}");
    }

    #[test]
    fn zipserver_settings() {
        let c = load(
            &[
                ("MULTI_PROCESS", "true"),
                (
                    "ZIP_SERVER_OPTIONS",
                    "listening_ports=127.0.0.1:0:num_threads=2",
                ),
            ],
            None,
        )
        .unwrap();
        assert!(matches!(c.zip_server, Some(ZipServerSetting::On(o)) if o.num_threads == 2));
        let c = load(&[("ZIP_SERVER_OPTIONS", "num_threads=2")], None).unwrap();
        assert!(
            !c.multi_process && c.zip_server.is_some(),
            "accepted, warned about at start"
        );
        let c = load(
            &[("MULTI_PROCESS", "true"), ("ZIP_SERVER_OPTIONS", "off")],
            None,
        )
        .unwrap();
        assert_eq!(c.zip_server, Some(ZipServerSetting::Off));
        let e = load(&[("ZIP_SERVER_SOCKET", "/z.sock")], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs MULTI_PROCESS"), "{e}");
        let e = load(
            &[
                ("MULTI_PROCESS", "true"),
                ("ZIP_SERVER_OPTIONS", "threads=2"),
            ],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ZIP_SERVER_OPTIONS") && e.contains("unknown key"),
            "{e}"
        );
        let e = load(
            &[("MULTI_PROCESS", "true"), ("ZIP_SERVER_SOCKET", "zip.sock")],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn http_limits_and_admissions() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.max_admissions, 4);
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.body_timeout, Duration::from_secs(60));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(30));
        assert!((16..=1024).contains(&c.http.max_connections));
        let c = load(
            &[("HTTP_HEADER_TIMEOUT", "500ms"), ("MAX_CONNECTIONS", "8")],
            Some("http_body_timeout = \"2s\"\nhttp_idle_timeout = \"1m\"\nmax_admissions = 2\n"),
        )
        .unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_millis(500));
        assert_eq!(c.http.body_timeout, Duration::from_secs(2));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.http.max_connections, 8);
        assert_eq!(c.max_admissions, 2);
        for (name, bad) in [
            ("HTTP_HEADER_TIMEOUT", "0s"),
            ("HTTP_BODY_TIMEOUT", "soon"),
            ("HTTP_IDLE_TIMEOUT", "0"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_ADMISSIONS", "0"),
        ] {
            let e = load(&[(name, bad)], None).unwrap_err().to_string();
            assert!(e.starts_with(name), "{name}={bad}: {e}");
        }
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
