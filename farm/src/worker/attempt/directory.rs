//! An attempt's own directory, `WORKER_DB_ROOT/<attempt name>/`, for the
//! time its attempt runs: removed when dropped if the worker keeps no
//! attempt directories (`DEL_WORKER_TEMP_DB`), kept for post-mortem (and
//! [`crate::worker::retention`]) otherwise.

use crate::protocol::attempt::AttemptName;
use crate::protocol::job::Job;
use crate::worker::attempt_dir::AttemptDir;
use crate::worker::root_guard::WorkerRoot;
use std::ops::Deref;
use std::sync::Arc;

/// The directory of a running attempt.
pub struct OwnedDir {
    /// `None` only once dropped.
    dir: Option<AttemptDir>,
    root: Arc<WorkerRoot>,
    name: AttemptName,
    remove: bool,
}

impl OwnedDir {
    /// Creates the directory (exclusively, see [`AttemptDir::create`]);
    /// `remove`: remove it again when dropped.
    pub fn create(
        root: &Arc<WorkerRoot>,
        name: &AttemptName,
        job: &Job,
        identity: &str,
        remove: bool,
    ) -> std::io::Result<Self> {
        Ok(OwnedDir {
            dir: Some(AttemptDir::create(root, name, job, identity)?),
            root: root.clone(),
            name: name.clone(),
            remove,
        })
    }
}

impl Deref for OwnedDir {
    type Target = AttemptDir;

    fn deref(&self) -> &AttemptDir {
        self.dir
            .as_ref()
            .expect("the directory is taken only by drop")
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if !self.remove {
            return;
        }
        if let Err(e) = dir.remove(&self.root, &self.name) {
            tracing::warn!(attempt = %self.name, error = %e, "failed to remove attempt dir");
        }
    }
}
