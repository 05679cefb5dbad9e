//! `ttl`: a compaction filter that drops values older than a time to live.
//! A value starts with its write time, 8 bytes little-endian Unix seconds;
//! it is dropped when `now - written > ttl`. Shorter values are kept.
//!
//! On the worker the plugin is configured from the environment:
//! `FARM_TTL_SECONDS` (default 86400) and `FARM_TTL_NOW` (Unix seconds;
//! default: the clock), so that runs can be made reproducible. The hoster
//! builds the same filter with [`Ttl::new`].

use farm_plugin_sdk::{CompactionFilter, Decision};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    ttl_seconds: u64,
    /// A fixed "now"; `None`: the clock at each decision.
    now: Option<u64>,
}

impl Ttl {
    pub fn new(ttl_seconds: u64, now: Option<u64>) -> Self {
        Ttl { ttl_seconds, now }
    }

    fn now(&self) -> u64 {
        self.now.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
    }
}

impl Default for Ttl {
    fn default() -> Self {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        Ttl::new(
            env("FARM_TTL_SECONDS").unwrap_or(86_400),
            env("FARM_TTL_NOW"),
        )
    }
}

impl CompactionFilter for Ttl {
    const NAME: &'static str = "ttl";
    const VERSION: u32 = 1;

    fn filter(&self, _level: u32, _key: &[u8], value: &[u8]) -> Decision {
        let Some(stamp) = value.get(..8).and_then(|b| b.try_into().ok()) else {
            return Decision::Keep;
        };
        let written = u64::from_le_bytes(stamp);
        if self.now().saturating_sub(written) > self.ttl_seconds {
            Decision::Remove
        } else {
            Decision::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_expired_against_a_fixed_now() {
        let f = Ttl::new(100, Some(1_000));
        let v = |t: u64| [t.to_le_bytes().as_slice(), b"payload"].concat();
        assert_eq!(f.filter(1, b"k", &v(950)), Decision::Keep);
        assert_eq!(f.filter(1, b"k", &v(899)), Decision::Remove);
        assert_eq!(f.filter(1, b"k", b"short"), Decision::Keep);
    }
}
