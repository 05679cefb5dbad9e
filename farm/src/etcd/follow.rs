//! Following the keys below a prefix on a thread of its own: list them,
//! then watch from the next revision; when the watch breaks (etcd restarted,
//! network gone, history compacted) list again, so the follower's picture is
//! whole again, and watch anew. While etcd is unreachable the follower keeps
//! what it had and retries every [`RETRY`].

use super::client::{EtcdClient, KeyValue, WatchEvent, WatchRead};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often to try again while etcd is unreachable.
pub const RETRY: Duration = Duration::from_secs(1);

/// What a follower does with what it sees.
pub trait Follow: Send + 'static {
    /// The whole picture: every key below the prefix.
    fn listed(&mut self, kvs: Vec<KeyValue>);
    /// One change after the listing.
    fn changed(&mut self, event: WatchEvent);
}

/// The follower thread; stopped and joined on drop (within the client's
/// watch idle period).
pub struct Follower {
    stop: Arc<AtomicBool>,
    live: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    pub fn start(
        name: &str,
        client: EtcdClient,
        prefix: String,
        follow: impl Follow,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
            let (stop, live) = (stop.clone(), live.clone());
            move || run(&client, &prefix, follow, &stop, &live)
        })?;
        Ok(Follower {
            stop,
            live,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop without waiting for it (drop waits).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Whether a watch is open now: changes arrive as they happen.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pause(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(
    client: &EtcdClient,
    prefix: &str,
    mut follow: impl Follow,
    stop: &AtomicBool,
    live: &AtomicBool,
) {
    let mut outage = false;
    let failed = |outage: &mut bool, what: &str, why: &dyn std::fmt::Display| {
        if !*outage {
            tracing::warn!(prefix, what, error = %why, "etcd unavailable; keeping what is known and retrying");
        }
        *outage = true;
    };
    while !stop.load(Ordering::Acquire) {
        let (revision, kvs) = match client.list(prefix) {
            Ok(l) => l,
            Err(e) => {
                failed(&mut outage, "list", &e);
                pause(stop, RETRY);
                continue;
            }
        };
        follow.listed(kvs);
        let mut watch = match client.watch(prefix, revision + 1) {
            Ok(w) => w,
            Err(e) => {
                failed(&mut outage, "watch", &e);
                pause(stop, RETRY);
                continue;
            }
        };
        if outage {
            tracing::info!(prefix, "etcd reachable again");
            outage = false;
        }
        live.store(true, Ordering::Release);
        while !stop.load(Ordering::Acquire) {
            match watch.read() {
                WatchRead::Events(events) => events.into_iter().for_each(|e| follow.changed(e)),
                WatchRead::Idle => {}
                WatchRead::Closed(why) => {
                    failed(&mut outage, "watch stream", &why);
                    break;
                }
                WatchRead::Reset => break,
            }
        }
        live.store(false, Ordering::Release);
    }
}
