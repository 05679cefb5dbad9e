//! The worker's side of the zipserver (`ZIP_SERVER_OPTIONS` /
//! `ZIP_SERVER_SOCKET`) as metrics, read at scrape time: what the children
//! sent to the zipserver and what they compressed themselves because it
//! failed or was too slow, and the sidecar's restarts. The zipserver serves
//! its own queue, bytes and ratio on its `/metrics`.
//!
//! | metric | type |
//! | --- | --- |
//! | `farm_worker_zip_blocks_total{path}` | counter: blocks compressed by the zipserver (`remote`) or in the child (`fallback`) |
//! | `farm_worker_zip_bytes_total{path}` | counter: uncompressed bytes of those blocks |
//! | `farm_worker_zip_remote_out_bytes_total` | counter: compressed bytes the zipserver sent back |
//! | `farm_worker_zipserver_restarts_total` | counter: times the worker's zipserver died and was started again |
//! | `farm_worker_zipserver_up` | gauge: 1 while the worker's zipserver runs |

use super::snapshot::{Family, Kind, Sample, SnapshotCollector};
use crate::worker::supervisor::Supervisor;
use crate::worker::zip_link::ZipLinkSnapshot;
use std::sync::Weak;

const FAMILIES: [Family; 5] = [
    Family {
        name: "farm_worker_zip_blocks_total",
        help: "Output blocks of attempt children, by who compressed them: remote (zipserver) or fallback (the child)",
        kind: Kind::Counter,
        labels: &["path"],
    },
    Family {
        name: "farm_worker_zip_bytes_total",
        help: "Uncompressed bytes of those blocks, by path",
        kind: Kind::Counter,
        labels: &["path"],
    },
    Family {
        name: "farm_worker_zip_remote_out_bytes_total",
        help: "Compressed bytes the zipserver sent back",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_zipserver_restarts_total",
        help: "Times the worker's zipserver died and was started again",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "farm_worker_zipserver_up",
        help: "1 while the worker's own zipserver runs",
        kind: Kind::Gauge,
        labels: &[],
    },
];

/// Samples of `z`, in `FAMILIES` order.
pub fn samples(z: &ZipLinkSnapshot) -> Vec<Sample> {
    let c = &z.counts;
    let path = |p: &str| vec![p.to_owned()];
    let mut out = vec![
        Sample::labelled(FAMILIES[0].name, path("remote"), c.remote_blocks as f64),
        Sample::labelled(FAMILIES[0].name, path("fallback"), c.fallback_blocks as f64),
        Sample::labelled(FAMILIES[1].name, path("remote"), c.remote_bytes_in as f64),
        Sample::labelled(FAMILIES[1].name, path("fallback"), c.fallback_bytes as f64),
        Sample::new(FAMILIES[2].name, c.remote_bytes_out as f64),
    ];
    if let Some(s) = &z.sidecar {
        out.push(Sample::new(FAMILIES[3].name, s.restarts as f64));
        out.push(Sample::new(
            FAMILIES[4].name,
            f64::from(u8::from(s.pid.is_some())),
        ));
    }
    out
}

/// The zipserver metrics of `sup`; empty once it is gone.
pub fn collector(sup: Weak<Supervisor>) -> Result<SnapshotCollector, prometheus::Error> {
    SnapshotCollector::new(FAMILIES.to_vec(), move || {
        sup.upgrade()
            .and_then(|s| s.zip_snapshot())
            .map(|z| samples(&z))
            .unwrap_or_default()
    })
}
