//! The worker's life in etcd: register -> keep alive and report load ->
//! publish ended attempts -> deregister.
//!
//! One thread ("etcd-registrar") owns the etcd connection; the supervisor
//! only drops events into its channel, so etcd never slows a handler or an
//! attempt. The registration `<root>/workers/<addr>` lives on a lease of
//! `ETCD_LEASE_TTL`, refreshed at a third of it; load changes are written at
//! most every [`LOAD_DEBOUNCE`]. Each ended attempt gets
//! `<root>/dcompact-res/<attempt name>` = `done` on a lease of
//! `ETCD_DONE_TTL`, which wakes the hoster waiting for it.
//!
//! When etcd is unreachable the worker serves on: the registrar retries
//! every [`RETRY`], registers anew (new lease) when etcd is back, and drops
//! "done" events it could not deliver (hosters probe as well). On graceful
//! shutdown the registration is deleted first, so hosters stop choosing the
//! worker while it drains; a worker that dies vanishes when its lease ends.

use crate::etcd::client::{EtcdClient, EtcdError};
use crate::etcd::config::EtcdConfig;
use crate::etcd::keys::{self, Registration};
use crate::worker::supervisor::SupervisorEvent;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shortest gap between two writes of the load.
pub const LOAD_DEBOUNCE: Duration = Duration::from_millis(200);
/// How often to try again while etcd is unreachable.
pub const RETRY: Duration = Duration::from_secs(1);
/// "Done" events kept while etcd is unreachable; older ones are dropped.
const MAX_PENDING_DONE: usize = 1024;

/// What `/stat` shows of the registration.
#[derive(Debug, Default)]
pub struct RegistrationStatus {
    key: String,
    registered: AtomicBool,
    registrations: AtomicU64,
    done_published: AtomicU64,
    done_dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The `etcd` part of `/stat?html=0`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationSnapshot {
    pub key: String,
    /// Registered under a live lease now.
    pub registered: bool,
    /// Registrations so far: more than one means etcd was lost and found.
    pub registrations: u64,
    /// "done" keys put, and those dropped while etcd was unreachable.
    pub done_published: u64,
    pub done_dropped: u64,
    /// The last etcd error (no credentials in it).
    pub last_error: Option<String>,
}

impl RegistrationStatus {
    pub fn snapshot(&self) -> RegistrationSnapshot {
        RegistrationSnapshot {
            key: self.key.clone(),
            registered: self.registered.load(Ordering::Relaxed),
            registrations: self.registrations.load(Ordering::Relaxed),
            done_published: self.done_published.load(Ordering::Relaxed),
            done_dropped: self.done_dropped.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

enum Msg {
    Event(SupervisorEvent),
    Deregister,
    Stop,
}

/// The registrar thread; stopped (and joined) on drop.
pub struct Registrar {
    tx: mpsc::Sender<Msg>,
    status: Arc<RegistrationStatus>,
    thread: Option<JoinHandle<()>>,
}

impl Registrar {
    pub fn start(config: EtcdConfig, registration: Registration) -> Result<Self, EtcdError> {
        let client = EtcdClient::new(&config, config.request_timeout)?;
        let (tx, rx) = mpsc::channel();
        let addr = registration
            .url
            .split_once("://")
            .map_or(registration.url.as_str(), |(_, rest)| rest);
        let key = keys::worker_key(&config.root, addr);
        let status = Arc::new(RegistrationStatus {
            key: key.clone(),
            ..RegistrationStatus::default()
        });
        let mut state = Loop {
            client,
            key,
            status: status.clone(),
            registration,
            config,
            lease: None,
            wanted: true,
            dirty: false,
            last_put: Instant::now(),
            keepalive_at: Instant::now(),
            retry_at: Instant::now(),
            done: Vec::new(),
            outage: false,
        };
        let thread = std::thread::Builder::new()
            .name("etcd-registrar".into())
            .spawn(move || state.run(&rx))
            .map_err(|e| EtcdError::Unreachable {
                endpoint: String::new(),
                message: format!("failed to start the registrar thread: {e}"),
            })?;
        Ok(Registrar {
            tx,
            status,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> Arc<RegistrationStatus> {
        self.status.clone()
    }

    /// What the supervisor calls on every event.
    pub fn observer(&self) -> impl Fn(SupervisorEvent) + Send + Sync + 'static {
        let tx = self.tx.clone();
        move |e| {
            let _ = tx.send(Msg::Event(e));
        }
    }

    /// Deletes the registration; ended attempts are still published.
    pub fn deregister(&self) {
        let _ = self.tx.send(Msg::Deregister);
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    client: EtcdClient,
    status: Arc<RegistrationStatus>,
    config: EtcdConfig,
    key: String,
    registration: Registration,
    lease: Option<i64>,
    /// False after deregistration.
    wanted: bool,
    /// The load changed since it was last written.
    dirty: bool,
    last_put: Instant,
    keepalive_at: Instant,
    retry_at: Instant,
    done: Vec<String>,
    /// etcd failed and no success since: log once per outage.
    outage: bool,
}

impl Loop {
    fn run(&mut self, rx: &mpsc::Receiver<Msg>) {
        loop {
            let wake = self.next_wake();
            let timeout = wake.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(Msg::Event(SupervisorEvent::Load { running, waiting })) => {
                    self.registration.running = running;
                    self.registration.waiting = waiting;
                    self.dirty = true;
                }
                Ok(Msg::Event(SupervisorEvent::Ended(name))) => {
                    if self.done.len() >= MAX_PENDING_DONE {
                        self.done.remove(0);
                        self.status.done_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    self.done.push(name.as_str().to_owned());
                }
                Ok(Msg::Deregister) => self.deregister(),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.deregister();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.step();
        }
    }

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(3600);
        if self.lease.is_some() {
            wake = wake.min(self.keepalive_at);
            if self.dirty {
                wake = wake.min(self.last_put + LOAD_DEBOUNCE);
            }
        } else if self.wanted {
            wake = wake.min(self.retry_at);
        }
        if !self.done.is_empty() {
            wake = wake.min(if self.outage { self.retry_at } else { now });
        }
        wake
    }

    fn failed(&mut self, what: &str, e: &EtcdError) {
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(format!("{what}: {e}"));
        if !self.outage {
            tracing::warn!(error = %e, what, "etcd request failed; serving on and retrying");
        }
        self.outage = true;
        self.retry_at = Instant::now() + RETRY;
    }

    fn succeeded(&mut self) {
        if self.outage {
            tracing::info!("etcd reachable again");
        }
        self.outage = false;
    }

    fn value(&self) -> String {
        serde_json::to_string(&self.registration).expect("a registration serializes")
    }

    fn step(&mut self) {
        self.steps();
        self.status
            .registered
            .store(self.lease.is_some(), Ordering::Relaxed);
    }

    fn steps(&mut self) {
        let now = Instant::now();
        if self.wanted && self.lease.is_none() && now >= self.retry_at {
            match self.register() {
                Ok(lease) => {
                    self.succeeded();
                    tracing::info!(key = self.key, lease, "registered in etcd");
                    self.lease = Some(lease);
                    self.status.registered.store(true, Ordering::Relaxed);
                    self.status.registrations.fetch_add(1, Ordering::Relaxed);
                    self.dirty = false;
                    self.last_put = Instant::now();
                    self.keepalive_at = Instant::now() + self.config.lease_ttl / 3;
                }
                Err(e) => self.failed("register", &e),
            }
        }
        if let Some(lease) = self.lease {
            if now >= self.keepalive_at {
                match self.client.keep_alive(lease) {
                    Ok(ttl) if ttl > 0 => {
                        self.succeeded();
                        self.keepalive_at = Instant::now() + self.config.lease_ttl / 3;
                    }
                    Ok(_) => {
                        tracing::warn!(lease, "registration lease expired; registering anew");
                        self.lease = None;
                    }
                    Err(e) => {
                        self.failed("keep alive", &e);
                        // The lease may outlive the outage, or not: a new
                        // one is certain.
                        self.lease = None;
                    }
                }
            }
        }
        if let Some(lease) = self.lease {
            if self.dirty && now >= self.last_put + LOAD_DEBOUNCE {
                let value = self.value();
                match self.client.put(&self.key, &value, Some(lease)) {
                    Ok(()) => {
                        self.dirty = false;
                        self.last_put = Instant::now();
                    }
                    Err(e) => {
                        self.failed("report load", &e);
                        self.lease = None;
                    }
                }
            }
        }
        if !self.done.is_empty() && (!self.outage || now >= self.retry_at) {
            if let Err(e) = self.publish_done() {
                self.failed("publish done", &e);
            }
        }
    }

    fn register(&self) -> Result<i64, EtcdError> {
        let lease = self.client.grant(self.config.lease_ttl)?;
        self.client.put(&self.key, &self.value(), Some(lease))?;
        Ok(lease)
    }

    fn publish_done(&mut self) -> Result<(), EtcdError> {
        let lease = self.client.grant(self.config.done_ttl)?;
        while let Some(name) = self.done.first() {
            let key = keys::done_key(&self.config.root, name);
            self.client.put(&key, keys::DONE, Some(lease))?;
            self.done.remove(0);
            self.status.done_published.fetch_add(1, Ordering::Relaxed);
        }
        self.succeeded();
        Ok(())
    }

    fn deregister(&mut self) {
        if !self.wanted {
            return;
        }
        self.wanted = false;
        self.status.registered.store(false, Ordering::Relaxed);
        if let Some(lease) = self.lease.take() {
            let gone = self
                .client
                .delete(&self.key)
                .and_then(|()| self.client.revoke(lease));
            match gone {
                Ok(()) => tracing::info!(key = self.key, "deregistered from etcd"),
                Err(e) => {
                    tracing::warn!(error = %e, "failed to deregister; the lease ends on its own")
                }
            }
        }
    }
}
