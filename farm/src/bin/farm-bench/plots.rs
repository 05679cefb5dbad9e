//! The plots of `farm-bench offload` (SVG, with `plotters`): ingest
//! throughput over time per mode (round 0), hoster and worker CPU-seconds
//! per GiB ingested per mode (means), and the CDF of put latency per mode
//! (every round), drawn as the share of puts slower than each latency.

use crate::offload::{latencies, Mode, ModeRun};
use crate::offload_report::means;
use plotters::prelude::*;
use std::path::Path;

fn color(m: Mode) -> RGBColor {
    match m {
        Mode::Local => RGBColor(200, 40, 40),
        Mode::FarmInproc => RGBColor(40, 90, 200),
        Mode::FarmMulti => RGBColor(30, 150, 60),
        Mode::Direct => RGBColor(120, 120, 120),
        Mode::NoCompaction => RGBColor(150, 90, 170),
    }
}

/// Writes `offload-throughput.svg`, `offload-cpu.svg` and
/// `offload-latency.svg` into `dir`.
pub fn draw(dir: &Path, runs: &[ModeRun]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    throughput(&dir.join("offload-throughput.svg"), runs)?;
    cpu(&dir.join("offload-cpu.svg"), runs)?;
    latency(&dir.join("offload-latency.svg"), runs)?;
    Ok(())
}

fn throughput(path: &Path, runs: &[ModeRun]) -> anyhow::Result<()> {
    let first: Vec<&ModeRun> = Mode::ALL
        .iter()
        .filter_map(|m| runs.iter().find(|r| r.mode == *m))
        .collect();
    let xmax = first
        .iter()
        .filter_map(|r| r.writer.timeline.last().map(|p| p.0))
        .fold(1.0, f64::max);
    let ymax = first
        .iter()
        .flat_map(|r| r.writer.timeline.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Ingest throughput over time (round 0)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first write")
        .y_desc("writes per second")
        .draw()?;
    for r in first {
        let c = color(r.mode);
        chart
            .draw_series(LineSeries::new(r.writer.timeline.iter().copied(), &c))?
            .label(r.mode.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn cpu(path: &Path, runs: &[ModeRun]) -> anyhow::Result<()> {
    let bars: Vec<(Mode, f64, f64)> = Mode::ALL
        .iter()
        .filter_map(|m| means(runs, *m).map(|x| (*m, x.hoster_cpu_per_gib, x.worker_cpu_per_gib)))
        .collect();
    let ymax = bars.iter().map(|b| b.1.max(b.2)).fold(1.0, f64::max) * 1.15;
    let n = bars.len() as f64;
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "CPU-seconds per GiB ingested: hoster (solid), worker (light)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n, 0f64..ymax)?;
    let names: Vec<&str> = bars.iter().map(|b| b.0.name()).collect();
    let label = move |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 1e-9 {
            names.get(i).copied().unwrap_or("").to_owned()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(2 * bars.len() + 1)
        .x_label_formatter(&label)
        .y_desc("CPU-s / GiB")
        .draw()?;
    for (i, (m, hoster, worker)) in bars.iter().enumerate() {
        let x = i as f64;
        let c = color(*m);
        chart.draw_series([
            Rectangle::new([(x + 0.1, 0.0), (x + 0.48, *hoster)], c.filled()),
            Rectangle::new([(x + 0.52, 0.0), (x + 0.9, *worker)], c.mix(0.35).filled()),
        ])?;
        chart.draw_series([
            Text::new(
                format!("{hoster:.2}"),
                (x + 0.15, *hoster + ymax * 0.02),
                ("sans-serif", 14),
            ),
            Text::new(
                format!("{worker:.2}"),
                (x + 0.57, *worker + ymax * 0.02),
                ("sans-serif", 14),
            ),
        ])?;
    }
    root.present()?;
    Ok(())
}

/// The CDF drawn from its top: the share of puts slower than each latency,
/// on log scales, so that the tail where stalls show is readable.
fn latency(path: &Path, runs: &[ModeRun]) -> anyhow::Result<()> {
    let cdfs: Vec<(Mode, Vec<(f64, f64)>)> = Mode::ALL
        .iter()
        .filter(|m| runs.iter().any(|r| r.mode == **m))
        .map(|m| {
            let above = latencies(runs, *m)
                .cdf()
                .into_iter()
                .map(|(x, share)| (x, 1.0 - share))
                .filter(|(_, above)| *above > 0.0)
                .collect();
            (*m, above)
        })
        .collect();
    let xmax = cdfs
        .iter()
        .filter_map(|(_, c)| c.last().map(|p| p.0))
        .fold(10.0, f64::max);
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Put latency CDF, from the top (every round)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..xmax).log_scale(), (1e-7f64..1.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("put latency, microseconds (log)")
        .y_desc("share of puts slower (log)")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()?;
    for (m, cdf) in cdfs {
        let c = color(m);
        chart
            .draw_series(LineSeries::new(cdf, &c))?
            .label(m.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
