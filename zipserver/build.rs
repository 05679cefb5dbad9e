//! Compiles the C++ half of the zipserver (`cpp/zipserver.cc`: the
//! `FarmZipServer` compression manager and RocksDB's built-in compressor)
//! against the RocksDB headers that `librocksdb-sys` built, with the same
//! defines as that library. Its extern "C" functions follow the farm shim's
//! error convention and share its guard (`../farm/cpp/farm_guard.h`): no C++
//! exception crosses the C boundary.

use std::env;
use std::path::PathBuf;

fn main() {
    let rocksdb_root = env::var("DEP_ROCKSDB_CARGO_MANIFEST_DIR")
        .map(|dir| PathBuf::from(dir).join("rocksdb"))
        .expect("librocksdb-sys exports its manifest dir as DEP_ROCKSDB_CARGO_MANIFEST_DIR");

    cc::Build::new()
        .cpp(true)
        .file("cpp/zipserver.cc")
        .include("../farm/cpp")
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
    println!("cargo:rerun-if-changed=../farm/cpp/farm_guard.h");
    println!("cargo:rerun-if-env-changed=DEP_ROCKSDB_CARGO_MANIFEST_DIR");
}
