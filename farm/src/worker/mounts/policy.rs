//! What the worker's configuration lets a job mount: the filesystem types
//! (`MOUNT_ALLOWED_TYPES`) and the mount option names
//! (`MOUNT_ALLOWED_OPTIONS`). A request chooses within these, never beyond.
//!
//! - Types: only those whose sources the worker knows how to check may be
//!   listed, `nfs` and `nfs4` (sources `host:/absolute/path`, see
//!   [`super::source`]). Any other type would let a request name a source
//!   on the worker host itself: `none`/`bind` re-mount a host directory,
//!   a block-device filesystem mounts a host disk, `tmpfs` needs no source
//!   at all, `fuse.*` runs a helper program of the type's choosing.
//! - Options: an allow-list of option *names*; `name=value` options are
//!   checked by name. Some names are never allowed, even when an operator
//!   lists them ([`forbidden`]): they re-mount or move mounts of the host,
//!   run programs, mount host files as devices, relabel files, or undo the
//!   options the worker always adds.
//! - [`ENFORCED_OPTIONS`] (`nosuid,nodev,noexec`) go last on every mount:
//!   later options win, so nothing a job asks for can undo them.

use std::collections::BTreeSet;

/// Appended to every mount's options.
pub const ENFORCED_OPTIONS: &str = "nosuid,nodev,noexec";

/// The types whose sources the worker checks (`host:/path`).
pub const CHECKABLE_TYPES: [&str; 2] = ["nfs", "nfs4"];

/// `MOUNT_ALLOWED_TYPES` unless set.
pub const DEFAULT_TYPES: &str = "nfs,nfs4";

/// `MOUNT_ALLOWED_OPTIONS` unless set: the usual NFS client options.
/// Not in it (an operator may add them): `addr`, `mountaddr`, `mounthost`
/// (they send the mount to another server than the source names), `bg`
/// (the helper exits before the mount exists).
pub const DEFAULT_OPTIONS: &str = "vers,nfsvers,minorversion,proto,mountproto,port,mountport,\
mountvers,timeo,retrans,retry,hard,soft,softreval,nosoftreval,intr,nointr,rsize,wsize,\
bsize,ac,noac,actimeo,acregmin,acregmax,acdirmin,acdirmax,lookupcache,nolock,lock,\
local_lock,sec,nconnect,max_connect,cto,nocto,fsc,nofsc,sharecache,nosharecache,\
resvport,noresvport,clientaddr,namlen,rdirplus,nordirplus,ro,rw,noatime,atime,relatime,\
norelatime,strictatime,nodiratime,diratime,sync,async,lazytime,nolazytime,nosuid,nodev,\
noexec";

/// Why an option name may never be allowed, or `None` when it may.
pub fn forbidden(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let why = match lower.as_str() {
        "suid" | "dev" | "exec" | "defaults" => {
            "it would let the mounted files run set-user-id programs, open devices or execute on the worker"
        }
        "bind" | "rbind" | "move" | "rmove" | "remount" => {
            "it re-mounts or moves a mount of the worker host instead of mounting the job's export"
        }
        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" | "unbindable"
        | "runbindable" => "it changes how mounts of the worker host propagate",
        "user" | "users" | "owner" | "group" => {
            "it lets unprivileged users of the worker host mount or unmount"
        }
        "helper" | "uhelper" => "it makes mount(8) run another program",
        "loop" | "offset" | "sizelimit" | "encryption" => {
            "it mounts a file of the worker host as a block device"
        }
        "context" | "fscontext" | "defcontext" | "rootcontext" => {
            "it labels the mounted files with an SELinux context of the request's choosing"
        }
        _ if lower.starts_with("x-") => "X-* options are read by mount(8) and systemd, not the filesystem (X-mount.mkdir creates directories, X-mount.owner changes owners)",
        _ if lower.starts_with("make-") => "it changes how mounts of the worker host propagate",
        _ => return None,
    };
    Some(why)
}

/// A setting that cannot be the boundary.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("names no type")]
    NoType,
    #[error("{0:?}: only {checkable} can be allowed: the worker checks their sources (host:/path); another type would let a request mount the worker host's own files (none/bind a directory, a block-device filesystem a disk, tmpfs or fuse.* anything)", checkable = CHECKABLE_TYPES.join(" and "))]
    Uncheckable(String),
    #[error(
        "{0:?} is not a mount option name (a letter or digit, then letters, digits, '_', '-', '.')"
    )]
    OptionName(String),
    #[error("{name}: never allowed: {why}")]
    Forbidden { name: String, why: &'static str },
}

/// What a job asked for that the policy refuses. Messages name the job's
/// field, the reason, and the setting an operator would change; option
/// values are never repeated (they may hold credentials).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(
        "nfs_type {asked:?} is not allowed by this worker's MOUNT_ALLOWED_TYPES ({allowed}){hint}"
    )]
    Type {
        asked: String,
        allowed: String,
        hint: &'static str,
    },
    #[error("nfs_mnt_opt: {name:?} is never allowed: {why}; the worker always mounts {enforced}", enforced = ENFORCED_OPTIONS)]
    Forbidden { name: String, why: &'static str },
    #[error("nfs_mnt_opt: {name:?} is not in this worker's MOUNT_ALLOWED_OPTIONS; an operator who needs it adds it there")]
    NotAllowed { name: String },
    #[error("nfs_mnt_opt: {0}")]
    Malformed(&'static str),
}

/// The validated `MOUNT_ALLOWED_TYPES` and `MOUNT_ALLOWED_OPTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPolicy {
    types: BTreeSet<String>,
    options: BTreeSet<String>,
}

impl Default for MountPolicy {
    fn default() -> Self {
        MountPolicy::new(DEFAULT_TYPES, DEFAULT_OPTIONS).expect("the defaults are allowed")
    }
}

impl MountPolicy {
    /// Parses the two comma-separated lists; each refusal names the item.
    pub fn new(types: &str, options: &str) -> Result<Self, PolicyError> {
        Ok(MountPolicy {
            types: parse_types(types)?,
            options: parse_options(options)?,
        })
    }

    /// The allowed types, in order.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(String::as_str)
    }

    /// Whether a job may ask for `fs_type`.
    pub fn check_type(&self, fs_type: &str) -> Result<(), RequestError> {
        if self.types.contains(fs_type) {
            return Ok(());
        }
        let hint = if CHECKABLE_TYPES.contains(&fs_type) {
            "; an operator may add it there"
        } else {
            "; only nfs and nfs4 can be allowed (the worker checks their sources, host:/path): set nfs_type to one of them on the hoster"
        };
        Err(RequestError::Type {
            asked: shown(fs_type),
            allowed: self.types.iter().cloned().collect::<Vec<_>>().join(","),
            hint,
        })
    }

    /// Whether every option of a job's comma-separated `options` is
    /// allowed by name; empty is allowed.
    pub fn check_options(&self, options: &str) -> Result<(), RequestError> {
        if options.is_empty() {
            return Ok(());
        }
        for option in options.split(',') {
            let (name, value) = match option.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (option, None),
            };
            if name.is_empty() {
                return Err(RequestError::Malformed("an empty option name"));
            }
            if !is_option_name(name) {
                return Err(RequestError::Malformed(
                    "an option name must be a letter or digit, then letters, digits, '_', '-' or '.'",
                ));
            }
            if let Some(why) = forbidden(name) {
                return Err(RequestError::Forbidden {
                    name: shown(name),
                    why,
                });
            }
            if !self.options.contains(name) {
                return Err(RequestError::NotAllowed { name: shown(name) });
            }
            if value.is_some_and(|v| !is_option_value(v)) {
                return Err(RequestError::Malformed(
                    "an option value must be printable ASCII without spaces, quotes, '\\' or '='",
                ));
            }
        }
        Ok(())
    }
}

fn parse_types(list: &str) -> Result<BTreeSet<String>, PolicyError> {
    let mut out = BTreeSet::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !CHECKABLE_TYPES.contains(&t) {
            return Err(PolicyError::Uncheckable(shown(t)));
        }
        out.insert(t.to_owned());
    }
    if out.is_empty() {
        return Err(PolicyError::NoType);
    }
    Ok(out)
}

fn parse_options(list: &str) -> Result<BTreeSet<String>, PolicyError> {
    let mut out = BTreeSet::new();
    for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        // An operator may write `timeo=` for "timeo with a value".
        let name = o.strip_suffix('=').unwrap_or(o);
        if !is_option_name(name) {
            return Err(PolicyError::OptionName(shown(o)));
        }
        if let Some(why) = forbidden(name) {
            return Err(PolicyError::Forbidden {
                name: name.to_owned(),
                why,
            });
        }
        out.insert(name.to_owned());
    }
    Ok(out)
}

fn is_option_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c))
}

fn is_option_value(v: &str) -> bool {
    v.len() <= 256
        && v.bytes()
            .all(|c| c.is_ascii_graphic() && !b"\"'\\=,".contains(&c))
}

/// A request's text in a message: at most 64 characters.
fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_nfs_and_its_usual_options() {
        let p = MountPolicy::default();
        assert_eq!(p.types().collect::<Vec<_>>(), ["nfs", "nfs4"]);
        p.check_type("nfs4").unwrap();
        p.check_options("").unwrap();
        p.check_options("vers=4.1,hard,timeo=600,retrans=2,noatime,nolock,sec=krb5:krb5i")
            .unwrap();
        p.check_options("rw,nosuid,nodev,noexec").unwrap();
    }

    #[test]
    fn types_that_cannot_be_checked_are_refused_at_start_and_in_jobs() {
        for t in [
            "none",
            "bind",
            "tmpfs",
            "ext4",
            "fuse",
            "fuse.sshfs",
            "cifs",
        ] {
            let e = MountPolicy::new(&format!("nfs,{t}"), DEFAULT_OPTIONS).unwrap_err();
            assert!(e.to_string().contains(t), "{e}");
            let e = MountPolicy::default()
                .check_type(t)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("MOUNT_ALLOWED_TYPES") && e.contains("only nfs and nfs4"),
                "{e}"
            );
        }
        assert!(matches!(
            MountPolicy::new(" , ", DEFAULT_OPTIONS),
            Err(PolicyError::NoType)
        ));
        let only_nfs = MountPolicy::new("nfs", DEFAULT_OPTIONS).unwrap();
        let e = only_nfs.check_type("nfs4").unwrap_err().to_string();
        assert!(e.contains("an operator may add it"), "{e}");
    }

    #[test]
    fn dangerous_options_are_never_allowed() {
        for o in [
            "bind",
            "rbind",
            "remount",
            "move",
            "make-shared",
            "rprivate",
            "X-mount.mkdir",
            "x-systemd.automount",
            "suid",
            "dev",
            "exec",
            "defaults",
            "user",
            "users",
            "owner",
            "group",
            "helper",
            "uhelper",
            "loop",
            "offset",
            "context",
            "SUID",
        ] {
            let e = MountPolicy::new("nfs", &format!("vers,{o}")).unwrap_err();
            assert!(matches!(e, PolicyError::Forbidden { .. }), "{o}: {e}");
            let e = MountPolicy::default()
                .check_options(&format!("vers=4,{o}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("never allowed"), "{o}: {e}");
        }
        let e = MountPolicy::default()
            .check_options("helper=/bin/sh")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"helper\"") && !e.contains("/bin/sh"), "{e}");
    }

    #[test]
    fn options_are_checked_by_name_and_values_never_shown() {
        let p = MountPolicy::new("nfs", "vers,hard").unwrap();
        p.check_options("vers=4.2,hard").unwrap();
        let e = p.check_options("vers=4.2,soft").unwrap_err().to_string();
        assert!(
            e.contains("\"soft\"") && e.contains("MOUNT_ALLOWED_OPTIONS"),
            "{e}"
        );
        let e = p.check_options("password=hunter2").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        for bad in [
            "vers=4,,hard",
            "vers=a b",
            "vers=\"4\"",
            "vers=4=5",
            ",hard",
            "ha rd",
        ] {
            assert!(p.check_options(bad).is_err(), "{bad}");
        }
        assert!(MountPolicy::new("nfs", "vers;rm").is_err());
        assert_eq!(
            MountPolicy::new("nfs", "timeo=, hard").unwrap(),
            MountPolicy::new("nfs", "timeo,hard").unwrap()
        );
    }
}
