//! The job JSON a hoster POSTs to `/dcompact`: ToplingDB's `DcompactMeta`
//! fields plus RocksDB's serialized compaction input (`docs/PROTOCOL.md`
//! has an example). The worker ignores fields it does not know.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::attempt::AttemptKey;
use super::remote::RemoteStorage;
use super::version;
use crate::rocks::service::JobInfo;

/// One attempt at one (sub)compaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The hoster's name; one path component (it names mount points and
    /// attempt directories).
    pub instance_name: String,
    /// The DB directory, in the hoster's path space, below `hoster_root`.
    pub dbname: String,
    /// The root of the hoster's shared storage, in the hoster's path space.
    pub hoster_root: String,
    /// When the hoster opened the DB, in seconds since the Unix epoch:
    /// with `instance_name` it tells one run of a hoster from the next.
    pub start_time: u64,
    /// RocksDB's id: DB job << 32 | subcompaction.
    pub job_id: u64,
    /// The attempt number for this job, from 0.
    pub attempt: u32,
    /// The hoster's farm version, for logs.
    #[serde(default)]
    pub code_version: String,
    /// The protocol version the hoster speaks (1 when absent); kept in the
    /// attempt's `job.json`.
    #[serde(default = "version::unversioned")]
    pub protocol: u32,
    /// The column family; must be the one the input names.
    pub cf_name: String,
    /// The level the compaction writes (RocksDB's `output_level`).
    pub output_level: i32,
    /// The hoster's estimate of the compaction's duration, in microseconds
    /// (0 when unknown).
    #[serde(default)]
    pub estimate_time_us: u64,
    /// With `NFS_DYNAMIC_MOUNT` on the worker: the filesystem type
    /// (`mount.<nfs_type>`, `mount -t <nfs_type>`).
    #[serde(default)]
    pub nfs_type: String,
    /// With `NFS_DYNAMIC_MOUNT`: what to mount (`server:/export`).
    #[serde(default)]
    pub nfs_mnt_src: String,
    /// With `NFS_DYNAMIC_MOUNT`: comma-separated mount options.
    #[serde(default)]
    pub nfs_mnt_opt: String,
    /// Where the worker writes the output SSTs, in the hoster's path space.
    pub output_dir: String,
    /// RocksDB's serialized `CompactionServiceInput`, base64.
    pub compaction_service_input: String,
    /// The plugin classes the hoster uses, with their versions: the worker
    /// refuses a job whose OPTIONS name a plugin class it has in another
    /// version, or one the hoster did not list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginVersion>,
    /// What RocksDB told the hoster about the compaction (reason, priority,
    /// levels, DB and session ids); for people and tools reading the job,
    /// the worker does not need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_info: Option<JobInfo>,
    /// The HTTP storage mode (protocol 4): the worker reads the DB from the
    /// hoster's file endpoint with this capability and pushes the outputs
    /// there; `dbname` and `output_dir` only name the attempt. Absent: the
    /// shared-filesystem mode. A worker before version 4 ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteStorage>,
}

/// A plugin class and its version, as the hoster uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginVersion {
    /// The class name (`MergeOperator::NAME`, `CompactionFilter::NAME`).
    pub name: String,
    /// The version the hoster runs (`VERSION` of the SDK trait).
    pub version: u32,
}

impl Job {
    /// The five fields that identify this attempt.
    pub fn key(&self) -> AttemptKey {
        AttemptKey {
            instance_name: self.instance_name.clone(),
            start_time: self.start_time,
            dbname: self.dbname.clone(),
            job_id: self.job_id,
            attempt: self.attempt,
        }
    }

    /// `compaction_service_input` from RocksDB's serialized input.
    pub fn encode_input(input: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(input)
    }

    /// RocksDB's serialized input from `compaction_service_input`.
    pub fn decode_input(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.compaction_service_input)
    }
}
