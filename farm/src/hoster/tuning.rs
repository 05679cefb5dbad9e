//! What enabling the farm changes in the DB's own options.
//!
//! A remote compaction holds one of RocksDB's background threads while its
//! worker runs it, and costs the hoster little else. RocksDB runs at most
//! `max_background_jobs` minus its flushes compactions at once: one, with
//! its default of 2 jobs. Left there, a hoster sends one compaction at a
//! time to the farm; the worker idles between jobs (each job's fixed cost,
//! the install, picking the next) while level 0 fills and the writer
//! stalls. Measured with a writer on one core and the worker on the other
//! (`farm-bench offload`, `docs/BENCHMARKS.md`): with 2 jobs the farm was no
//! faster than compacting locally; with 6 it ingested 1.4 times as fast.
//!
//! So [`apply`] raises `max_background_jobs` to the hoster's
//! `max_background_jobs` param (default 8: 6 compactions and 2 flushes) when
//! the DB's own setting is lower. It never lowers it; 0 leaves it alone.
//! When the farm falls back to local compaction, as many compactions share
//! the hoster's cores: set the param to what the hoster can take then. The
//! workers should take that many at once too: a worker answers 503 beyond
//! `MAX_PARALLEL_COMPACTIONS + MAX_WAITING_COMPACTIONS` (by default three
//! times its CPUs), and a job no worker takes compacts locally.
//!
//! With the compactions gone, most of the hoster's CPU is its writes and its
//! flushes, and a flush compresses every byte the DB takes in with the
//! DB's codec. Those level-0 files are soon compacted by a worker, which
//! writes the next level with the DB's codec anyway. So the
//! `flush_compression` param (unset by default) makes flushes write a
//! cheaper one (`lz4`, `none`) and leaves every other level as it was:
//! measured with `farm-bench offload` (3 million 200-byte values, zstd), the
//! hoster's CPU per GiB ingested fell from 0.48-0.50 of compacting locally
//! to 0.38-0.40 with `lz4` flushes (`docs/BENCHMARKS.md`).
//! The price: larger level-0 files (read by queries until compacted, moved
//! to the workers), and when the farm falls back, local compactions read
//! them too. Like every change `enable` makes, it applies to the options
//! `enable` is given: open column families with those options (or apply
//! [`apply`] to theirs) for it to reach them.

use super::config::HosterConfig;
use crate::rocks::options::{max_background_jobs, set_flush_compression};
use rocksdb::Options;

/// Raises `options`' `max_background_jobs` to `config.max_background_jobs`;
/// sets what flushes write to `config.flush_compression`.
pub fn apply(options: &mut Options, config: &HosterConfig) {
    if let Some(kind) = config.flush_compression {
        tracing::info!(compression = ?kind, "flushes write their own compression: compactions recompress on the farm");
        set_flush_compression(options, kind);
    }
    let want = config.max_background_jobs;
    let have = max_background_jobs(options);
    if want > 0 && have < want {
        tracing::info!(
            from = have,
            to = want,
            "raising max_background_jobs: remote compactions only wait on the hoster"
        );
        options.set_max_background_jobs(want);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> HosterConfig {
        HosterConfig::from_json(&format!(
            r#"{{"hoster_root":"/d","instance_name":"i"{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn raises_never_lowers() {
        let mut o = Options::default();
        apply(&mut o, &config(""));
        assert_eq!(max_background_jobs(&o), 8);
        o.set_max_background_jobs(12);
        apply(&mut o, &config(""));
        assert_eq!(max_background_jobs(&o), 12);
        let mut o = Options::default();
        apply(&mut o, &config(r#","max_background_jobs":0"#));
        assert_eq!(max_background_jobs(&o), 2);
    }

    #[test]
    fn flush_compression_only_when_asked() {
        use crate::rocks::options::level_compression;
        use rocksdb::DBCompressionType;
        let mut o = Options::default();
        o.set_compression_type(DBCompressionType::Zstd);
        apply(&mut o, &config(""));
        assert_eq!(level_compression(&o, 0), DBCompressionType::Zstd as u8);
        apply(&mut o, &config(r#","flush_compression":"lz4""#));
        assert_eq!(level_compression(&o, 0), DBCompressionType::Lz4 as u8);
        assert_eq!(level_compression(&o, 1), DBCompressionType::Zstd as u8);
        let bad = HosterConfig::from_json(
            r#"{"hoster_root":"/d","instance_name":"i","flush_compression":"brotli"}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("flush_compression"));
    }
}
