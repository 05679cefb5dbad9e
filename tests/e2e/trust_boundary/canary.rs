//! Snapshots of trees the worker must not touch: every entry's kind, size,
//! mtime, content (files) and target (symlinks), compared after the fact.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { mtime_ns: i128 },
    File { mtime_ns: i128, content: Vec<u8> },
    Link { target: PathBuf },
}

/// Every entry below `root` (not following symlinks), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).expect("entry readable");
    let entry = if meta.file_type().is_symlink() {
        Entry::Link {
            target: std::fs::read_link(&path).expect("link readable"),
        }
    } else if meta.is_dir() {
        for e in std::fs::read_dir(&path).expect("dir readable") {
            let e = e.expect("dir entry");
            walk(root, &rel.join(e.file_name()), out);
        }
        Entry::Dir {
            mtime_ns: mtime_ns(&meta),
        }
    } else {
        Entry::File {
            mtime_ns: mtime_ns(&meta),
            content: std::fs::read(&path).expect("file readable"),
        }
    };
    out.insert(rel.to_owned(), entry);
}

/// Asserts `root` is exactly as `before` recorded it.
pub fn assert_unchanged(root: &Path, before: &BTreeMap<PathBuf, Entry>) {
    let after = snapshot(root);
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .chain(after.keys().filter(|k| !before.contains_key(*k)))
        .take(10)
        .collect();
    assert!(
        changed.is_empty(),
        "{} changed (first few: {changed:?})",
        root.display()
    );
}

/// A canary directory with a file in it, outside every root a worker has.
pub fn canary(dir: &Path) -> PathBuf {
    let c = dir.join("canary");
    std::fs::create_dir_all(c.join("nested")).unwrap();
    std::fs::write(c.join("precious.txt"), "the host's data").unwrap();
    std::fs::write(c.join("nested/CURRENT"), "MANIFEST-000001\n").unwrap();
    c
}

/// Sets the mtime of `path` (not following a symlink) `age` in the past.
pub fn age(path: &Path, age: std::time::Duration) {
    let t = std::time::SystemTime::now() - age;
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs() as i64;
    let ts = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid path; `times` is two valid timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [ts, ts].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}
