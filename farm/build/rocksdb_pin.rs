//! The RocksDB the C++ shim was checked against, and the build
//! configurations that would give it another one.
//!
//! The shim (`farm/cpp/`) redefines types that RocksDB's C API keeps opaque
//! (`rocksdb_options_t`, `rocksdb_compaction_service_options_override_t`),
//! reads internal headers (`CompactionServiceInput`/`Result`) and relies on
//! the C API's callbacks copying what they are handed (`db/c.cc`). All of it
//! was checked against one RocksDB source, built by `librocksdb-sys` with its
//! default C++ standard. So the build refuses, with a message, instead of
//! compiling a shim whose layouts may not match:
//!
//! - another `librocksdb-sys` or RocksDB version (a `cargo update`, or a
//!   caret requirement that lets one in);
//! - `ROCKSDB_LIB_DIR` (a prebuilt RocksDB of any version, linked instead
//!   of the source the shim is compiled against) and `ROCKSDB_INCLUDE_DIR`
//!   (other headers for the bindings);
//! - `ROCKSDB_CXX_STD` other than C++20 (the standard library types inside
//!   RocksDB's structs may change layout with it).
//!
//! Used by `build.rs`, and compiled into the library's unit tests.

/// The `librocksdb-sys` version the shim was checked against.
pub const CRATE_VERSION: &str = "0.19.0+11.8.1";
/// The RocksDB version inside it (`include/rocksdb/version.h`).
pub const ROCKSDB_VERSION: (u32, u32, u32) = (11, 8, 1);

/// The variables of `librocksdb-sys`'s build script that the farm refuses
/// (or accepts only with one value).
pub const WATCHED_VARS: [&str; 3] = ["ROCKSDB_LIB_DIR", "ROCKSDB_INCLUDE_DIR", "ROCKSDB_CXX_STD"];

/// Why the build stops.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A variable that swaps the RocksDB the shim is compiled against.
    Variable { name: &'static str, value: String },
    /// `librocksdb-sys` is another version.
    CrateVersion { found: String },
    /// RocksDB's `version.h` says another version.
    RocksdbVersion { found: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Variable { name, value } => write!(
                f,
                "{name}={value:?} is set, but the farm's C++ shim relies on the layouts of \
                 the RocksDB {CRATE_VERSION} that librocksdb-sys builds from source with \
                 -std=c++20; unset {name}"
            ),
            Refusal::CrateVersion { found } => write!(
                f,
                "librocksdb-sys {found} is in the build, but the farm's C++ shim was checked \
                 against {CRATE_VERSION} only (its layout assumptions, farm/cpp/); keep the \
                 `=` requirement in the workspace Cargo.toml, or check the shim against the \
                 new version and update farm/build/rocksdb_pin.rs"
            ),
            Refusal::RocksdbVersion { found } => {
                let (a, b, c) = ROCKSDB_VERSION;
                write!(
                    f,
                    "the RocksDB source in the build is version {found}, but the farm's C++ \
                     shim was checked against {a}.{b}.{c} only"
                )
            }
        }
    }
}

/// Checks one variable of [`WATCHED_VARS`] (`None`: unset).
pub fn check_variable(name: &'static str, value: Option<&str>) -> Result<(), Refusal> {
    let Some(value) = value else {
        return Ok(());
    };
    // librocksdb-sys's default, spelled out.
    if name == "ROCKSDB_CXX_STD" && matches!(value.trim(), "c++20" | "-std=c++20") {
        return Ok(());
    }
    Err(Refusal::Variable {
        name,
        value: value.to_owned(),
    })
}

/// Checks the `version` of `librocksdb-sys`'s `Cargo.toml` text.
pub fn check_crate_manifest(manifest: &str) -> Result<(), Refusal> {
    let found = manifest
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "version").then(|| value.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "of unknown version".to_owned());
    if found == CRATE_VERSION {
        Ok(())
    } else {
        Err(Refusal::CrateVersion { found })
    }
}

/// Checks the text of RocksDB's `include/rocksdb/version.h`.
pub fn check_version_header(header: &str) -> Result<(), Refusal> {
    let part = |name: &str| {
        header.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("#define")?.trim();
            let value = rest.strip_prefix(name)?;
            value.trim().parse::<u32>().ok()
        })
    };
    let found = (
        part("ROCKSDB_MAJOR"),
        part("ROCKSDB_MINOR"),
        part("ROCKSDB_PATCH"),
    );
    match found {
        (Some(a), Some(b), Some(c)) if (a, b, c) == ROCKSDB_VERSION => Ok(()),
        (Some(a), Some(b), Some(c)) => Err(Refusal::RocksdbVersion {
            found: format!("{a}.{b}.{c}"),
        }),
        _ => Err(Refusal::RocksdbVersion {
            found: "unknown (no version defines in version.h)".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_that_swap_rocksdb_are_refused() {
        for name in WATCHED_VARS {
            assert_eq!(check_variable(name, None), Ok(()), "{name} unset");
        }
        assert!(check_variable("ROCKSDB_LIB_DIR", Some("/usr/lib")).is_err());
        assert!(check_variable("ROCKSDB_INCLUDE_DIR", Some("/usr/include")).is_err());
        assert!(check_variable("ROCKSDB_CXX_STD", Some("c++17")).is_err());
        assert!(check_variable("ROCKSDB_CXX_STD", Some("-std=c++23")).is_err());
        assert!(check_variable("ROCKSDB_CXX_STD", Some("gnu++20")).is_err());
        assert_eq!(check_variable("ROCKSDB_CXX_STD", Some("c++20")), Ok(()));
        assert_eq!(
            check_variable("ROCKSDB_CXX_STD", Some("-std=c++20")),
            Ok(())
        );
        let message = check_variable("ROCKSDB_LIB_DIR", Some("/opt/rocksdb"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("unset ROCKSDB_LIB_DIR"), "{message}");
    }

    #[test]
    fn only_the_checked_versions_pass() {
        let manifest = |v: &str| {
            format!("[package]\nedition = \"2021\"\nname = \"librocksdb-sys\"\nversion = \"{v}\"\n\n[dependencies.libc]\nversion = \"0.2\"\n")
        };
        assert_eq!(check_crate_manifest(&manifest("0.19.0+11.8.1")), Ok(()));
        assert!(check_crate_manifest(&manifest("0.19.1+11.9.0")).is_err());
        assert!(check_crate_manifest("[package]\nname = \"x\"\n").is_err());
        let header = |m: u32, n: u32, p: u32| {
            format!("#pragma once\n#define ROCKSDB_MAJOR {m}\n#define ROCKSDB_MINOR {n}\n#define ROCKSDB_PATCH {p}\n")
        };
        assert_eq!(check_version_header(&header(11, 8, 1)), Ok(()));
        let e = check_version_header(&header(11, 9, 0)).unwrap_err();
        assert!(e.to_string().contains("11.9.0"), "{e}");
        assert!(check_version_header("").is_err());
    }

    /// The source this crate is really built against passes.
    #[test]
    fn the_rocksdb_in_this_build_passes() {
        let dir = std::path::Path::new(env!("DEP_ROCKSDB_DIR_FOR_TESTS"));
        let header = std::fs::read_to_string(dir.join("include/rocksdb/version.h")).unwrap();
        assert_eq!(check_version_header(&header), Ok(()));
        let manifest = std::fs::read_to_string(dir.join("../Cargo.toml")).unwrap();
        assert_eq!(check_crate_manifest(&manifest), Ok(()));
    }
}
