//! Starting a real `etcd` (Debian's `etcd-server`) on 127.0.0.1 with free
//! ports and a data directory of its own: for the end-to-end tests and the
//! benchmarks. Killed on drop.

use super::client::{EtcdClient, EtcdError};
use super::config::EtcdConfig;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LocalEtcdError {
    #[error("failed to start etcd (install the etcd-server package, see scripts/setup.sh): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("etcd did not become healthy within 30 s (its log: {0})")]
    NotHealthy(PathBuf),
}

/// PEM files for an etcd that serves only TLS and requires client
/// certificates signed by `ca`.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct LocalEtcd {
    child: Option<Child>,
    tls: Option<ServerTls>,
    /// How [`LocalEtcd::client`] reaches it (with TLS: the client files).
    client_config: EtcdConfig,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    /// Restarts so far: each run has its own data directory and log.
    generation: u32,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalEtcd {
    /// Starts etcd with its data and log below `dir`, and waits until it is
    /// healthy.
    pub fn start(dir: &Path) -> Result<Self, LocalEtcdError> {
        Self::start_with(dir, None, None)
    }

    /// Starts etcd serving only TLS with `server` files; `client` (CA,
    /// certificate, key) is what [`LocalEtcd::client`] uses.
    pub fn start_with(
        dir: &Path,
        server: Option<ServerTls>,
        client: Option<ServerTls>,
    ) -> Result<Self, LocalEtcdError> {
        let client_port = free_port().map_err(LocalEtcdError::Spawn)?;
        let scheme = if server.is_some() { "https" } else { "http" };
        let mut client_config =
            EtcdConfig::new(&format!("{scheme}://127.0.0.1:{client_port}"), "/local")
                .map_err(|e| LocalEtcdError::Spawn(std::io::Error::other(e)))?;
        if let Some(c) = client {
            client_config.ca = Some(c.ca);
            client_config.cert = Some(c.cert);
            client_config.key = Some(c.key);
        }
        client_config.request_timeout = Duration::from_secs(1);
        let mut e = LocalEtcd {
            child: None,
            tls: server,
            client_config,
            dir: dir.to_owned(),
            client_port,
            peer_port: free_port().map_err(LocalEtcdError::Spawn)?,
            generation: 0,
        };
        e.launch()?;
        Ok(e)
    }

    /// `127.0.0.1:<port>`, as ToplingDB's configurations write it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    fn launch(&mut self) -> Result<(), LocalEtcdError> {
        let data = self.dir.join(format!("etcd-data-{}", self.generation));
        let log_path = self.dir.join(format!("etcd-{}.log", self.generation));
        let log = std::fs::File::create(&log_path).map_err(LocalEtcdError::Spawn)?;
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new("etcd");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.cert)
                .arg("--key-file")
                .arg(&t.key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", "local"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &self.url()])
            .args(["--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("local={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(LocalEtcdError::Spawn)?)
            .stderr(log)
            .spawn()
            .map_err(LocalEtcdError::Spawn)?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = self.client().map_err(|e| {
            self.kill();
            LocalEtcdError::Spawn(std::io::Error::other(e))
        })?;
        loop {
            // Ready when it answers a read (with auth enabled: refuses it).
            match client.list("/local/") {
                Ok(_) | Err(EtcdError::Status { .. }) => return Ok(()),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(LocalEtcdError::NotHealthy(log_path));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same ports with an empty data directory: every
    /// key is gone.
    pub fn restart_empty(&mut self) -> Result<(), LocalEtcdError> {
        self.kill();
        self.generation += 1;
        self.launch()
    }

    /// A client of this etcd, without credentials.
    pub fn client(&self) -> Result<EtcdClient, EtcdError> {
        self.client_as(None)
    }

    /// A client logging in as `user` with `password`.
    pub fn client_as(&self, login: Option<(&str, &str)>) -> Result<EtcdClient, EtcdError> {
        let mut c = self.client_config.clone();
        if let Some((user, password)) = login {
            c.username = Some(user.to_owned());
            c.password = Some(super::config::Secret::new(password.to_owned()));
        }
        let c = c.finish().map_err(|e| EtcdError::Protocol {
            path: "config",
            message: e.to_string(),
        })?;
        EtcdClient::new(&c, Duration::from_secs(1))
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}
