//! Compiles the C++ half of the RocksDB bridge (`cpp/farm_shim.cc` and the
//! outputs' file checksum generator `cpp/farm_file_checksum.cc`, the
//! plugin registry `cpp/farm_plugins.cc`, the hoster's merge operator
//! `cpp/farm_merge.cc`, the hoster's flush compression
//! `cpp/farm_options.cc`, the crash test's deliberately wrong filter
//! `cpp/farm_selftest.cc` and the HTTP storage mode's file system
//! `cpp/farm_remote_fs.cc` with its table factory `cpp/farm_inputs_only.cc`;
//! the zip compression manager is the zipserver
//! crate's) against the RocksDB source that `librocksdb-sys` built, with the
//! same defines, so the
//! internal structs the shim reads have the layout the library was built with.
//! It refuses a RocksDB other than the one the shim was checked against
//! (`build/rocksdb_pin.rs`).

use std::env;
use std::path::{Path, PathBuf};

#[path = "build/rocksdb_pin.rs"]
mod rocksdb_pin;

/// Stops the build with `refusal` as the message.
fn refuse(refusal: rocksdb_pin::Refusal) -> ! {
    panic!("\n\nfarm: refusing to build: {refusal}\n\n");
}

/// The RocksDB the shim is compiled against must be the one it was checked
/// against, built from source.
fn check_rocksdb(manifest_dir: &Path) {
    for name in rocksdb_pin::WATCHED_VARS {
        println!("cargo:rerun-if-env-changed={name}");
        let value = env::var(name).ok();
        if let Err(r) = rocksdb_pin::check_variable(name, value.as_deref()) {
            refuse(r);
        }
    }
    let read = |path: PathBuf| {
        println!("cargo:rerun-if-changed={}", path.display());
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("farm: failed to read {}: {e}", path.display()))
    };
    if let Err(r) = rocksdb_pin::check_crate_manifest(&read(manifest_dir.join("Cargo.toml"))) {
        refuse(r);
    }
    let header = read(manifest_dir.join("rocksdb/include/rocksdb/version.h"));
    if let Err(r) = rocksdb_pin::check_version_header(&header) {
        refuse(r);
    }
}

fn main() {
    let manifest_dir = env::var("DEP_ROCKSDB_CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .expect("librocksdb-sys exports its manifest dir as DEP_ROCKSDB_CARGO_MANIFEST_DIR");
    check_rocksdb(&manifest_dir);
    let rocksdb_root = manifest_dir.join("rocksdb");

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("cpp/farm_shim.cc")
        .file("cpp/farm_file_checksum.cc")
        .file("cpp/farm_plugins.cc")
        .file("cpp/farm_merge.cc")
        .file("cpp/farm_options.cc")
        .file("cpp/farm_selftest.cc")
        .file("cpp/farm_remote_fs.cc")
        .file("cpp/farm_inputs_only.cc")
        .file("cpp/farm_manifest_trim.cc")
        .include("../plugins/include")
        .include(rocksdb_root.join("include"))
        .include(&rocksdb_root)
        .flag("-std=c++20")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .opt_level(2)
        .define("NDEBUG", Some("1"))
        .define("HAVE_ALIGNED_NEW", None)
        .define("HAVE_UINT128_EXTENSION", None)
        .define("OS_LINUX", None)
        .define("ROCKSDB_PLATFORM_POSIX", None)
        .define("ROCKSDB_LIB_IO_POSIX", None)
        .define("ROCKSDB_SCHED_GETCPU_PRESENT", None)
        .define("ROCKSDB_AUXV_GETAUXVAL_PRESENT", None)
        .define("ROCKSDB_FALLOCATE_PRESENT", None)
        .define("ROCKSDB_RANGESYNC_PRESENT", None)
        .define("SNAPPY", Some("1"))
        .define("LZ4", Some("1"))
        .define("ZSTD", Some("1"))
        .define("ZLIB", Some("1"));
    // compression.h includes the codecs' headers under these defines; the
    // shim must see the same definitions as the library (one definition rule).
    let snappy = rocksdb_root.parent().expect("rocksdb/ has a parent");
    build.include(snappy).include(snappy.join("snappy"));
    for var in ["DEP_ZSTD_INCLUDE", "DEP_LZ4_INCLUDE", "DEP_Z_INCLUDE"] {
        match env::var_os(var) {
            Some(dir) => {
                build.include(dir);
            }
            None => println!("cargo:warning={var} is not set; relying on system headers"),
        }
        println!("cargo:rerun-if-env-changed={var}");
    }
    build.compile("farm_shim");

    // C++ plugins register their classes in RocksDB's ObjectLibrary and must
    // reach the worker's own RocksDB (statically linked): export the
    // executables' symbols to the shared objects they load.
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic");
    // The tests build a C++ plugin against the same RocksDB headers.
    println!(
        "cargo:rustc-env=DEP_ROCKSDB_DIR_FOR_TESTS={}",
        rocksdb_root.display()
    );

    println!("cargo:rerun-if-changed=cpp/farm_shim.cc");
    println!("cargo:rerun-if-changed=cpp/farm_file_checksum.cc");
    println!("cargo:rerun-if-changed=cpp/farm_file_checksum.h");
    println!("cargo:rerun-if-changed=cpp/farm_plugins.cc");
    println!("cargo:rerun-if-changed=cpp/farm_merge.cc");
    println!("cargo:rerun-if-changed=cpp/farm_options.cc");
    println!("cargo:rerun-if-changed=cpp/farm_selftest.cc");
    println!("cargo:rerun-if-changed=cpp/farm_remote_fs.cc");
    println!("cargo:rerun-if-changed=cpp/farm_remote_fs.h");
    println!("cargo:rerun-if-changed=cpp/farm_inputs_only.cc");
    println!("cargo:rerun-if-changed=cpp/farm_inputs_only.h");
    println!("cargo:rerun-if-changed=cpp/farm_manifest_trim.cc");
    println!("cargo:rerun-if-changed=cpp/farm_manifest_trim.h");
    println!("cargo:rerun-if-changed=cpp/farm_guard.h");
    println!("cargo:rerun-if-changed=build/rocksdb_pin.rs");
    println!("cargo:rerun-if-changed=../plugins/include/farm_plugin.h");
    println!("cargo:rerun-if-env-changed=DEP_ROCKSDB_CARGO_MANIFEST_DIR");
}
