//! Workers found in etcd: every `<root>/workers/<addr>` registration joins
//! the rotation, beside `http_workers`; a deleted or expired one leaves it.
//! While etcd is unreachable the rotation keeps the workers it had.

use super::config::WorkerEndpoint;
use super::workers::Workers;
use crate::etcd::client::{KeyValue, WatchEvent};
use crate::etcd::follow::Follow;
use crate::etcd::keys::Registration;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Discovery {
    workers: Arc<Workers>,
    /// Registration key -> endpoint.
    known: BTreeMap<String, WorkerEndpoint>,
}

impl Discovery {
    pub fn new(workers: Arc<Workers>) -> Self {
        Discovery {
            workers,
            known: BTreeMap::new(),
        }
    }

    fn endpoint(kv: &KeyValue) -> Option<WorkerEndpoint> {
        match serde_json::from_str::<Registration>(&kv.value) {
            Ok(r) if r.url.starts_with("http://") => Some(WorkerEndpoint {
                base_url: r.url.trim_end_matches('/').to_owned(),
                web_url: Some(r.web_url),
                weight: r.weight.max(1),
            }),
            Ok(r) => {
                tracing::warn!(
                    key = kv.key,
                    url = r.url,
                    "ignoring a registration whose url is not http://"
                );
                None
            }
            Err(e) => {
                tracing::warn!(key = kv.key, error = %e, "ignoring a registration that is not a worker's");
                None
            }
        }
    }

    fn publish(&self) {
        self.workers
            .set_discovered(self.known.values().cloned().collect());
    }
}

impl Follow for Discovery {
    fn listed(&mut self, kvs: Vec<KeyValue>) {
        self.known = kvs
            .iter()
            .filter_map(|kv| Some((kv.key.clone(), Self::endpoint(kv)?)))
            .collect();
        tracing::info!(workers = self.known.len(), "workers listed in etcd");
        self.publish();
    }

    fn changed(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Put(kv) => {
                // A load update changes nothing the rotation uses.
                let Some(ep) = Self::endpoint(&kv) else {
                    return;
                };
                if self.known.get(&kv.key) == Some(&ep) {
                    return;
                }
                tracing::info!(worker = ep.base_url, "worker registered");
                self.known.insert(kv.key, ep);
            }
            WatchEvent::Delete { key, .. } => {
                let Some(ep) = self.known.remove(&key) else {
                    return;
                };
                tracing::info!(worker = ep.base_url, "worker left etcd");
            }
        }
        self.publish();
    }
}
