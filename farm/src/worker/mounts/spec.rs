//! What a job asks to be mounted: its `nfs_type`, `nfs_mnt_src` and
//! `nfs_mnt_opt`, checked before anything runs with them.

use crate::protocol::job::Job;

/// A mount a job asks for, as the hoster described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The filesystem type (`nfs`, `nfs4`, ...): names the helper
    /// `mount.<type>` and is passed to `mount -t`.
    pub fs_type: String,
    /// What to mount (`server:/export`).
    pub source: String,
    /// Comma-separated mount options; empty for none.
    pub options: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("NFS_DYNAMIC_MOUNT is on: the job must name nfs_type and nfs_mnt_src")]
    Missing,
    #[error(
        "nfs_type {0:?} must be 1-32 characters of [a-z0-9._-] (it names the helper mount.<type>)"
    )]
    Type(String),
    #[error("{field} {value:?} must not be empty, start with '-' or hold control characters or whitespace")]
    Value { field: &'static str, value: String },
}

impl MountSpec {
    pub fn from_job(job: &Job) -> Result<Self, SpecError> {
        if job.nfs_type.is_empty() || job.nfs_mnt_src.is_empty() {
            return Err(SpecError::Missing);
        }
        let t = &job.nfs_type;
        let type_ok = t.len() <= 32
            && !t.starts_with(['.', '-'])
            && t.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c));
        if !type_ok {
            return Err(SpecError::Type(t.clone()));
        }
        // Each value becomes one argument; a leading '-' would read as a flag.
        let check = |field: &'static str, value: &str, may_be_empty: bool| {
            let bad = (value.is_empty() && !may_be_empty)
                || value.starts_with('-')
                || value.chars().any(|c| c.is_control() || c.is_whitespace());
            if bad {
                Err(SpecError::Value {
                    field,
                    value: value.to_owned(),
                })
            } else {
                Ok(())
            }
        };
        check("nfs_mnt_src", &job.nfs_mnt_src, false)?;
        check("nfs_mnt_opt", &job.nfs_mnt_opt, true)?;
        Ok(MountSpec {
            fs_type: t.clone(),
            source: job.nfs_mnt_src.clone(),
            options: job.nfs_mnt_opt.clone(),
        })
    }
}

impl std::fmt::Display for MountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.source, self.fs_type)?;
        if !self.options.is_empty() {
            write!(f, ", {}", self.options)?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(t: &str, src: &str, opt: &str) -> Job {
        Job {
            instance_name: "a".into(),
            dbname: "/r/db".into(),
            hoster_root: "/r".into(),
            start_time: 1,
            job_id: 1,
            attempt: 0,
            code_version: String::new(),
            protocol: 1,
            cf_name: "default".into(),
            output_level: 1,
            estimate_time_us: 0,
            nfs_type: t.into(),
            nfs_mnt_src: src.into(),
            nfs_mnt_opt: opt.into(),
            output_dir: "/r/db/out".into(),
            compaction_service_input: String::new(),
            plugins: Vec::new(),
            job_info: None,
        }
    }

    #[test]
    fn accepts_nfs_and_refuses_flags_and_shell_text() {
        let s = MountSpec::from_job(&job("nfs4", "srv:/export/a", "vers=4.1,hard")).unwrap();
        assert_eq!(s.source, "srv:/export/a");
        assert!(MountSpec::from_job(&job("", "srv:/x", "")).is_err());
        assert!(MountSpec::from_job(&job("nfs", "", "")).is_err());
        assert!(MountSpec::from_job(&job("../nfs", "srv:/x", "")).is_err());
        assert!(MountSpec::from_job(&job("NFS", "srv:/x", "")).is_err());
        assert!(MountSpec::from_job(&job("nfs", "--bind", "")).is_err());
        assert!(MountSpec::from_job(&job("nfs", "srv:/x; rm -rf /", "")).is_err());
        assert!(MountSpec::from_job(&job("nfs", "srv:/x", "-o")).is_err());
    }
}
