//! The mount table (`NFS_DYNAMIC_MOUNT`) as metrics, read at scrape time.
//!
//! | metric | type |
//! | --- | --- |
//! | `farm_worker_mounts_active` | gauge: mounts held now (in use or idle in the cache) |
//! | `farm_worker_mounts_total{result}` | counter: `mounted`, `unmounted`, `failed`, `remounted` |

use super::snapshot::{Family, Kind, Sample, SnapshotCollector};
use crate::worker::mounts::stats::MountsSnapshot;
use crate::worker::mounts::table::MountTable;
use std::sync::Weak;

const FAMILIES: [Family; 2] = [
    Family {
        name: "farm_worker_mounts_active",
        help: "Dynamic mounts held now, in use or idle in the cache",
        kind: Kind::Gauge,
        labels: &[],
    },
    Family {
        name: "farm_worker_mounts_total",
        help: "Dynamic mount events by result: mounted, unmounted, failed, remounted",
        kind: Kind::Counter,
        labels: &["result"],
    },
];

/// Samples of `m`, in `FAMILIES` order.
pub fn samples(m: &MountsSnapshot) -> Vec<Sample> {
    let c = &m.counters;
    let mut out = vec![Sample::new(FAMILIES[0].name, m.active as f64)];
    for (result, n) in [
        ("mounted", c.mounted),
        ("unmounted", c.unmounted),
        ("failed", c.failed),
        ("remounted", c.remounted),
    ] {
        out.push(Sample::labelled(
            FAMILIES[1].name,
            vec![result.to_owned()],
            n as f64,
        ));
    }
    out
}

/// The metrics of `table`; empty once it is gone.
pub fn collector(table: Weak<MountTable>) -> Result<SnapshotCollector, prometheus::Error> {
    SnapshotCollector::new(FAMILIES.to_vec(), move || {
        table
            .upgrade()
            .map(|t| samples(&t.snapshot()))
            .unwrap_or_default()
    })
}
