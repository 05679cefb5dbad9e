//! The soak's plot: the steady worker's resident memory (all of it, and
//! its anonymous part) and open files over the run, one SVG with two
//! panels.

use super::resources::Series;
use plotters::prelude::*;
use std::path::Path;

pub fn draw(path: &Path, series: &Series, title: &str) -> Result<(), Box<dyn std::error::Error>> {
    let minutes: Vec<(f64, f64, f64, f64)> = series
        .points
        .iter()
        .map(|(t, u)| {
            (
                t / 60.0,
                u.rss_kib as f64 / 1024.0,
                u.fds as f64,
                u.anon_kib as f64 / 1024.0,
            )
        })
        .collect();
    let xmax = minutes.last().map_or(1.0, |p| p.0.max(1.0 / 60.0));
    let rss_max = minutes.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let fd_max = minutes.iter().map(|p| p.2).fold(1.0, f64::max) * 1.2;
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(320);
    let panels = [
        (
            top,
            "resident memory (MiB): all, anonymous",
            rss_max,
            RGBColor(40, 90, 200),
            1,
        ),
        (bottom, "open files", fd_max, RGBColor(200, 40, 40), 2),
    ];
    for (i, (area, label, ymax, color, field)) in panels.into_iter().enumerate() {
        let caption = if i == 0 { title } else { "" };
        let mut chart = ChartBuilder::on(&area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(label)
            .draw()?;
        let points = minutes
            .iter()
            .map(|p| (p.0, if field == 1 { p.1 } else { p.2 }));
        chart.draw_series(LineSeries::new(points, &color))?;
        if field == 1 {
            let anon = minutes.iter().map(|p| (p.0, p.3));
            chart.draw_series(LineSeries::new(anon, &RGBColor(40, 160, 90)))?;
        }
    }
    root.present()?;
    Ok(())
}
