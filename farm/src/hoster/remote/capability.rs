//! Capabilities: what a worker presents to read one attempt's files and
//! push its outputs.
//!
//! A [`Grant`] is issued per attempt: a public job id (64 random bits, it
//! names the job in URLs), a token (256 random bits from `/dev/urandom`,
//! hex), an expiry, and its scope: the attempt's [`JobSnapshot`] (the
//! files it may read, each up to its pinned length) and the attempt's
//! output directory (where outputs may be created, once each). The
//! [`GrantHold`] returned with it revokes the grant and removes the
//! snapshot when dropped: the attempt holds it until its end.
//!
//! [`Grants::check`] compares the token in constant time and refuses an
//! unknown job, a wrong token and an expired grant alike, before anything
//! is read.

use super::snapshot::JobSnapshot;
use crate::protocol::remote::RemoteStorage;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One attempt's capability and its scope.
pub struct Grant {
    pub job: String,
    token: String,
    pub expires: SystemTime,
    pub snapshot: JobSnapshot,
    /// The attempt's output directory (created with the grant).
    pub output_dir: PathBuf,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("no such job")]
    UnknownJob,
    #[error("missing or wrong token")]
    BadToken,
    #[error("the capability expired")]
    Expired,
}

/// The live grants of one service.
#[derive(Default)]
pub struct Grants {
    live: Mutex<HashMap<String, Arc<Grant>>>,
}

/// Keeps a grant alive; dropping it revokes the grant and removes its
/// snapshot.
pub struct GrantHold {
    grants: Arc<Grants>,
    grant: Arc<Grant>,
}

impl Drop for GrantHold {
    fn drop(&mut self) {
        self.grants.lock().remove(&self.grant.job);
        self.grant.snapshot.remove();
    }
}

/// `n` random bytes from the kernel, hex.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `a` equals `b`, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Grants {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Grant>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issues a grant over `snapshot` and `output_dir` for `valid`, to be
    /// presented at `url` (the endpoint's advertised URL).
    pub fn issue(
        self: &Arc<Self>,
        url: &str,
        snapshot: JobSnapshot,
        output_dir: PathBuf,
        valid: Duration,
    ) -> std::io::Result<(RemoteStorage, GrantHold)> {
        let (job, token) = match random_hex(8).and_then(|j| Ok((j, random_hex(32)?))) {
            Ok(ids) => ids,
            Err(e) => {
                snapshot.remove();
                return Err(e);
            }
        };
        let expires = SystemTime::now() + valid;
        let grant = Arc::new(Grant {
            job: job.clone(),
            token: token.clone(),
            expires,
            snapshot,
            output_dir,
        });
        self.lock().insert(job.clone(), grant.clone());
        let storage = RemoteStorage {
            url: url.to_owned(),
            job,
            token,
            expires_unix: expires
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let hold = GrantHold {
            grants: self.clone(),
            grant,
        };
        Ok((storage, hold))
    }

    /// The grant of `job` when `authorization` presents its token and it
    /// has not expired.
    pub fn check(&self, job: &str, authorization: Option<&str>) -> Result<Arc<Grant>, Denied> {
        let grant = self.lock().get(job).cloned().ok_or(Denied::UnknownJob)?;
        let presented = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .ok_or(Denied::BadToken)?;
        if !same(presented.as_bytes(), grant.token.as_bytes()) {
            return Err(Denied::BadToken);
        }
        if SystemTime::now() >= grant.expires {
            return Err(Denied::Expired);
        }
        Ok(grant)
    }

    /// Grants alive now.
    pub fn live(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let a = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex(32).unwrap());
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
