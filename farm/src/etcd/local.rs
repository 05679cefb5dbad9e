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

pub struct LocalEtcd {
    child: Option<Child>,
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
        let mut e = LocalEtcd {
            child: None,
            dir: dir.to_owned(),
            client_port: free_port().map_err(LocalEtcdError::Spawn)?,
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
        format!("http://{}", self.addr())
    }

    fn launch(&mut self) -> Result<(), LocalEtcdError> {
        let data = self.dir.join(format!("etcd-data-{}", self.generation));
        let log_path = self.dir.join(format!("etcd-{}.log", self.generation));
        let log = std::fs::File::create(&log_path).map_err(LocalEtcdError::Spawn)?;
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
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
        loop {
            let healthy = ureq::get(&format!("{}/health", self.url()))
                .timeout(Duration::from_secs(1))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .is_some_and(|b| b.contains("true"));
            if healthy {
                return Ok(());
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

    /// A client of this etcd (no credentials).
    pub fn client(&self) -> Result<EtcdClient, EtcdError> {
        let c = EtcdConfig::new(&self.addr(), "/local")
            .and_then(EtcdConfig::finish)
            .map_err(|e| EtcdError::Protocol {
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
