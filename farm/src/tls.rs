//! TLS client settings from PEM files, for the farm's HTTPS clients (etcd,
//! `https` workers): a CA whose certificates are trusted, and optionally a
//! client certificate with its key. rustls, ring provider.

use std::path::Path;
use std::sync::Arc;

/// Why the TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read the {what} file {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// A client configuration trusting the certificates in `ca` (PEM), with
/// the client certificate and key of `client` (PEM files) when given.
pub fn client_config(
    ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::File {
            what,
            path: path.display().to_string(),
            source,
        })
    };
    let file_error = |what: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::File { what, path, source }
    };
    let mut roots = rustls::RootCertStore::empty();
    let pem = read("CA", ca)?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(file_error("CA", ca))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::Config(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TlsError::Config(format!(
            "the CA file {} holds no certificate",
            ca.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let pem = read("certificate", cert)?;
            let certs = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(file_error("certificate", cert))?;
            let pem = read("key", key)?;
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(file_error("key", key))?
                .ok_or_else(|| TlsError::Config("the key file holds no private key".into()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::Config(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
