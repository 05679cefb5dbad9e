//! The space guard: on shared storage the output directory sits on the
//! hoster's filesystem, and filling it stops the hoster too. A job is
//! refused when that filesystem's free space is below its estimated output
//! (the size of its input files) plus `OUTPUT_SPACE_MARGIN`.

use std::path::{Path, PathBuf};

/// Why a job's output may not fit.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("cannot read free space under {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not enough free space for the output: {} has {free} bytes free, the job needs {estimated} bytes plus OUTPUT_SPACE_MARGIN {margin}", path.display())]
    Short {
        path: PathBuf,
        free: u64,
        estimated: u64,
        margin: u64,
    },
}

/// Free bytes (for unprivileged users) on the filesystem holding `path`, or
/// its nearest existing ancestor.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().unwrap_or(Path::new("/"));
    }
    let st = nix::sys::statvfs::statvfs(p)?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// `Err` naming the shortfall when `output_dir`'s filesystem cannot take
/// `estimated` bytes plus `margin`.
pub fn check(output_dir: &Path, estimated: u64, margin: u64) -> Result<(), SpaceError> {
    let free = free_bytes(output_dir).map_err(|source| SpaceError::Unreadable {
        path: output_dir.to_owned(),
        source,
    })?;
    let needed = estimated.saturating_add(margin);
    if free < needed {
        return Err(SpaceError::Short {
            path: output_dir.to_owned(),
            free,
            estimated,
            margin,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("not/yet/there")).unwrap();
        assert!(free > 0);
        assert!(check(dir.path(), 0, 0).is_ok());
        let e = check(dir.path(), free, 1 << 40).unwrap_err().to_string();
        assert!(e.contains("OUTPUT_SPACE_MARGIN"), "{e}");
    }
}
