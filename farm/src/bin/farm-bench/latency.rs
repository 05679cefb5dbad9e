//! A latency histogram with buckets 1/8 of a power of two wide (values
//! within 12.5%), cheap enough to record every put.

use std::time::Duration;

const SUB: u32 = 8;
const BUCKETS: usize = 64 * SUB as usize;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros();
    let shift = exp - SUB.trailing_zeros();
    let sub = (ns >> shift) as u32 - SUB;
    ((exp - SUB.trailing_zeros() + 1) * SUB + sub) as usize
}

/// The smallest value of a bucket.
fn floor(b: usize) -> u64 {
    let b = b as u32;
    if b < SUB {
        return b as u64;
    }
    let shift = b / SUB - 1;
    ((SUB + b % SUB) as u64) << shift
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[bucket(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// The value below which a share `p` (0 to 1) of the samples lie (the
    /// bucket's upper edge).
    pub fn quantile(&self, p: f64) -> Duration {
        let want = ((self.total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Duration::from_nanos(floor(b + 1));
            }
        }
        Duration::ZERO
    }

    /// `(upper edge in microseconds, share at or below it)` for every
    /// non-empty bucket: the CDF to plot.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        let mut seen = 0;
        let mut out = Vec::new();
        for (b, c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            seen += c;
            out.push((
                floor(b + 1) as f64 / 1000.0,
                seen as f64 / self.total as f64,
            ));
        }
        out
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }
}

/// The value at share `p` (0 to 1) of `values` (sorted here), nearest rank;
/// `None` when empty.
pub fn percentile(values: &mut [u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let i = ((values.len() - 1) as f64 * p).round() as usize;
    Some(values[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for ns in [0u64, 1, 7, 8, 9, 15, 16, 100, 1_000, 123_456, 1 << 40] {
            let b = bucket(ns);
            assert!(b >= last);
            last = b;
            assert!(floor(b) <= ns && ns < floor(b + 1), "{ns}: {b}");
            assert!(floor(b + 1) as f64 <= (ns as f64 * 1.126).max(ns as f64 + 1.0));
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_micros();
        let p99 = h.quantile(0.99).as_micros();
        assert!((50..=57).contains(&p50), "{p50}");
        assert!((99..=112).contains(&p99), "{p99}");
        assert_eq!(h.cdf().last().unwrap().1, 1.0);
    }
}
