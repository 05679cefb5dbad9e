//! What a job asks to be mounted: its `nfs_type`, `nfs_mnt_src` and
//! `nfs_mnt_opt`, checked against the worker's [`MountPolicy`] before
//! anything runs with them. A [`MountSpec`] exists only once checked.
//!
//! The options are the job's; [`MountSpec::mount_options`] adds
//! [`ENFORCED_OPTIONS`] after them. They are never shown: `Display`, the
//! mount table's rows and every message name the source and the type only.

use super::policy::{MountPolicy, RequestError, ENFORCED_OPTIONS};
use super::source::{check_nfs_source, SourceError};
use crate::protocol::job::Job;

/// A mount a job asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// One of `MOUNT_ALLOWED_TYPES`: names the helper `mount.<type>` and is
    /// passed to `mount -t`.
    fs_type: String,
    /// `host:/path`.
    source: String,
    /// The job's comma-separated options, each allowed by name; empty for
    /// none.
    options: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("NFS_DYNAMIC_MOUNT is on: the job must name nfs_type and nfs_mnt_src (an NFS export, host:/path)")]
    Missing,
    #[error(transparent)]
    Refused(#[from] RequestError),
    #[error(
        "nfs_mnt_src {value:?} is not an NFS export of the form host:/absolute/path: {source}"
    )]
    Source {
        value: String,
        #[source]
        source: SourceError,
    },
}

impl MountSpec {
    pub fn from_job(job: &Job, policy: &MountPolicy) -> Result<Self, SpecError> {
        if job.nfs_type.is_empty() || job.nfs_mnt_src.is_empty() {
            return Err(SpecError::Missing);
        }
        policy.check_type(&job.nfs_type)?;
        check_nfs_source(&job.nfs_mnt_src).map_err(|source| SpecError::Source {
            value: job.nfs_mnt_src.chars().take(256).collect(),
            source,
        })?;
        policy.check_options(&job.nfs_mnt_opt)?;
        Ok(MountSpec {
            fs_type: job.nfs_type.clone(),
            source: job.nfs_mnt_src.clone(),
            options: job.nfs_mnt_opt.clone(),
        })
    }

    /// A spec that skips the policy: for tests of the mount table, which
    /// mount tmpfs.
    #[cfg(test)]
    pub fn unchecked(fs_type: &str, source: &str, options: &str) -> Self {
        MountSpec {
            fs_type: fs_type.into(),
            source: source.into(),
            options: options.into(),
        }
    }

    pub fn fs_type(&self) -> &str {
        &self.fs_type
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// What the mount command gets after `-o`: the job's options, then
    /// [`ENFORCED_OPTIONS`] (later options win).
    pub fn mount_options(&self) -> String {
        if self.options.is_empty() {
            ENFORCED_OPTIONS.to_owned()
        } else {
            format!("{},{ENFORCED_OPTIONS}", self.options)
        }
    }

    /// Same source and type: the specs differ in their options at most.
    pub fn same_source(&self, other: &MountSpec) -> bool {
        self.fs_type == other.fs_type && self.source == other.source
    }
}

/// `source (type)`: never the options.
impl std::fmt::Display for MountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.source, self.fs_type)
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
            remote: None,
        }
    }

    fn check(t: &str, src: &str, opt: &str) -> Result<MountSpec, SpecError> {
        MountSpec::from_job(&job(t, src, opt), &MountPolicy::default())
    }

    #[test]
    fn accepts_nfs_and_adds_the_enforced_options() {
        let s = check("nfs4", "srv:/export/a", "vers=4.1,hard").unwrap();
        assert_eq!(s.source(), "srv:/export/a");
        assert_eq!(s.mount_options(), "vers=4.1,hard,nosuid,nodev,noexec");
        assert_eq!(s.to_string(), "srv:/export/a (nfs4)");
        let s = check("nfs", "10.0.0.9:/", "").unwrap();
        assert_eq!(s.mount_options(), "nosuid,nodev,noexec");
    }

    #[test]
    fn refuses_what_the_policy_does_not_allow_and_says_why() {
        for (t, src, opt, says) in [
            ("", "srv:/x", "", "nfs_type"),
            ("nfs", "", "", "nfs_mnt_src"),
            ("none", "/", "bind", "MOUNT_ALLOWED_TYPES"),
            ("../nfs", "srv:/x", "", "MOUNT_ALLOWED_TYPES"),
            ("NFS", "srv:/x", "", "MOUNT_ALLOWED_TYPES"),
            ("ext4", "/dev/sda1", "", "MOUNT_ALLOWED_TYPES"),
            ("fuse.sshfs", "root@h:/", "", "MOUNT_ALLOWED_TYPES"),
            ("nfs", "/etc", "", "a local path is never an NFS source"),
            ("nfs", "--bind", "", "host:/absolute/path"),
            ("nfs", "srv:/x; rm -rf /", "", "host:/absolute/path"),
            ("nfs", "srv:/x", "bind", "never allowed"),
            ("nfs", "srv:/x", "-o", "nfs_mnt_opt"),
            ("nfs", "srv:/x", "vers=3,suid", "never allowed"),
            ("nfs", "srv:/x", "X-mount.mkdir", "never allowed"),
            ("nfs", "srv:/x", "farm_test=1", "MOUNT_ALLOWED_OPTIONS"),
        ] {
            let e = check(t, src, opt).unwrap_err().to_string();
            assert!(e.contains(says), "{t} {src} {opt}: {e}");
        }
    }
}
