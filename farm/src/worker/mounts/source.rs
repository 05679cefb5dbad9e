//! The source of an NFS mount, checked: `host:/absolute/path`, where the
//! host is a host name, an IPv4 address or an `[IPv6]` address, and the
//! path is a normal absolute path (no empty, `.` or `..` component).
//!
//! A local path (`/`, `/etc`, `/dev/sda1`) is never an NFS source, so a
//! request cannot make the worker mount its own files through an allowed
//! type. Loopback and unspecified addresses (`localhost`, `127.0.0.1`,
//! `[::1]`, `0.0.0.0`) are refused as well: an NFS server on the worker
//! host would serve the host's own files. A name that resolves to the
//! worker host through DNS or `/etc/hosts` is not detected here: that is
//! the operator's network to keep apart.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("no host: a local path is never an NFS source")]
    NoHost,
    #[error("the host is not a host name, an IPv4 address or an [IPv6] address")]
    Host,
    #[error("the host is this machine (loopback or unspecified): its NFS exports are the worker host's own files")]
    Loopback,
    #[error("the path after the host must be absolute ('/...')")]
    Relative,
    #[error("the path must be normal: no empty, '.' or '..' component, no control characters or whitespace")]
    NotNormal,
}

/// Checks an NFS source; see the module docs.
pub fn check_nfs_source(source: &str) -> Result<(), SourceError> {
    let (host, path) = split(source)?;
    check_host(host)?;
    check_path(path)
}

/// `[v6]:path` or `host:path`.
fn split(source: &str) -> Result<(&str, &str), SourceError> {
    if let Some(rest) = source.strip_prefix('[') {
        let (host, path) = rest.split_once("]:").ok_or(SourceError::Host)?;
        let ip: Ipv6Addr = host.parse().map_err(|_| SourceError::Host)?;
        let mapped_loopback = ip.to_ipv4_mapped().is_some_and(|v4| v4_is_local(&v4));
        if ip.is_loopback() || ip.is_unspecified() || mapped_loopback {
            return Err(SourceError::Loopback);
        }
        return Ok(("", path));
    }
    match source.split_once(':') {
        Some((host, path)) if !host.is_empty() => Ok((host, path)),
        Some(_) => Err(SourceError::Host),
        None => Err(SourceError::NoHost),
    }
}

fn v4_is_local(ip: &Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// A host name or an IPv4 address (an IPv6 one was checked by `split`,
/// which leaves the host empty).
fn check_host(host: &str) -> Result<(), SourceError> {
    if host.is_empty() {
        return Ok(());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return if v4_is_local(&ip) {
            Err(SourceError::Loopback)
        } else {
            Ok(())
        };
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    // A last label of digits only reads as an address ("1.2.3", "10").
    let numeric_tail = labels
        .last()
        .is_some_and(|l| l.bytes().all(|c| c.is_ascii_digit()));
    if host.len() > 253 || !labels.iter().all(label_ok) || numeric_tail {
        return Err(SourceError::Host);
    }
    let lower = host.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    if lower == "localhost" || lower.ends_with(".localhost") || lower.starts_with("localhost.") {
        return Err(SourceError::Loopback);
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), SourceError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(SourceError::Relative);
    };
    // One trailing '/' is usual ("server:/export/"); the root alone too.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let bad_char = path.chars().any(|c| c.is_control() || c.is_whitespace());
    let bad_component = !rest.is_empty()
        && rest
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad_char || bad_component || path.len() > 4096 {
        return Err(SourceError::NotNormal);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exports_of_named_and_numbered_servers() {
        for ok in [
            "nfs.example.com:/export/db",
            "filer-1:/",
            "filer-1:/vol/a/",
            "10.1.2.3:/srv/nfs",
            "[2001:db8::7]:/export",
            "nfs.example.com.:/x",
        ] {
            assert_eq!(check_nfs_source(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn local_paths_and_strange_hosts_are_refused() {
        use SourceError::*;
        for (bad, why) in [
            ("/", NoHost),
            ("/etc", NoHost),
            ("/dev/sda1", NoHost),
            ("none", NoHost),
            (":/etc", Host),
            ("-o:/x", Host),
            ("a_b:/x", Host),
            ("1.2.3:/x", Host),
            ("[::1:/x", Host),
            ("[fe80::1%eth0]:/x", Host),
            ("localhost:/", Loopback),
            ("LocalHost.:/", Loopback),
            ("a.localhost:/", Loopback),
            ("127.0.0.1:/", Loopback),
            ("0.0.0.0:/", Loopback),
            ("[::1]:/", Loopback),
            ("[::]:/", Loopback),
            ("[::ffff:127.0.0.1]:/", Loopback),
            ("srv:etc", Relative),
            ("srv:", Relative),
            ("srv:/a/../etc", NotNormal),
            ("srv:/a//b", NotNormal),
            ("srv:/./a", NotNormal),
            ("srv:/a b", NotNormal),
            ("srv:/a\nb", NotNormal),
        ] {
            assert_eq!(check_nfs_source(bad), Err(why), "{bad}");
        }
    }
}
