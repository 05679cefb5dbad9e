//! The paths a compaction input and its OPTIONS file lead the worker to,
//! held to the mapped DB directory.
//!
//! A request's paths are mapped beneath the worker's roots
//! ([`crate::worker::paths`]); the compaction input and the OPTIONS file it
//! names come from the hoster's storage and name paths of their own:
//!
//! - `input_files`: RocksDB writes `/<number>.sst`; the worker accepts a
//!   plain file name (one leading `/` trimmed), nothing that climbs or
//!   descends, and opens it beneath the DB directory's handle.
//! - `options_file_number`: the worker reads `OPTIONS-<n>` in the DB
//!   directory; `n` is held to [`MAX_OPTIONS_FILE_NUMBER`].
//! - `db_paths`, `cf_paths` and `wal_dir` in that OPTIONS file would make
//!   RocksDB read SSTs or logs from other directories: the worker accepts
//!   them only empty (or `wal_dir` equal to the DB itself).
//!
//! Anything else is refused (412) with the field named.

use crate::worker::options_file::OptionsText;

/// The largest `options_file_number` the worker reads: RocksDB's file
/// numbers grow by one per file, far below this.
pub const MAX_OPTIONS_FILE_NUMBER: u64 = 1 << 48;

/// A path from the input or its OPTIONS file the worker will not follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputPathError {
    #[error("input_files: input file {0:?} is not a plain file name in the DB directory")]
    InputFile(String),
    #[error("options_file_number: {0} is beyond {MAX_OPTIONS_FILE_NUMBER}")]
    OptionsNumber(u64),
    #[error("{field}: the OPTIONS file sets {field}={value:?}; the worker reads only the DB directory, so it must be empty")]
    OptionsPath { field: &'static str, value: String },
}

impl InputPathError {
    /// The field the refusal is about.
    pub fn field(&self) -> &'static str {
        match self {
            InputPathError::InputFile(_) => "input_files",
            InputPathError::OptionsNumber(_) => "options_file_number",
            InputPathError::OptionsPath { field, .. } => field,
        }
    }
}

/// The plain file name an input file names: one component, not `.` or
/// `..`, no NUL and no control character.
pub fn input_file_name(f: &str) -> Result<&str, InputPathError> {
    let name = f.strip_prefix('/').unwrap_or(f);
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= crate::protocol::limits::MAX_NAME_BYTES
        && !name.contains('/')
        && !name.chars().any(crate::protocol::limits::is_forbidden_char);
    if plain {
        Ok(name)
    } else {
        Err(InputPathError::InputFile(f.to_owned()))
    }
}

pub fn check_options_file_number(n: u64) -> Result<(), InputPathError> {
    if n > MAX_OPTIONS_FILE_NUMBER {
        return Err(InputPathError::OptionsNumber(n));
    }
    Ok(())
}

/// `db_paths` and `wal_dir` of the DB, `cf_paths` of column family `cf`:
/// empty, or `wal_dir` equal to `dbname` (the hoster's path of the DB).
pub fn check_options_paths(
    text: &OptionsText,
    cf: &str,
    dbname: &str,
) -> Result<(), InputPathError> {
    let cf_section = format!("CFOptions \"{cf}\"");
    let set = [
        ("db_paths", text.get("DBOptions", "db_paths")),
        ("wal_dir", text.get("DBOptions", "wal_dir")),
        ("cf_paths", text.get(&cf_section, "cf_paths")),
    ];
    for (field, value) in set {
        let Some(value) = value else { continue };
        let empty = value.is_empty() || value == "{}";
        let own_wal =
            field == "wal_dir" && value.trim_end_matches('/') == dbname.trim_end_matches('/');
        if !empty && !own_wal {
            return Err(InputPathError::OptionsPath {
                field,
                value: value.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_files_are_plain_names() {
        assert_eq!(input_file_name("/000012.sst"), Ok("000012.sst"));
        assert_eq!(input_file_name("000012.sst"), Ok("000012.sst"));
        for bad in [
            "",
            "/",
            ".",
            "..",
            "/..",
            "../../etc/shadow",
            "a/b",
            "//x",
            "a\0b",
            "a\nb",
        ] {
            let e = input_file_name(bad).unwrap_err();
            assert_eq!(e.field(), "input_files", "{bad:?}");
        }
    }

    #[test]
    fn options_paths_must_stay_in_the_db() {
        let text = |db: &str, cf: &str| {
            OptionsText::parse(&format!(
                "[DBOptions]\n{db}\n[CFOptions \"default\"]\n{cf}\n"
            ))
        };
        assert_eq!(
            check_options_paths(&text("", ""), "default", "/h/db"),
            Ok(())
        );
        assert_eq!(
            check_options_paths(&text("wal_dir=/h/db/", "cf_paths="), "default", "/h/db"),
            Ok(())
        );
        let e = check_options_paths(&text("db_paths={{/etc,0}}", ""), "default", "/h/db");
        assert_eq!(e.unwrap_err().field(), "db_paths");
        let e = check_options_paths(&text("", "cf_paths={{/root,0}}"), "default", "/h/db");
        assert_eq!(e.unwrap_err().field(), "cf_paths");
        let e = check_options_paths(&text("wal_dir=/var/log", ""), "default", "/h/db");
        assert_eq!(e.unwrap_err().field(), "wal_dir");
        assert_eq!(
            check_options_file_number(u64::MAX).unwrap_err().field(),
            "options_file_number"
        );
    }
}
