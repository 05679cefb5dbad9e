//! The rings of the connected children: added when a child hands one over,
//! removed when its connection ends. Compression threads keep their own
//! copy of the list and refresh it only when the generation changed, so
//! looking for work takes no lock.

use super::stats::ClientCounters;
use crate::shm::layout::{state, Ring};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A child's ring, as the server holds it.
pub struct ServerRing {
    pub ring: Ring,
    /// The child's counts (its attempt name).
    pub client: ClientCounters,
}

#[derive(Default)]
pub struct Rings {
    list: Mutex<Vec<Arc<ServerRing>>>,
    generation: AtomicU64,
}

/// A compression thread's copy of the list.
#[derive(Default)]
pub struct RingsView {
    generation: u64,
    pub rings: Vec<Arc<ServerRing>>,
}

impl Rings {
    pub fn add(&self, ring: Arc<ServerRing>) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.push(ring);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn remove(&self, ring: &Arc<ServerRing>) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|r| !Arc::ptr_eq(r, ring));
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks submitted or being compressed, in every ring.
    pub fn in_flight(&self) -> u64 {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.iter()
            .map(|r| {
                (0..r.ring.layout().slots)
                    .filter(|&s| {
                        let s = r.ring.state(s).load(Ordering::Relaxed) & state::MASK;
                        s == state::SUBMITTED || s == state::TAKEN
                    })
                    .count() as u64
            })
            .sum()
    }

    /// Brings `view` up to date when the list changed.
    pub fn refresh(&self, view: &mut RingsView) {
        let generation = self.generation.load(Ordering::Acquire);
        if generation != view.generation {
            let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
            view.rings = list.clone();
            view.generation = self.generation.load(Ordering::Acquire);
        }
    }
}
