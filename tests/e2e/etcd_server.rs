//! A real `etcd` (Debian's `etcd-server`) on 127.0.0.1 with free ports and
//! a data directory of its own; killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EtcdServer {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    /// Data directories used so far (a restart may start with a new one).
    generation: u32,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl EtcdServer {
    /// Starts etcd below `dir` and waits until it is healthy.
    pub fn start(dir: &Path) -> EtcdServer {
        let mut s = EtcdServer {
            child: None,
            dir: dir.to_owned(),
            client_port: free_port(),
            peer_port: free_port(),
            generation: 0,
        };
        s.launch();
        s
    }

    /// `127.0.0.1:<port>`, as in ToplingDB's configuration.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    fn launch(&mut self) {
        let data = self.dir.join(format!("etcd-data-{}", self.generation));
        let log = std::fs::File::create(self.dir.join(format!("etcd-{}.log", self.generation)))
            .expect("etcd log file");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .args(["--name", "e2e"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &self.url()])
            .args(["--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e2e={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("etcd starts (Debian package etcd-server, see scripts/setup.sh)");
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
                return;
            }
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: etcd vanishes as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same ports with an empty data directory: every
    /// key is gone, so only re-registrations can bring workers back.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.generation += 1;
        self.launch();
    }

    fn client(&self) -> farm::etcd::client::EtcdClient {
        let c = farm::etcd::config::EtcdConfig::new(&self.addr(), "/any")
            .and_then(|c| c.finish())
            .expect("etcd config");
        farm::etcd::client::EtcdClient::new(&c, Duration::from_secs(1)).expect("etcd client")
    }

    /// Keys and values below `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<(String, String)> {
        self.client()
            .list(prefix)
            .expect("etcd answers")
            .1
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}
