//! `counter`: a merge operator that adds little-endian u64 values. A merge
//! operand is an 8-byte LE u64 to add; a missing base counts as 0. Anything
//! else fails the merge (RocksDB then fails the compaction: on the worker
//! the hoster compacts locally, where it fails the same way).

use farm_plugin_sdk::MergeOperator;

#[derive(Debug, Default, Clone, Copy)]
pub struct Counter;

fn read(v: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(v.try_into().ok()?))
}

impl MergeOperator for Counter {
    const NAME: &'static str = "counter";
    const VERSION: u32 = 1;

    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Option<Vec<u8>> {
        let mut sum = existing.map_or(Some(0), read)?;
        for op in operands {
            sum = sum.wrapping_add(read(op)?);
        }
        Some(sum.to_le_bytes().to_vec())
    }

    fn partial_merge(&self, _key: &[u8], left: &[u8], right: &[u8]) -> Option<Vec<u8>> {
        Some(
            read(left)?
                .wrapping_add(read(right)?)
                .to_le_bytes()
                .to_vec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        let one = 1u64.to_le_bytes();
        let two = 2u64.to_le_bytes();
        let r = Counter.full_merge(b"k", Some(&two), &[&one, &two]).unwrap();
        assert_eq!(read(&r), Some(5));
        assert_eq!(
            read(&Counter.full_merge(b"k", None, &[&one]).unwrap()),
            Some(1)
        );
        assert_eq!(Counter.full_merge(b"k", None, &[b"bad"]), None);
        assert_eq!(
            read(&Counter.partial_merge(b"k", &one, &two).unwrap()),
            Some(3)
        );
    }
}
