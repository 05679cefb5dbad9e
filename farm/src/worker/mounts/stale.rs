//! Recognising a stale file handle (`ESTALE`) in an attempt's error: RocksDB
//! and std report it by its `strerror` text, a child by its message.

/// Whether `error` says a file handle went stale.
pub fn is_stale_handle(error: &str) -> bool {
    let text = std::io::Error::from_raw_os_error(libc::ESTALE).to_string();
    // "Stale file handle (os error 116)": the words alone match RocksDB's
    // "IO error: While open a file ...: Stale file handle" as well.
    let words = text.split(" (os error").next().unwrap_or(&text);
    error.contains(words) || error.contains("ESTALE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_rocksdb_and_std_messages() {
        assert!(is_stale_handle(
            "IO error: While open a file for random read: /m/db/000012.sst: Stale file handle"
        ));
        assert!(is_stale_handle(
            &std::io::Error::from_raw_os_error(libc::ESTALE).to_string()
        ));
        assert!(!is_stale_handle("IO error: No such file or directory"));
    }
}
