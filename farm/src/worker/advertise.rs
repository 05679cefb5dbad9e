//! `ADVERTISE_ADDR`: how hosters and people reach this worker, in the
//! forms ToplingDB accepts.
//!
//! | value | base URL (etcd registration, page links) |
//! | --- | --- |
//! | unset, empty or `self` (ToplingDB's default) | `http://<the bound address>` |
//! | `host:port` | `http://host:port` |
//! | `http://host[:port][/path]`, `https://...` (a reverse proxy, as ToplingDB's README suggests) | the URL, without a trailing `/` |
//!
//! The value itself (without a trailing `/`) is the `addr` of
//! `/dcompact`'s answer and the worker's identity (`dcompact-worker@<value>`)
//! in its outputs' SST properties.

/// Why a value is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertiseError {
    #[error("expected host:port or an http:// or https:// URL with a host, without spaces")]
    Malformed,
}

/// The configured value: `None` for the bound address.
pub fn parse(value: &str) -> Result<Option<String>, AdvertiseError> {
    let raw = value.trim();
    if raw.is_empty() || raw == "self" {
        return Ok(None);
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AdvertiseError::Malformed);
    }
    let host = match raw.split_once("://") {
        Some(("http" | "https", rest)) => rest.split('/').next().unwrap_or(""),
        Some(_) => return Err(AdvertiseError::Malformed),
        None if raw.contains('/') => return Err(AdvertiseError::Malformed),
        None => raw,
    };
    let v = raw.trim_end_matches('/');
    if host.is_empty() || host.starts_with(':') {
        return Err(AdvertiseError::Malformed);
    }
    Ok(Some(v.to_owned()))
}

/// The base URL of an advertised address (see the module's table).
pub fn base_url(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_owned()
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toplingdb_forms_are_accepted() {
        assert_eq!(parse("self"), Ok(None));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("10.0.0.5:8080"), Ok(Some("10.0.0.5:8080".into())));
        assert_eq!(
            parse("https://proxy.example.com/worker-1/"),
            Ok(Some("https://proxy.example.com/worker-1".into()))
        );
        assert_eq!(
            parse("http://w1.example:8080"),
            Ok(Some("http://w1.example:8080".into()))
        );
        for bad in [
            "ftp://x",
            "a b:1",
            "host/path",
            "http://",
            "https:///x",
            ":80",
        ] {
            assert_eq!(parse(bad), Err(AdvertiseError::Malformed), "{bad}");
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("10.0.0.5:8080"), "http://10.0.0.5:8080");
        assert_eq!(
            base_url("https://proxy.example.com/worker-1"),
            "https://proxy.example.com/worker-1"
        );
    }
}
