//! [`RemoteAttempt`]: an attempt submitted to a worker, and its release
//! on drop.

use super::book::AttemptBook;
use super::output_dir;
use crate::hoster::http::Client;
use crate::hoster::remote::capability::GrantHold;
use crate::protocol::attempt::AttemptKey;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the hoster knows of an attempt it submitted.
pub struct Submitted {
    /// The worker's `base_url`.
    pub worker: String,
    pub key: AttemptKey,
    /// The attempt's name, as in etcd's "done" key.
    pub name: String,
    pub output_dir: PathBuf,
    /// The service's generation at submission: `cancel_awaiting` bumps it.
    pub generation: u64,
    /// Bytes read and written, once the result was verified.
    pub verified: Option<(u64, u64)>,
    pub cf_name: String,
    pub input_bytes: u64,
    /// The input files as the compaction input names them: the result is
    /// judged against them.
    pub input_files: Vec<String>,
    pub submitted: Instant,
    /// How long the hoster waits for this attempt.
    pub wait_limit: Duration,
    /// With `storage: "http"`: the attempt's capability and snapshot,
    /// revoked and removed when the attempt is dropped.
    pub remote: Option<GrantHold>,
}

/// A submitted attempt, in flight until dropped.
pub struct RemoteAttempt {
    info: Submitted,
    book: Arc<AttemptBook>,
}

impl RemoteAttempt {
    /// Takes a place in the in-flight count until dropped.
    pub fn new(book: &Arc<AttemptBook>, info: Submitted) -> Self {
        book.enter_flight();
        RemoteAttempt {
            info,
            book: book.clone(),
        }
    }

    /// The id RocksDB knows it by: `<db job>-<sub job>-<attempt>`.
    pub fn id(&self) -> String {
        let k = &self.info.key;
        format!("{}-{}-{}", k.db_job(), k.sub_job(), k.attempt)
    }

    /// Asks its worker to stop it (blocking, bounded by the client's
    /// timeout); a failure is only logged by the client.
    pub fn cancel_on_worker(&self, client: &Client) {
        client.cancel(&self.info.worker, &self.info.key);
    }
}

impl Deref for RemoteAttempt {
    type Target = Submitted;

    fn deref(&self) -> &Submitted {
        &self.info
    }
}

impl DerefMut for RemoteAttempt {
    fn deref_mut(&mut self) -> &mut Submitted {
        &mut self.info
    }
}

impl Drop for RemoteAttempt {
    fn drop(&mut self) {
        self.book.forget_job(self.info.key.job_id);
        self.book.completions().forget(&self.info.name);
        self.book.leave_flight();
        output_dir::remove(&self.info.output_dir);
    }
}
