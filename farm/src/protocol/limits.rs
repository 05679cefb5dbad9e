//! The bounds of every field of a job, checked when the worker parses it.
//!
//! A job's strings reach log lines, file names, `job.json`, `summary.html`
//! and the web view, and its numbers reach the queue's ordering and the
//! attempt's deadline. So before anything else reads a job, every string
//! is held to a length and refused when it holds a control character (a
//! newline would forge a log line) or a bidirectional override (it would
//! forge what a page shows), and every number is held to a range. A job
//! outside these bounds is answered 400 with the field and its bound in
//! the message. `docs/PROTOCOL.md` lists the same table.

use super::job::Job;

/// `instance_name`: one path component (`NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// `dbname`, `hoster_root`, `output_dir`, `nfs_mnt_src`, `nfs_mnt_opt`,
/// `job_info.db_name` (`PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// `cf_name` and `job_info.cf_name`.
pub const MAX_CF_NAME_BYTES: usize = 1024;
/// `code_version`, `nfs_type`, `plugins[].name`, `job_info.db_id`,
/// `job_info.db_session_id`.
pub const MAX_SHORT_BYTES: usize = 256;
/// Entries of `plugins`.
pub const MAX_PLUGINS: usize = 64;
/// `plugins[].version`.
pub const MAX_PLUGIN_VERSION: u32 = 1_000_000;
/// `attempt`: a hoster retries a job a few times, never thousands.
pub const MAX_ATTEMPT: u32 = 1000;
/// `protocol`.
pub const MAX_PROTOCOL: u32 = 1000;
/// `output_level` (and the levels in `job_info`); RocksDB's `num_levels`
/// is far below it.
pub const MAX_LEVEL: i32 = 63;
/// `start_time`, in seconds since the epoch (the year 5138).
pub const MAX_START_TIME: u64 = 100_000_000_000;
/// `estimate_time_us`: one day.
pub const MAX_ESTIMATE_US: u64 = 86_400_000_000;

/// A field outside its bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{field} is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} holds the control or direction character {found:?}, which a log line, file name or page must not carry")]
    ControlCharacter { field: &'static str, found: char },
    #[error("{field} is {value}; it must lie in {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: i128,
        min: i128,
        max: i128,
    },
    #[error("{field} has {count} entries; the limit is {max}")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
}

impl LimitError {
    /// The field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            LimitError::TooLong { field, .. }
            | LimitError::ControlCharacter { field, .. }
            | LimitError::OutOfRange { field, .. }
            | LimitError::TooMany { field, .. } => field,
        }
    }
}

/// Characters no field may hold: C0 and C1 controls (newline, carriage
/// return, NUL, escape, ...), DEL, and the Unicode direction overrides and
/// isolates that reorder what a page or terminal shows.
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `value` at most `max` bytes long and free of [`is_forbidden_char`].
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), LimitError> {
    if value.len() > max {
        return Err(LimitError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    match value.chars().find(|c| is_forbidden_char(*c)) {
        Some(found) => Err(LimitError::ControlCharacter { field, found }),
        None => Ok(()),
    }
}

fn check_range<T: Into<i128> + Copy>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), LimitError> {
    let (value, min, max) = (value.into(), min.into(), max.into());
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LimitError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

/// Every field of `job` within its bound; the first one outside it.
/// `compaction_service_input` is bounded by the request size
/// (`MAX_REQUEST_BYTES`) and by base64 decoding, which refuses any other
/// character.
pub fn check_job(job: &Job) -> Result<(), LimitError> {
    check_text("instance_name", &job.instance_name, MAX_NAME_BYTES)?;
    check_text("dbname", &job.dbname, MAX_PATH_BYTES)?;
    check_text("hoster_root", &job.hoster_root, MAX_PATH_BYTES)?;
    check_text("output_dir", &job.output_dir, MAX_PATH_BYTES)?;
    check_text("code_version", &job.code_version, MAX_SHORT_BYTES)?;
    check_text("cf_name", &job.cf_name, MAX_CF_NAME_BYTES)?;
    check_text("nfs_type", &job.nfs_type, MAX_SHORT_BYTES)?;
    check_text("nfs_mnt_src", &job.nfs_mnt_src, MAX_PATH_BYTES)?;
    check_text("nfs_mnt_opt", &job.nfs_mnt_opt, MAX_PATH_BYTES)?;
    check_range("start_time", job.start_time, 0, MAX_START_TIME)?;
    check_range("attempt", job.attempt, 0, MAX_ATTEMPT)?;
    check_range("protocol", job.protocol, 0, MAX_PROTOCOL)?;
    check_range("output_level", job.output_level, 0, MAX_LEVEL)?;
    check_range("estimate_time_us", job.estimate_time_us, 0, MAX_ESTIMATE_US)?;
    if let Some(r) = &job.remote {
        check_text("remote.url", &r.url, MAX_PATH_BYTES)?;
        check_text("remote.job", &r.job, MAX_SHORT_BYTES)?;
        check_text("remote.token", &r.token, MAX_SHORT_BYTES)?;
    }
    if job.plugins.len() > MAX_PLUGINS {
        return Err(LimitError::TooMany {
            field: "plugins",
            count: job.plugins.len(),
            max: MAX_PLUGINS,
        });
    }
    for p in &job.plugins {
        check_text("plugins[].name", &p.name, MAX_SHORT_BYTES)?;
        check_range("plugins[].version", p.version, 0, MAX_PLUGIN_VERSION)?;
    }
    if let Some(info) = &job.job_info {
        check_text("job_info.db_name", &info.db_name, MAX_PATH_BYTES)?;
        check_text("job_info.db_id", &info.db_id, MAX_SHORT_BYTES)?;
        check_text(
            "job_info.db_session_id",
            &info.db_session_id,
            MAX_SHORT_BYTES,
        )?;
        check_text("job_info.cf_name", &info.cf_name, MAX_CF_NAME_BYTES)?;
        check_range("job_info.output_level", info.output_level, -1, MAX_LEVEL)?;
        check_range(
            "job_info.base_input_level",
            info.base_input_level,
            -1,
            MAX_LEVEL,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::job::PluginVersion;

    fn job() -> Job {
        serde_json::from_value(serde_json::json!({
            "instance_name": "app", "dbname": "/h/db", "hoster_root": "/h",
            "start_time": 7, "job_id": 1, "attempt": 0, "cf_name": "default",
            "output_level": 1, "output_dir": "/h/db/out", "compaction_service_input": "",
        }))
        .unwrap()
    }

    #[test]
    fn a_plain_job_passes() {
        assert_eq!(check_job(&job()), Ok(()));
    }

    #[test]
    fn each_bound_names_its_field_and_bound() {
        let mut j = job();
        j.attempt = u32::MAX;
        let e = check_job(&j).unwrap_err();
        assert_eq!(e.field(), "attempt");
        assert!(e.to_string().contains("0..=1000"), "{e}");

        let mut j = job();
        j.code_version = "x".repeat(MAX_SHORT_BYTES + 1);
        let e = check_job(&j).unwrap_err();
        assert_eq!(e.field(), "code_version");
        assert!(e.to_string().contains("256 bytes"), "{e}");

        let mut j = job();
        j.output_level = -1;
        assert_eq!(check_job(&j).unwrap_err().field(), "output_level");

        let mut j = job();
        j.estimate_time_us = u64::MAX;
        assert_eq!(check_job(&j).unwrap_err().field(), "estimate_time_us");

        let mut j = job();
        j.plugins = vec![
            PluginVersion {
                name: "p".into(),
                version: 1
            };
            MAX_PLUGINS + 1
        ];
        assert_eq!(check_job(&j).unwrap_err().field(), "plugins");
    }

    #[test]
    fn control_and_direction_characters_are_refused() {
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}",
            "a\u{202e}b",
        ] {
            let mut j = job();
            j.output_dir = format!("/h/db/{bad}");
            let e = check_job(&j).unwrap_err();
            assert!(
                matches!(
                    e,
                    LimitError::ControlCharacter {
                        field: "output_dir",
                        ..
                    }
                ),
                "{bad:?}: {e}"
            );
        }
        let mut j = job();
        j.output_dir = "/h/db/sortie-é".into();
        assert_eq!(check_job(&j), Ok(()));
    }
}
