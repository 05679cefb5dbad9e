//! ToplingDB's `nfs_mnt_flags` as mount options.
//!
//! ToplingDB's hoster params have `nfs_mnt_flags` beside `nfs_mnt_opt`
//! ("noatime,rdma" in its README), and its worker names the `mount(2)`
//! flags (`MountFlags` in topling-dcompact's `mount_util.hpp`). A job of
//! this protocol carries options only, so the hoster turns each flag into
//! the `mount(8)` option with the same effect and appends it to
//! `nfs_mnt_opt`. The worker then checks every option against its own
//! `MOUNT_ALLOWED_OPTIONS` exactly as it checks what a job writes there
//! (`worker::mounts::policy`): a flag grants nothing an option could not.
//!
//! | flag | option |
//! | --- | --- |
//! | `readonly`, `rdonly` | `ro` |
//! | `synchronous` | `sync` |
//! | `i_version` | `iversion` |
//! | `mandlock` | `mand` |
//! | `dirsync`, `lazytime`, `noatime`, `nodiratime`, `relatime`, `strictatime`, `silent`, `nodev`, `noexec`, `nosuid`, `nouser` | the same name |
//! | `remount`, `rec`, `shared`, `slave`, `Private`, `unbindable`, `rmt_mask`, `posixacl` | refused: they re-mount or change the propagation of the worker host's mounts, or have no option form |
//! | any other name (`rdma`, `nolock`, ...) | the same name: an NFS option, allowed or not by the worker |

/// Why `nfs_mnt_flags` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("{0:?} is not a flag name (letters, digits, '_', '-', '.')")]
    Name(String),
    #[error("{flag:?}: {why}")]
    Refused { flag: String, why: &'static str },
}

/// The option of one flag.
pub fn option_of(flag: &str) -> Result<&str, FlagError> {
    let refused = |why| FlagError::Refused {
        flag: flag.to_owned(),
        why,
    };
    Ok(match flag {
        "readonly" | "rdonly" => "ro",
        "synchronous" => "sync",
        "i_version" => "iversion",
        "mandlock" => "mand",
        "remount" | "rec" => {
            return Err(refused(
                "it re-mounts the worker host's mounts; never allowed",
            ))
        }
        "shared" | "slave" | "Private" | "private" | "unbindable" => {
            return Err(refused(
                "it changes how the worker host's mounts propagate; never allowed",
            ))
        }
        "rmt_mask" | "posixacl" => return Err(refused("it has no mount option form")),
        other => {
            let ok = other
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && other
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                return Err(FlagError::Name(other.to_owned()));
            }
            other
        }
    })
}

/// `opt` with the options of `flags` (comma-separated) appended, each
/// once: what a hoster sends as `nfs_mnt_opt`.
pub fn with_flags(opt: &str, flags: &str) -> Result<String, FlagError> {
    let mut options: Vec<String> = opt
        .split(',')
        .filter(|o| !o.trim().is_empty())
        .map(str::to_owned)
        .collect();
    for flag in flags.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let option = option_of(flag)?;
        let present = options
            .iter()
            .any(|o| o.split('=').next().unwrap_or("") == option);
        if !present {
            options.push(option.to_owned());
        }
    }
    Ok(options.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toplingdb_readme_flags() {
        assert_eq!(with_flags("", "noatime,rdma").unwrap(), "noatime,rdma");
        assert_eq!(
            with_flags("nolock,vers=3", "readonly,noatime,nolock").unwrap(),
            "nolock,vers=3,ro,noatime"
        );
        assert_eq!(with_flags("hard", "").unwrap(), "hard");
        assert_eq!(
            with_flags("", "synchronous,i_version").unwrap(),
            "sync,iversion"
        );
    }

    #[test]
    fn host_altering_flags_are_refused() {
        for f in [
            "remount",
            "rec",
            "shared",
            "Private",
            "slave",
            "unbindable",
            "posixacl",
        ] {
            let e = with_flags("", f).unwrap_err();
            assert!(matches!(e, FlagError::Refused { .. }), "{f}: {e}");
        }
        assert_eq!(
            with_flags("", "x=1").unwrap_err(),
            FlagError::Name("x=1".into())
        );
    }
}
