//! The block cache of one remote job: fixed-size blocks of the job's
//! files, at most `capacity` bytes, the least recently used given up
//! first.

use std::collections::HashMap;
use std::sync::Arc;

/// The unit of fetching and caching.
pub const BLOCK: u64 = 1 << 20;

/// A block: file index and block number.
pub type BlockKey = (usize, u64);

pub struct BlockCache {
    capacity: u64,
    held: u64,
    tick: u64,
    blocks: HashMap<BlockKey, (u64, Arc<Vec<u8>>)>,
}

impl BlockCache {
    pub fn new(capacity: u64) -> Self {
        BlockCache {
            capacity: capacity.max(BLOCK),
            held: 0,
            tick: 0,
            blocks: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: BlockKey) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let tick = self.tick;
        self.blocks.get_mut(&key).map(|(used, data)| {
            *used = tick;
            data.clone()
        })
    }

    pub fn insert(&mut self, key: BlockKey, data: Arc<Vec<u8>>) {
        self.tick += 1;
        let len = data.len() as u64;
        if let Some((_, old)) = self.blocks.insert(key, (self.tick, data)) {
            self.held -= old.len() as u64;
        }
        self.held += len;
        while self.held > self.capacity {
            let Some(oldest) = self
                .blocks
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((_, gone)) = self.blocks.remove(&oldest) {
                self.held -= gone.len() as u64;
            }
        }
    }

    pub fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_block_goes_first_and_the_bound_holds() {
        let mut c = BlockCache::new(2 * BLOCK);
        let block = || Arc::new(vec![0u8; BLOCK as usize]);
        c.insert((0, 0), block());
        c.insert((0, 1), block());
        assert!(c.get((0, 0)).is_some());
        c.insert((0, 2), block());
        assert!(c.get((0, 1)).is_none(), "the least recently used went");
        assert!(c.get((0, 0)).is_some() && c.get((0, 2)).is_some());
        assert_eq!(c.held(), 2 * BLOCK);
    }
}
