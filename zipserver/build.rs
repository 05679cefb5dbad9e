//! Compiles the C++ half of the zipserver (`cpp/zipserver.cc`: the
//! `FarmZipServer` compression manager and RocksDB's built-in compressor)
//! against the RocksDB headers that `librocksdb-sys` built, with the same
//! defines as that library.

use std::env;
use std::path::PathBuf;

fn main() {
    let rocksdb_root = env::var("DEP_ROCKSDB_CARGO_MANIFEST_DIR")
        .map(|dir| PathBuf::from(dir).join("rocksdb"))
        .expect("librocksdb-sys exports its manifest dir as DEP_ROCKSDB_CARGO_MANIFEST_DIR");

    cc::Build::new()
        .cpp(true)
        .file("cpp/zipserver.cc")
        .include(rocksdb_root.join("include"))
        .flag("-std=c++20")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(2)
        .define("NDEBUG", Some("1"))
        .define("OS_LINUX", None)
        .define("ROCKSDB_PLATFORM_POSIX", None)
        .define("ROCKSDB_LIB_IO_POSIX", None)
        .compile("zipserver_shim");

    println!("cargo:rerun-if-changed=cpp/zipserver.cc");
    println!("cargo:rerun-if-env-changed=DEP_ROCKSDB_CARGO_MANIFEST_DIR");
}
