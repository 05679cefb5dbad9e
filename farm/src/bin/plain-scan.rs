//! `plain-scan <db dir>`: opens a RocksDB database read-only with the plain
//! `rocksdb` crate and default options, and prints every entry of every
//! column family, reading each block with checksum verification.
//!
//! It uses no farm code: it proves that the farm's SSTs (compressed by the
//! zipserver, for instance) are ordinary RocksDB files. It checks that
//! claim about itself first: the worker's shim symbols (exported by every
//! binary of this package when linked in) must be absent from the process.
//!
//! Output: `farm_code=absent`, then one `<cf>\t<hex key>\t<hex value>` line
//! per entry, then `entries=<n>`.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use rocksdb::{IteratorMode, Options, ReadOptions, DB};
use std::ffi::c_void;
use std::io::Write;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether any of the farm shim's exported functions is in this process.
fn farm_code_loaded() -> bool {
    let this = libloading::os::unix::Library::this();
    [
        "zipserver_register",
        "farm_free",
        "farm_override_from_options_file",
    ]
    .iter()
    .any(|name| {
        // SAFETY: only looks the symbol up; the address is never used.
        unsafe { this.get::<*const c_void>(name.as_bytes()) }.is_ok()
    })
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: plain-scan <db dir>");
        std::process::exit(2);
    };
    if farm_code_loaded() {
        eprintln!("plain-scan: farm code is linked into this process; refusing to vouch for plain RocksDB");
        std::process::exit(3);
    }
    if let Err(e) = scan(&path) {
        eprintln!("plain-scan: {e}");
        std::process::exit(1);
    }
}

fn scan(path: &str) -> Result<(), rocksdb::Error> {
    let opts = Options::default();
    let cfs = DB::list_cf(&opts, path)?;
    let db = DB::open_cf_for_read_only(&opts, path, &cfs, false)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let _ = writeln!(out, "farm_code=absent");
    let mut entries = 0u64;
    for name in &cfs {
        let cf = db.cf_handle(name).expect("listed column family is open");
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        for item in db.iterator_cf_opt(cf, ro, IteratorMode::Start) {
            let (k, v) = item?;
            let _ = writeln!(out, "{name}\t{}\t{}", hex(&k), hex(&v));
            entries += 1;
        }
    }
    let _ = writeln!(out, "entries={entries}");
    Ok(())
}
