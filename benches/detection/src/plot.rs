//! PNG plots with plotters' bitmap backend.
//!
//! Why plotters and not a Python script: the benchmark stays one `cargo run`, with
//! nothing to install. plotters' own text path (`ttf`) needs fontconfig and system font
//! libraries, so it is off; text is drawn with `ab_glyph` from a TTF file found at run
//! time (DejaVu or Liberation, common on Debian). Without one, the plots are drawn
//! without text and the Markdown report carries the legend (method colours, axes).

use std::path::Path;

use plotters::prelude::*;

use crate::report::{PALETTE, Report};
use crate::stream::{Effect, Scenario};

/// Fonts tried, in order.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the first font found as `sans-serif`; whether text can be drawn.
pub fn register_font() -> bool {
    for path in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()].0;
    RGBColor(r, g, b)
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Median delay against effect size, one line per method, for the alternatives that
/// `x_of` gives an x for. Undetected medians sit on the horizon.
fn delay_plot(
    report: &Report,
    path: &Path,
    text: bool,
    title: &str,
    x_label: &str,
    x_of: impl Fn(&Scenario) -> Option<f64>,
) -> Result<()> {
    // Effect sizes sit at evenly spaced positions (they double, or nearly), labelled by
    // their value.
    let mut xs: Vec<f64> = report.scenarios.iter().filter_map(&x_of).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let position = |x: f64| xs.iter().position(|&v| v == x).unwrap_or(0) as f64;
    // An empty column on the right holds the legend, clear of every point.
    let x_range = (-0.5, xs.len() as f64 + 1.0);
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let horizon = report.settings.horizon_s as f64;
    // The axis starts at 30 s, or at the power of ten below the shortest median delay
    // (a method on a 1 s grid rolls back within seconds).
    let shortest = report
        .results
        .iter()
        .filter(|c| {
            report
                .scenarios
                .iter()
                .any(|s| s.name == c.scenario && x_of(s).is_some())
        })
        .filter_map(|c| c.delay_s.median)
        .fold(30.0, f64::min);
    let y_min = if shortest < 30.0 {
        libm::pow(10.0, libm::floor(libm::log10(shortest.max(0.1))))
    } else {
        30.0
    };
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(70);
    } else {
        builder.x_label_area_size(10).y_label_area_size(10);
    }
    let mut chart =
        builder.build_cartesian_2d(x_range.0..x_range.1, (y_min..horizon * 1.2).log_scale())?;
    let x_text = |x: &f64| {
        let i = x.round();
        match xs.get(i as usize) {
            Some(v) if (x - i).abs() < 1e-6 && i >= 0.0 => format!("{v}"),
            _ => String::new(),
        }
    };
    let y_text = |y: &f64| format!("{y:.0}");
    if text {
        chart
            .configure_mesh()
            .x_labels(2 * xs.len() + 4)
            .x_label_formatter(&x_text)
            .y_labels(8)
            .y_label_formatter(&y_text)
            .x_desc(x_label)
            .y_desc("median time to rollback (s)")
            .draw()?;
    } else {
        // plotters' mesh lays out label text even with no labels: draw a frame instead.
        chart.plotting_area().draw(&Rectangle::new(
            [(x_range.0, y_min), (x_range.1, horizon * 1.2)],
            BLACK.stroke_width(1),
        ))?;
    }
    // The horizon: points on it were not detected in more than half of the runs.
    chart.draw_series(LineSeries::new(
        [(x_range.0, horizon), (x_range.1, horizon)],
        BLACK.mix(0.3),
    ))?;
    let k = report.methods.len() as f64;
    for (i, method) in report.methods.iter().enumerate() {
        let c = colour(i);
        // A small sideways offset per method keeps equal delays apart.
        let dx = (i as f64 - (k - 1.0) / 2.0) * 0.03;
        let points: Vec<(f64, f64, bool)> = report
            .scenarios
            .iter()
            .filter_map(|s| {
                let x = position(x_of(s)?) + dx;
                let cell = report.cell(s.name, &method.name)?;
                Some(match cell.delay_s.median {
                    Some(d) => (x, d, true),
                    None => (x, horizon, false),
                })
            })
            .collect();
        let series = chart.draw_series(LineSeries::new(
            points.iter().map(|&(x, y, _)| (x, y)),
            c.stroke_width(2),
        ))?;
        if text {
            series
                .label(method.name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        chart.draw_series(points.iter().map(|&(x, y, found)| {
            if found {
                Circle::new((x, y), 5, c.filled()).into_dyn()
            } else {
                Cross::new((x, y), 6, c.stroke_width(2)).into_dyn()
            }
        }))?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Realised false-rollback rate per null, one bar per method with its Wilson interval.
fn rate_plot(report: &Report, path: &Path, text: bool) -> Result<()> {
    let nulls: Vec<_> = report.scenarios.iter().filter(|s| s.is_null()).collect();
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = report
        .results
        .iter()
        .filter(|c| c.null)
        .map(|c| c.rate_ci95.1)
        .fold(0.02, f64::max)
        * 1.1;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(
                "realised false-rollback rate per null (Wilson 95 %)",
                ("sans-serif", 22),
            )
            .x_label_area_size(45)
            .y_label_area_size(70);
    } else {
        builder.x_label_area_size(10).y_label_area_size(10);
    }
    let n = nulls.len() as f64;
    let mut chart = builder.build_cartesian_2d(0.0..n, 0.0..top)?;
    let names: Vec<&str> = nulls.iter().map(|s| s.name).collect();
    let group_name = move |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 1e-6 && i < names.len() {
            names[i].trim_start_matches("null_").to_string()
        } else {
            String::new()
        }
    };
    let percent = |y: &f64| format!("{:.0} %", 100.0 * y);
    if text {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(nulls.len() * 2 + 1)
            .x_label_formatter(&group_name)
            .y_desc("false-rollback rate")
            .y_label_formatter(&percent)
            .draw()?;
    } else {
        chart.plotting_area().draw(&Rectangle::new(
            [(0.0, 0.0), (n, top)],
            BLACK.stroke_width(1),
        ))?;
    }
    chart.draw_series(LineSeries::new(
        [(0.0, 0.01), (n, 0.01)],
        BLACK.stroke_width(1),
    ))?;
    let k = report.methods.len().max(1) as f64;
    let width = 0.8 / k;
    for (g, s) in nulls.iter().enumerate() {
        for (i, method) in report.methods.iter().enumerate() {
            let Some(cell) = report.cell(s.name, &method.name) else {
                continue;
            };
            let x0 = g as f64 + 0.1 + i as f64 * width;
            let x1 = x0 + width * 0.9;
            let c = colour(i);
            chart.draw_series([Rectangle::new([(x0, 0.0), (x1, cell.rate)], c.filled())])?;
            let xm = (x0 + x1) / 2.0;
            chart.draw_series(LineSeries::new(
                [(xm, cell.rate_ci95.0), (xm, cell.rate_ci95.1)],
                BLACK.stroke_width(1),
            ))?;
        }
    }
    if text {
        for (i, method) in report.methods.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], c.filled())])?
                .label(method.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Writes `delay_vs_shift.png`, `delay_vs_error_ratio.png` and `false_rollback_rate.png`
/// into `dir`, with text if `text`.
///
/// # Errors
/// A drawing or file error.
pub fn write_plots(report: &Report, dir: &Path, text: bool) -> Result<()> {
    delay_plot(
        report,
        &dir.join("delay_vs_shift.png"),
        text,
        "median time to rollback against a per-request mean shift",
        "mean shift (σ)",
        // The change-point alternatives have their own onset: not on this axis.
        |s| match s.effect {
            Effect::MeanShift { sigmas } if s.onset_s == 0 => Some(sigmas),
            _ => None,
        },
    )?;
    delay_plot(
        report,
        &dir.join("delay_vs_error_ratio.png"),
        text,
        "median time to rollback against the error-rate ratio (base 0.5 %)",
        "error-rate ratio",
        |s| match s.effect {
            Effect::ErrorRatio { ratio } if s.onset_s == 0 => Some(ratio),
            _ => None,
        },
    )?;
    rate_plot(report, &dir.join("false_rollback_rate.png"), text)
}
