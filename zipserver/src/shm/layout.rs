//! Where things are in a ring and in the control page, and the slot
//! states (the life of a block is drawn in [`super`]).
//!
//! A ring: a 64-byte header (magic, version, the layout, for people
//! reading a core dump; nobody trusts it), one 64-byte control line per
//! slot, then from the next page on each slot's input area followed by its
//! output area.
//!
//! | slot word | written by | what |
//! | --- | --- | --- |
//! | 0 | both | state (a futex) |
//! | 1 | child | input length |
//! | 2 | child | output capacity |
//! | 3..=10 | child | the compression parameters (30 bytes) |
//! | 11 | server | reply status, and the compression type in bits 8..16 |
//! | 12 | server | compressed size, as `CompressBlock` gives it |
//! | 13 | child | the lane (compression thread's CPU) the block is for (`super::control`) |
//!
//! Words are atomics; the child writes its words before it stores
//! `SUBMITTED` (release) and the server reads them after taking the slot
//! (acquire), and the other way round for the reply and `DONE`. The server
//! checks every length against the layout it was told over the socket.

use super::map::{MapError, SharedMap};
use crate::codec::params::{ZipParams, PARAMS_LEN};
use std::sync::atomic::{AtomicU32, Ordering};

pub const RING_MAGIC: u32 = 0x5a52_4e47;
pub const RING_VERSION: u32 = 1;
const HEADER: usize = 64;
const LINE: usize = 64;
const PAGE: usize = 4096;

/// Slot states (low byte of the state word) and flags.
pub mod state {
    pub const FREE: u32 = 0;
    pub const CLAIMED: u32 = 1;
    pub const SUBMITTED: u32 = 2;
    pub const TAKEN: u32 = 3;
    pub const DONE: u32 = 4;
    pub const ABANDONED: u32 = 5;
    /// A child thread sleeps on the word: whoever changes it wakes it.
    pub const WAITING: u32 = 1 << 8;
    /// The zipserver is gone: nothing will change the slot any more.
    pub const DEAD: u32 = 1 << 9;
    pub const MASK: u32 = 0xff;
}

/// Reply statuses (slot word 11, low byte).
pub mod reply {
    pub const OK: u32 = 0;
    /// The block and its output need more than the whole memory budget.
    pub const OVER_BUDGET: u32 = 1;
    /// The parameters mean no compression.
    pub const NO_COMPRESSION: u32 = 2;
    /// RocksDB's compressor failed.
    pub const FAILED: u32 = 3;
    /// Lengths beyond the slot.
    pub const BAD_REQUEST: u32 = 4;
}

/// A ring's shape, agreed over the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    pub slots: u32,
    /// Bytes of a slot's input area: the largest block it carries.
    pub slot_in: u32,
    /// Bytes of a slot's output area: the largest capacity it carries.
    pub slot_out: u32,
}

/// A layout the zipserver does not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ring of {slots} slots of {slot_in}+{slot_out} bytes: expected 1 to 64 slots of 4 KiB to 4 MiB, multiples of 64 bytes")]
pub struct LayoutError {
    slots: u32,
    slot_in: u32,
    slot_out: u32,
}

impl RingLayout {
    pub fn checked(self) -> Result<Self, LayoutError> {
        let area = |n: u32| (4096..=4 << 20).contains(&n) && n.is_multiple_of(64);
        if (1..=64).contains(&self.slots) && area(self.slot_in) && area(self.slot_out) {
            Ok(self)
        } else {
            Err(LayoutError {
                slots: self.slots,
                slot_in: self.slot_in,
                slot_out: self.slot_out,
            })
        }
    }

    fn data(&self) -> usize {
        (HEADER + self.slots as usize * LINE).next_multiple_of(PAGE)
    }

    fn stride(&self) -> usize {
        self.slot_in as usize + self.slot_out as usize
    }

    /// Bytes of the whole ring.
    pub fn size(&self) -> usize {
        self.data() + self.slots as usize * self.stride()
    }

    fn word(&self, slot: u32, word: usize) -> usize {
        assert!(slot < self.slots && word < LINE / 4);
        HEADER + slot as usize * LINE + word * 4
    }
}

/// A mapped ring.
pub struct Ring {
    map: SharedMap,
    layout: RingLayout,
}

impl Ring {
    /// A ring over `map`, which must hold `layout.size()` bytes.
    pub fn new(map: SharedMap, layout: RingLayout) -> Result<Ring, MapError> {
        if map.len() < layout.size() {
            return Err(MapError::TooSmall {
                actual: map.len() as u64,
                expected: layout.size(),
            });
        }
        Ok(Ring { map, layout })
    }

    /// Writes the header (the creator does, once).
    pub fn write_header(&self) {
        let l = &self.layout;
        for (i, v) in [RING_MAGIC, RING_VERSION, l.slots, l.slot_in, l.slot_out]
            .into_iter()
            .enumerate()
        {
            self.map.word(i * 4).store(v, Ordering::Relaxed);
        }
    }

    pub fn layout(&self) -> RingLayout {
        self.layout
    }

    pub fn state(&self, slot: u32) -> &AtomicU32 {
        self.map.word(self.layout.word(slot, 0))
    }

    pub fn in_len(&self, slot: u32) -> &AtomicU32 {
        self.map.word(self.layout.word(slot, 1))
    }

    pub fn capacity(&self, slot: u32) -> &AtomicU32 {
        self.map.word(self.layout.word(slot, 2))
    }

    pub fn reply(&self, slot: u32) -> &AtomicU32 {
        self.map.word(self.layout.word(slot, 11))
    }

    pub fn reply_size(&self, slot: u32) -> &AtomicU32 {
        self.map.word(self.layout.word(slot, 12))
    }

    pub fn lane(&self, slot: u32) -> &AtomicU32 {
        self.map.word(self.layout.word(slot, 13))
    }

    pub fn write_params(&self, slot: u32, p: &ZipParams) {
        let mut b = [0u8; 32];
        b[..PARAMS_LEN].copy_from_slice(&p.encode());
        for (k, w) in b.chunks_exact(4).enumerate() {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            self.map
                .word(self.layout.word(slot, 3 + k))
                .store(w, Ordering::Relaxed);
        }
    }

    pub fn read_params(&self, slot: u32) -> ZipParams {
        let mut b = [0u8; 32];
        for (k, w) in b.chunks_exact_mut(4).enumerate() {
            let v = self
                .map
                .word(self.layout.word(slot, 3 + k))
                .load(Ordering::Relaxed);
            w.copy_from_slice(&v.to_le_bytes());
        }
        let mut p = [0u8; PARAMS_LEN];
        p.copy_from_slice(&b[..PARAMS_LEN]);
        ZipParams::decode(&p)
    }

    /// The first `len` bytes of the slot's input area.
    pub fn input(&self, slot: u32, len: usize) -> *mut u8 {
        assert!(slot < self.layout.slots && len <= self.layout.slot_in as usize);
        let at = self.layout.data() + slot as usize * self.layout.stride();
        self.map.at(at, len)
    }

    /// The first `len` bytes of the slot's output area.
    pub fn output(&self, slot: u32, len: usize) -> *mut u8 {
        assert!(slot < self.layout.slots && len <= self.layout.slot_out as usize);
        let at = self.layout.data()
            + slot as usize * self.layout.stride()
            + self.layout.slot_in as usize;
        self.map.at(at, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_checked_and_areas_do_not_overlap() {
        let l = RingLayout {
            slots: 3,
            slot_in: 8192,
            slot_out: 4096,
        }
        .checked()
        .unwrap();
        assert!(RingLayout { slots: 0, ..l }.checked().is_err());
        assert!(RingLayout { slots: 65, ..l }.checked().is_err());
        assert!(RingLayout { slot_in: 100, ..l }.checked().is_err());
        assert_eq!(l.size(), 4096 + 3 * 12288);
        let (_fd, map) = SharedMap::create("t", l.size()).unwrap();
        let ring = Ring::new(map, l).unwrap();
        let p = ZipParams {
            kind: 7,
            level: -1,
            max_compressed_bytes_per_kb: 896,
            ..ZipParams::default()
        };
        ring.write_params(2, &p);
        assert_eq!(ring.read_params(2), p);
        let ends: Vec<(usize, usize)> = (0..3)
            .flat_map(|s| {
                [
                    (ring.input(s, 8192) as usize, 8192),
                    (ring.output(s, 4096) as usize, 4096),
                ]
            })
            .collect();
        for w in ends.windows(2) {
            assert_eq!(w[0].0 + w[0].1, w[1].0, "areas are contiguous");
        }
        let base = ring.state(0) as *const AtomicU32 as usize;
        assert!(ring.reply_size(2) as *const AtomicU32 as usize + 4 <= ends[0].0);
        assert!(base < ends[0].0);
    }
}
