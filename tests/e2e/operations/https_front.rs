//! An HTTPS front for a worker, as an operator's TLS-terminating proxy
//! would be: rustls with a certificate for 127.0.0.1 from a test CA
//! (openssl), relaying each HTTP/1.1 request to the worker's plain port.

use crate::etcd_secured::{issue, openssl};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct HttpsFront {
    addr: String,
    /// The CA that signed the front's certificate.
    pub ca: PathBuf,
    requests: Arc<AtomicU64>,
}

impl HttpsFront {
    /// A front on 127.0.0.1 for the worker at `worker` (`ip:port`), its
    /// certificates made in `pki`.
    pub fn start(pki: &Path, worker: &str) -> HttpsFront {
        std::fs::create_dir_all(pki).unwrap();
        openssl(
            pki,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=front-ca",
            ],
        );
        let tls = issue(pki, "front", "serverAuth");
        let certs = rustls_pemfile::certs(&mut std::fs::read(&tls.cert).unwrap().as_slice())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut std::fs::read(&tls.key).unwrap().as_slice())
            .unwrap()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicU64::new(0));
        let (worker, counted) = (worker.to_owned(), requests.clone());
        // Serves until the test process ends; it holds only sockets.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (config, worker, counted) = (config.clone(), worker.clone(), counted.clone());
                std::thread::spawn(move || {
                    let Ok(server) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let tls = rustls::StreamOwned::new(server, conn);
                    relay(tls, &worker, &counted);
                });
            }
        });
        HttpsFront {
            addr,
            ca: tls.ca,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Requests relayed so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }
}

/// Relays requests from `client` to `worker` until either side closes.
fn relay(client: impl Read + Write, worker: &str, counted: &AtomicU64) {
    let mut client = BufReader::new(client);
    let Ok(upstream) = TcpStream::connect(worker) else {
        return;
    };
    let mut upstream_reader = BufReader::new(upstream.try_clone().unwrap());
    let mut upstream = upstream;
    while let Some(request) = message(&mut client) {
        counted.fetch_add(1, Ordering::AcqRel);
        if upstream.write_all(&request).is_err() {
            return;
        }
        let Some(answer) = message(&mut upstream_reader) else {
            return;
        };
        if client.get_mut().write_all(&answer).is_err() || client.get_mut().flush().is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 message (head and a `content-length` body), as bytes.
fn message(from: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if from.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(line.as_bytes());
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    from.read_exact(&mut body).ok()?;
    head.extend_from_slice(&body);
    Some(head)
}
