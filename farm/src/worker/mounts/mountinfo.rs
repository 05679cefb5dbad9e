//! Which mount points exist, read from `/proc/<pid>/mountinfo`: the worker
//! confirms a mount really appeared (a helper may exit 0 and do nothing) and
//! tests watch a worker's mounts come and go.

use std::io;
use std::path::{Path, PathBuf};

/// The mount points listed in `/proc/<pid>/mountinfo` (`self` for this
/// process), in order, stacked mounts repeated.
pub fn mount_points(pid: Option<u32>) -> io::Result<Vec<PathBuf>> {
    let file = match pid {
        Some(pid) => format!("/proc/{pid}/mountinfo"),
        None => "/proc/self/mountinfo".to_owned(),
    };
    Ok(parse(&std::fs::read_to_string(file)?))
}

/// How many mounts are stacked on `target` in this process's namespace.
pub fn mounts_at(target: &Path) -> io::Result<usize> {
    Ok(mount_points(None)?
        .iter()
        .filter(|p| p.as_path() == target)
        .count())
}

/// The fifth field of each line is the mount point, with space, tab,
/// newline and backslash written as octal escapes.
fn parse(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mount_points_with_escapes() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:35 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse(text),
            vec![PathBuf::from("/"), PathBuf::from("/mnt/a b")]
        );
        assert!(mount_points(None).unwrap().contains(&PathBuf::from("/")));
    }
}
