//! The space guard: on shared storage the output directory sits on the
//! hoster's filesystem, and filling it stops the hoster too. A job is
//! refused when that filesystem's free space is below its estimated output
//! (the size of its input files) plus `OUTPUT_SPACE_MARGIN`.

use std::path::Path;

/// Free bytes (for unprivileged users) on the filesystem holding `path`, or
/// its nearest existing ancestor.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let mut p = path;
    while !p.exists() {
        p = p.parent().unwrap_or(Path::new("/"));
    }
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is live.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st
    };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// `Err` naming the shortfall when `output_dir`'s filesystem cannot take
/// `estimated` bytes plus `margin`.
pub fn check(output_dir: &Path, estimated: u64, margin: u64) -> Result<(), String> {
    let free = free_bytes(output_dir)
        .map_err(|e| format!("cannot read free space under {}: {e}", output_dir.display()))?;
    let needed = estimated.saturating_add(margin);
    if free < needed {
        return Err(format!(
            "not enough free space for the output: {} has {free} bytes free, the job needs {estimated} bytes plus OUTPUT_SPACE_MARGIN {margin}",
            output_dir.display()
        ));
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
        let e = check(dir.path(), free, 1 << 40).unwrap_err();
        assert!(e.contains("OUTPUT_SPACE_MARGIN"), "{e}");
    }
}
