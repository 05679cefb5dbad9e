//! Workers found in etcd: every `<root>/workers/<addr>` registration joins
//! the rotation, beside `http_workers`; a deleted or expired one leaves it.
//! A registration whose load says every slot and waiting place is taken
//! makes the worker a last resort until its next update.
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

    /// The worker a registration names, and whether it says the worker is
    /// full (every slot and waiting place taken).
    fn endpoint(kv: &KeyValue) -> Option<(WorkerEndpoint, bool)> {
        match serde_json::from_str::<Registration>(&kv.value) {
            Ok(r) if r.url.starts_with("http://") || r.url.starts_with("https://") => Some((
                WorkerEndpoint {
                    web_url: Some(r.web_url.clone()),
                    ..WorkerEndpoint::at(&r.url, r.weight.max(1))
                },
                r.running >= r.capacity && r.waiting >= r.max_waiting,
            )),
            Ok(r) => {
                tracing::warn!(
                    key = kv.key,
                    url = r.url,
                    "ignoring a registration whose url is not http:// or https://"
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
        let found: Vec<(String, WorkerEndpoint, bool)> = kvs
            .iter()
            .filter_map(|kv| {
                let (ep, full) = Self::endpoint(kv)?;
                Some((kv.key.clone(), ep, full))
            })
            .collect();
        self.known = found
            .iter()
            .map(|(key, ep, _)| (key.clone(), ep.clone()))
            .collect();
        tracing::info!(workers = self.known.len(), "workers listed in etcd");
        self.publish();
        for (_, ep, full) in &found {
            self.workers.set_full(&ep.base_url, *full);
        }
    }

    fn changed(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Put(kv) => {
                let Some((ep, full)) = Self::endpoint(&kv) else {
                    return;
                };
                if self.known.get(&kv.key) != Some(&ep) {
                    tracing::info!(worker = ep.base_url, "worker registered");
                    self.known.insert(kv.key, ep.clone());
                    self.publish();
                }
                // A load update changes only whether the worker is full.
                self.workers.set_full(&ep.base_url, full);
                return;
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
