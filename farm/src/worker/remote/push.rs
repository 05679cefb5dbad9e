//! Sends an attempt's outputs to the hoster: each output file the result
//! names, then `rpc.results`, then `compact.done`, in that order (the
//! order and meaning of the shared mode's output directory, see
//! [`crate::protocol::output_dir`]), each one PUT under the job's
//! capability. The local copies are removed once sent.

use super::counts::Counters;
use super::error::RemoteError;
use super::source::http_error;
use crate::protocol::attempt::AttemptKey;
use crate::protocol::output_dir::{done_marker, COMPACT_DONE, RPC_RESULTS};
use crate::protocol::remote::RemoteStorage;
use crate::rocks::serialized::ResultInfo;
use std::path::Path;
use std::time::Duration;

/// One PUT's bound (an output of a few hundred MiB on a slow link).
const PUSH_TIMEOUT: Duration = Duration::from_secs(600);

/// Pushes the outputs of `result` from `local_output` (the worker's own
/// output directory) and the result files naming attempt `key`.
pub fn push_outputs(
    storage: &RemoteStorage,
    local_output: &Path,
    result: &[u8],
    key: &AttemptKey,
    counters: &Counters,
) -> Result<(), RemoteError> {
    let agent = ureq::AgentBuilder::new()
        .timeout(PUSH_TIMEOUT)
        .redirects(0)
        .build();
    let info = ResultInfo::parse(result).map_err(RemoteError::Result)?;
    for f in &info.output_files {
        let path = local_output.join(&f.name);
        let file = std::fs::File::open(&path).map_err(|source| RemoteError::Output {
            name: f.name.clone(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| RemoteError::Output {
                name: f.name.clone(),
                source,
            })?
            .len();
        put(&agent, storage, &f.name, len, file)?;
        counters.pushed(len);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::debug!(file = %path.display(), error = %e, "pushed output not removed");
        }
    }
    put_bytes(&agent, storage, RPC_RESULTS, result)?;
    counters.pushed(result.len() as u64);
    let marker = done_marker(key);
    put_bytes(&agent, storage, COMPACT_DONE, &marker)?;
    counters.pushed(marker.len() as u64);
    Ok(())
}

fn put_bytes(
    agent: &ureq::Agent,
    storage: &RemoteStorage,
    name: &str,
    bytes: &[u8],
) -> Result<(), RemoteError> {
    put(agent, storage, name, bytes.len() as u64, bytes)
}

fn put(
    agent: &ureq::Agent,
    storage: &RemoteStorage,
    name: &str,
    len: u64,
    body: impl std::io::Read,
) -> Result<(), RemoteError> {
    let what = format!("PUT {name} ({len} bytes)");
    let response = agent
        .put(&storage.output_url(name))
        .set("Authorization", &storage.bearer())
        .set("Content-Length", &len.to_string())
        .send(body)
        .map_err(|e| http_error(&what, e))?;
    match response.status() {
        201 => Ok(()),
        status => Err(RemoteError::Status { what, status }),
    }
}
