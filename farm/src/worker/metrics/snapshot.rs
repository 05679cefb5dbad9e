//! A collector that reads a stats snapshot when Prometheus scrapes, for
//! values that some other part already keeps (the supervisor's queue, a
//! mount table, the zipserver's counters): nothing is counted twice.
//!
//! The families are declared up front (Prometheus wants descriptors at
//! registration); `read` returns the current samples. A sample naming an
//! undeclared family is dropped.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use std::collections::HashMap;

/// Gauge or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One metric family the collector serves.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Label names; values in [`Sample::labels`] come in this order.
    pub labels: &'static [&'static str],
}

/// One value at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub family: &'static str,
    pub labels: Vec<String>,
    pub value: f64,
}

impl Sample {
    pub fn new(family: &'static str, value: f64) -> Self {
        Sample {
            family,
            labels: Vec::new(),
            value,
        }
    }

    pub fn labelled(family: &'static str, labels: Vec<String>, value: f64) -> Self {
        Sample {
            family,
            labels,
            value,
        }
    }
}

type Read = dyn Fn() -> Vec<Sample> + Send + Sync;

pub struct SnapshotCollector {
    families: Vec<Family>,
    descs: Vec<Desc>,
    read: Box<Read>,
}

impl SnapshotCollector {
    pub fn new(
        families: Vec<Family>,
        read: impl Fn() -> Vec<Sample> + Send + Sync + 'static,
    ) -> Result<Self, prometheus::Error> {
        let descs = families
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.into(),
                    f.help.into(),
                    f.labels.iter().map(|l| l.to_string()).collect(),
                    HashMap::new(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(SnapshotCollector {
            families,
            descs,
            read: Box::new(read),
        })
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let samples = (self.read)();
        self.families
            .iter()
            .map(|f| {
                let mut mf = MetricFamily::default();
                mf.set_name(f.name.into());
                mf.set_help(f.help.into());
                mf.set_field_type(match f.kind {
                    Kind::Gauge => MetricType::GAUGE,
                    Kind::Counter => MetricType::COUNTER,
                });
                let metrics = samples
                    .iter()
                    .filter(|s| s.family == f.name && s.labels.len() == f.labels.len())
                    .map(|s| {
                        let mut m = proto::Metric::default();
                        m.set_label(
                            f.labels
                                .iter()
                                .zip(&s.labels)
                                .map(|(name, value)| {
                                    let mut l = LabelPair::default();
                                    l.set_name(name.to_string());
                                    l.set_value(value.clone());
                                    l
                                })
                                .collect(),
                        );
                        match f.kind {
                            Kind::Gauge => {
                                let mut g = proto::Gauge::default();
                                g.set_value(s.value);
                                m.set_gauge(g);
                            }
                            Kind::Counter => {
                                let mut c = proto::Counter::default();
                                c.set_value(s.value);
                                m.set_counter(c);
                            }
                        }
                        m
                    })
                    .collect();
                mf.set_metric(metrics);
                mf
            })
            .filter(|mf| !mf.get_metric().is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn reads_the_snapshot_at_each_scrape() {
        let value = Arc::new(AtomicU64::new(3));
        let seen = value.clone();
        let c = SnapshotCollector::new(
            vec![
                Family {
                    name: "t_running",
                    help: "running",
                    kind: Kind::Gauge,
                    labels: &[],
                },
                Family {
                    name: "t_mounts_total",
                    help: "mounts",
                    kind: Kind::Counter,
                    labels: &["result"],
                },
            ],
            move || {
                vec![
                    Sample::new("t_running", seen.load(Ordering::Relaxed) as f64),
                    Sample::labelled("t_mounts_total", vec!["ok".into()], 5.0),
                    Sample::new("t_undeclared", 1.0),
                ]
            },
        )
        .unwrap();
        let registry = Registry::new();
        registry.register(Box::new(c)).unwrap();
        let scrape = || {
            let mut out = Vec::new();
            prometheus::TextEncoder::new()
                .encode(&registry.gather(), &mut out)
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        let t = scrape();
        assert!(t.contains("t_running 3"), "{t}");
        assert!(t.contains("# TYPE t_mounts_total counter"), "{t}");
        assert!(t.contains("t_mounts_total{result=\"ok\"} 5"), "{t}");
        assert!(!t.contains("t_undeclared"), "{t}");
        value.store(7, Ordering::Relaxed);
        assert!(scrape().contains("t_running 7"));
    }
}
