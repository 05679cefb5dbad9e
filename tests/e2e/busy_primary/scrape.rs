//! Reading the worker's `/metrics` in Prometheus text format.

use farm::worker::local::LocalWorker;

/// The worker's `/metrics` text.
fn metrics(worker: &LocalWorker) -> String {
    ureq::get(&format!("{}/metrics", worker.base_url()))
        .call()
        .expect("/metrics answers")
        .into_string()
        .expect("/metrics is text")
}

/// The value of the series `series` (a name with its labels, as the text
/// spells it), when the worker serves it.
pub fn metric(worker: &LocalWorker, series: &str) -> Option<f64> {
    metrics(worker)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sum over every label of the metric `name`.
pub fn metric_sum(worker: &LocalWorker, name: &str) -> f64 {
    metrics(worker)
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
