//! Training curves: reading `metrics.jsonl` and drawing hand-written SVG line charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::EvalError;

/// One metric over training steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric name, e.g. `train/lm_loss`.
    pub name: String,
    /// (step, value) points in file order.
    pub points: Vec<(f64, f64)>,
}

/// All metrics of a `metrics.jsonl`, sorted by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsLog {
    /// One series per metric name.
    pub series: Vec<Series>,
}

/// Reads a `metrics.jsonl`: one JSON object per line with a numeric `"step"` and numeric metrics.
///
/// Blank lines are skipped; non-numeric and non-finite values are ignored. A line that is
/// not a JSON object, or lacks a numeric `"step"`, is an error naming the file and line.
pub fn read_metrics_jsonl(path: &Path) -> Result<MetricsLog, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    parse_metrics_jsonl(&text, path)
}

/// Parses the text of a `metrics.jsonl`; `path` only names the file in errors.
pub fn parse_metrics_jsonl(text: &str, path: &Path) -> Result<MetricsLog, EvalError> {
    let mut by_name: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| EvalError::json(path, format!("line {}: {e}", i + 1)))?;
        let obj = value
            .as_object()
            .ok_or_else(|| EvalError::json(path, format!("line {}: not a JSON object", i + 1)))?;
        let step = obj
            .get("step")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| EvalError::json(path, format!("line {}: no numeric \"step\"", i + 1)))?;
        for (name, v) in obj {
            if name == "step" {
                continue;
            }
            if let Some(v) = v.as_f64().filter(|v| v.is_finite()) {
                by_name.entry(name.clone()).or_default().push((step, v));
            }
        }
    }
    Ok(MetricsLog {
        series: by_name
            .into_iter()
            .map(|(name, points)| Series { name, points })
            .collect(),
    })
}

/// A line chart: x = step, y = metric value, one line per series.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// The title above the plot.
    pub title: String,
    /// The x-axis label.
    pub x_label: String,
    /// The y-axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// A logarithmic x axis (base 10, ticks at powers of ten; points with x <= 0 are left out), e.g. for
    /// pass@K against K.
    pub x_log: bool,
}

/// Metrics whose train and eval series count different things and so never share a chart: `train/count` is
/// the number of sequences that halted in a logged window, `eval/count` the number of sequences evaluated.
pub const UNMIXED_METRICS: [&str; 1] = ["count"];

/// What a metric that is drawn alone measures (its y-axis label), by full name.
fn unmixed_label(name: &str) -> String {
    match name {
        "train/count" => "halted sequences per logged window".to_string(),
        "eval/count" => "evaluated sequences".to_string(),
        _ => name.to_string(),
    }
}

/// Groups metrics into charts by the part after the last `/` (so `train/exact_accuracy` and
/// `eval/exact_accuracy` share a chart), in name order. The metrics of [`UNMIXED_METRICS`] get one chart
/// per full name (`train/count` and `eval/count` apart).
pub fn charts_from_metrics(log: &MetricsLog) -> Vec<LineChart> {
    let mut groups: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for s in &log.series {
        let suffix = s.name.rsplit('/').next().unwrap_or(&s.name);
        let key = if UNMIXED_METRICS.contains(&suffix) {
            s.name.clone()
        } else {
            suffix.to_string()
        };
        groups.entry(key).or_default().push(s.clone());
    }
    groups
        .into_iter()
        .map(|(key, series)| {
            let unmixed = series.len() == 1
                && series[0].name == key
                && UNMIXED_METRICS.contains(&key.rsplit('/').next().unwrap_or(&key));
            LineChart {
                y_label: if unmixed {
                    unmixed_label(&key)
                } else {
                    key.clone()
                },
                title: key,
                x_label: "step".to_string(),
                series,
                x_log: false,
            }
        })
        .collect()
}

/// The colours of successive series.
pub const SERIES_COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Escapes text for XML and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// A "nice" tick spacing (1, 2 or 5 times a power of ten) giving about `target` ticks.
fn tick_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The range an axis shows for data in [lo, hi]: the data range itself, or, for a constant series (a span
/// that is zero, or float noise below 1e-9 of the values), the value with 10% of its size on either side
/// (±1 around 0), so a flat line sits mid-plot on distinct ticks. Non-finite bounds give [0, 1].
fn padded_range(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() || lo > hi {
        return (0.0, 1.0);
    }
    let scale = lo.abs().max(hi.abs());
    if hi - lo > scale * 1e-9 {
        return (lo, hi);
    }
    let mid = lo + (hi - lo) / 2.0;
    let pad = if mid == 0.0 { 1.0 } else { mid.abs() * 0.1 };
    (mid - pad, mid + pad)
}

/// The most ticks an axis draws (a guard; nice steps give about the target).
const MAX_TICKS: usize = 20;

/// Tick positions covering [lo, hi] (the range is widened to whole ticks; see [`padded_range`] for constant
/// data).
fn ticks(lo: f64, hi: f64, target: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = padded_range(lo, hi);
    let step = tick_step(hi - lo, target);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = ((end - start) / step).round();
    if !(n.is_finite() && n >= 1.0 && n as usize <= MAX_TICKS) {
        return (lo, hi, vec![lo, hi]);
    }
    let ticks = (0..=n as usize).map(|i| start + i as f64 * step).collect();
    (start, end, ticks)
}

/// Ticks of a log axis over [lo, hi] (log10 of the data): every whole power of ten covering the range,
/// at least one decade wide.
fn log_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && lo <= hi {
        (lo.floor(), hi.ceil())
    } else {
        (0.0, 1.0)
    };
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let n = ((hi - lo) as usize).min(MAX_TICKS);
    let ticks = (0..=n).map(|i| lo + i as f64).collect();
    (lo, lo + n as f64, ticks)
}

/// A tick label with as many decimals as the spacing needs; thousands get a `k`.
fn tick_label(v: f64, step: f64) -> String {
    if step >= 1000.0 && v.abs() >= 1000.0 {
        let decimals = (-(step / 1000.0).log10().floor()).max(0.0) as usize;
        return format!("{:.*}k", decimals, v / 1000.0);
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// The number of legend rows the series need in a plot `plot_width` pixels wide.
fn legend_rows(series: &[Series], plot_width: f64) -> f64 {
    let mut rows = 1.0;
    let mut x = 0.0;
    for s in series {
        let entry = 30.0 + legend_label(s).len() as f64 * 6.2;
        if x > 0.0 && x + entry > plot_width {
            rows += 1.0;
            x = 0.0;
        }
        x += entry;
    }
    rows
}

/// The fewest points a training series needs to be drawn smoothed.
pub const SMOOTH_MIN_POINTS: usize = 10;

/// The smoothing weight for a training series of `n` points, TensorBoard-style: 0 (no smoothing) below
/// [`SMOOTH_MIN_POINTS`], then from 0.6 at 10 points up by 0.15 per tenfold, at most 0.9 (1000 points).
pub fn smoothing_weight(n: usize) -> f64 {
    if n < SMOOTH_MIN_POINTS {
        return 0.0;
    }
    (0.6 + 0.15 * (n as f64 / SMOOTH_MIN_POINTS as f64).log10()).clamp(0.6, 0.9)
}

/// The exponential moving average of `values` with `weight` in [0, 1), debiased as TensorBoard does (the
/// average starts at 0 and is divided by `1 - weight^(i+1)`), so the first value is kept and a constant
/// series stays constant.
pub fn smooth(values: &[f64], weight: f64) -> Vec<f64> {
    let mut last = 0.0;
    let mut debias = 1.0;
    values
        .iter()
        .map(|&v| {
            last = last * weight + (1.0 - weight) * v;
            debias *= weight;
            last / (1.0 - debias)
        })
        .collect()
}

/// Whether a series is a training curve drawn smoothed: `train/*` metrics other than the learning rate
/// (a schedule, not a noisy measurement), with enough points.
fn smoothed(s: &Series) -> Option<f64> {
    let training = s.name.starts_with("train/") && s.name != "train/lr";
    let w = smoothing_weight(s.points.len());
    (training && w > 0.0).then_some(w)
}

/// The legend text of a series: its name, with the smoothing weight when it is drawn smoothed.
fn legend_label(s: &Series) -> String {
    match smoothed(s) {
        Some(w) => format!("{} (smoothed {w:.2})", s.name),
        None => s.name.clone(),
    }
}

impl LineChart {
    /// Draws the chart as a standalone SVG document of `width` x `height` pixels.
    pub fn to_svg(&self, width: u32, height: u32) -> String {
        let (w, h) = (f64::from(width), f64::from(height));
        let rows = legend_rows(&self.series, w - 80.0);
        let (left, right, top, bottom) = (64.0, 16.0, 40.0 + 15.0 * rows, 46.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let (x_lo, x_hi, y_lo, y_hi) = self.bounds();
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
        );
        let _ = write!(
            svg,
            r##"<rect width="{width}" height="{height}" fill="#ffffff"/>"##
        );
        let _ = write!(
            svg,
            r##"<text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold" fill="#222">{}</text>"##,
            w / 2.0,
            escape(&self.title)
        );
        if x_lo > x_hi {
            let _ = write!(
                svg,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#888">no data</text></svg>"##,
                w / 2.0,
                h / 2.0
            );
            return svg;
        }
        let (x0, x1, xt) = if self.x_log {
            log_ticks(x_lo, x_hi)
        } else {
            ticks(x_lo, x_hi, 6.0)
        };
        let (y0, y1, yt) = ticks(y_lo, y_hi, 5.0);
        // `px` places an axis position (log10 of x on a log axis), `sx` a data x.
        let px = |u: f64| left + (u - x0) / (x1 - x0) * pw;
        let sx = |x: f64| px(self.axis_x(x));
        let sy = |y: f64| top + ph - (y - y0) / (y1 - y0) * ph;
        let x_step = xt.get(1).map_or(1.0, |t| t - xt[0]);
        let y_step = yt.get(1).map_or(1.0, |t| t - yt[0]);
        for &t in &yt {
            let y = sy(t);
            let _ = write!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0,
                tick_label(t, y_step)
            );
        }
        for &t in &xt {
            let x = px(t);
            let label = if self.x_log {
                tick_label(10f64.powf(t).round(), 10f64.powf(t).max(1.0))
            } else {
                tick_label(t, x_step)
            };
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#f0f0f0"/><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                top + ph,
                top + ph,
                top + ph + 4.0,
                top + ph + 16.0,
                label
            );
        }
        // The axes.
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="#444"/><line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#444"/>"##,
            top + ph,
            top + ph,
            left + pw,
            top + ph
        );
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text>"##,
            left + pw / 2.0,
            h - 8.0,
            escape(&self.x_label)
        );
        let _ = write!(
            svg,
            r##"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
            top + ph / 2.0,
            escape(&self.y_label)
        );
        self.svg_lines(&mut svg, &sx, &sy);
        self.svg_legend(&mut svg, left, pw);
        svg.push_str("</svg>");
        svg
    }

    /// The axis position of a data x: x itself, or log10(x) on a log axis.
    fn axis_x(&self, x: f64) -> f64 {
        if self.x_log {
            x.log10()
        } else {
            x
        }
    }

    /// The points of a series the chart can place (all of them, or those with x > 0 on a log axis).
    fn placeable<'s>(&self, s: &'s Series) -> impl Iterator<Item = &'s (f64, f64)> + 's {
        let log = self.x_log;
        s.points.iter().filter(move |p| !log || p.0 > 0.0)
    }

    /// The data range (x_lo, x_hi, y_lo, y_hi) over every series, x on the axis scale; x_lo > x_hi when
    /// there is no point.
    fn bounds(&self) -> (f64, f64, f64, f64) {
        let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for s in &self.series {
            for &(x, y) in self.placeable(s) {
                let x = self.axis_x(x);
                x_lo = x_lo.min(x);
                x_hi = x_hi.max(x);
                y_lo = y_lo.min(y);
                y_hi = y_hi.max(y);
            }
        }
        (x_lo, x_hi, y_lo, y_hi)
    }

    /// The series as polylines (and dots when a series has at most 40 points), scaled by `sx` and `sy`. A
    /// training series with enough points (see [`smoothing_weight`]) is drawn faint, with its exponentially
    /// smoothed line on top and no dots.
    fn svg_lines(&self, svg: &mut String, sx: &dyn Fn(f64) -> f64, sy: &dyn Fn(f64) -> f64) {
        let polyline = |svg: &mut String, points: &[(f64, f64)], style: &str| {
            if points.len() > 1 {
                let coords: Vec<String> = points
                    .iter()
                    .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                    .collect();
                let _ = write!(
                    svg,
                    r#"<polyline fill="none" {style} points="{}"/>"#,
                    coords.join(" ")
                );
            }
        };
        for (i, s) in self.series.iter().enumerate() {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            let placed: Vec<(f64, f64)> = self.placeable(s).copied().collect();
            let s = &Series {
                name: s.name.clone(),
                points: placed,
            };
            if let Some(w) = smoothed(s) {
                polyline(
                    svg,
                    &s.points,
                    &format!(
                        r#"class="raw" stroke="{colour}" stroke-opacity="0.25" stroke-width="1""#
                    ),
                );
                let ys: Vec<f64> = s.points.iter().map(|p| p.1).collect();
                let points: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .zip(smooth(&ys, w))
                    .map(|(&(x, _), y)| (x, y))
                    .collect();
                polyline(
                    svg,
                    &points,
                    &format!(r#"class="smoothed" stroke="{colour}" stroke-width="1.8""#),
                );
                continue;
            }
            polyline(
                svg,
                &s.points,
                &format!(r#"stroke="{colour}" stroke-width="1.8""#),
            );
            if s.points.len() <= 40 {
                for &(x, y) in &s.points {
                    let _ = write!(
                        svg,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                        sx(x),
                        sy(y)
                    );
                }
            }
        }
    }

    /// The legend: one row of entries between the title and the plot (from `left`, `pw` wide), wrapping
    /// when needed.
    fn svg_legend(&self, svg: &mut String, left: f64, pw: f64) {
        let (mut lx, mut ly) = (left, 36.0);
        for (i, s) in self.series.iter().enumerate() {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            let label = legend_label(s);
            let entry = 30.0 + label.len() as f64 * 6.2;
            if lx > left && lx + entry > left + pw {
                lx = left;
                ly += 15.0;
            }
            let _ = write!(
                svg,
                r##"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2.5"/><text x="{:.1}" y="{ly:.1}" fill="#222">{}</text>"##,
                ly - 4.0,
                lx + 16.0,
                ly - 4.0,
                lx + 20.0,
                escape(&label)
            );
            lx += entry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_nice_steps() {
        let (lo, hi, t) = ticks(0.13, 0.87, 5.0);
        assert!(lo <= 0.13 && hi >= 0.87);
        assert_eq!(t.len(), 6);
        assert!((t[1] - t[0] - 0.2).abs() < 1e-12);
        assert_eq!(tick_label(20000.0, 10000.0), "20k");
        assert_eq!(tick_label(0.25, 0.05), "0.25");
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = parse_metrics_jsonl("{\"step\": 1, \"a\": 2}\nnot json\n", Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.jsonl") && err.contains("line 2"), "{err}");
        let err = parse_metrics_jsonl("{\"a\": 2}\n", Path::new("m.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("step"), "{err}");
    }

    #[test]
    fn metrics_group_by_suffix() {
        let text = "{\"step\": 1, \"train/exact_accuracy\": 0.1, \"train/lm_loss\": 2.0}\n\
                    {\"step\": 2, \"train/exact_accuracy\": 0.2, \"eval/exact_accuracy\": 0.15, \"note\": \"x\"}\n";
        let log = parse_metrics_jsonl(text, Path::new("m")).unwrap();
        let charts = charts_from_metrics(&log);
        let titles: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, ["exact_accuracy", "lm_loss"]);
        assert_eq!(charts[0].series.len(), 2);
        assert_eq!(charts[0].series[1].points, vec![(1.0, 0.1), (2.0, 0.2)]);
        let svg = charts[0].to_svg(500, 300);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("polyline") && svg.contains("eval/exact_accuracy"));
    }
}
