//! Small hand-written SVG charts: lines (one polyline per series) and grouped bars.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
/// The plot area's margins: left for the y ticks, right for the legend.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Room below a bar chart for its slanted group labels.
const LABELS_BELOW: f64 = 80.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One polyline per series (with a dot at each point), axes with ticks, a legend on the right.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (xs, ys): (Vec<f64>, Vec<f64>) = all
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .copied()
        .unzip();
    let x_axis = Axis::fit(&xs, true);
    let y_axis = Axis::fit(&ys, false);
    let mut svg = open(title, x_label, y_label, HEIGHT);
    axes(&mut svg, &x_axis, &y_axis);
    for (index, s) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let coordinates: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_axis.to_px_x(x), y_axis.to_px_y(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            coordinates.join(" ")
        );
        for &(x, y) in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x_axis.to_px_x(x),
                y_axis.to_px_y(y)
            );
        }
        legend_entry(&mut svg, index, color, &s.name);
    }
    svg + "</svg>\n"
}

/// For each group, one bar per entry of `bar_names` (a missing value leaves a gap); a dashed
/// line at `reference`.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    bar_names: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    reference: f64,
) -> String {
    let mut values: Vec<f64> = groups
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .collect();
    values.push(reference);
    let y_axis = Axis::fit(&values, true);
    let mut svg = open(title, "", y_label, HEIGHT + LABELS_BELOW);
    let plot_width = WIDTH - LEFT - RIGHT;
    let group_width = plot_width / groups.len().max(1) as f64;
    let bar_width = group_width * 0.8 / bar_names.len().max(1) as f64;
    axes(&mut svg, &Axis::none(), &y_axis);
    for (g, (label, bars)) in groups.iter().enumerate() {
        let group_left = LEFT + g as f64 * group_width + group_width * 0.1;
        for (b, value) in bars.iter().enumerate() {
            let Some(value) = value else { continue };
            let top = y_axis.to_px_y(*value);
            let bottom = y_axis.to_px_y(y_axis.min);
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{top:.1}" width="{bar_width:.1}" height="{:.1}" fill="{}"><title>{}: {value:.3}</title></rect>"#,
                group_left + b as f64 * bar_width,
                (bottom - top).max(0.0),
                COLORS[b % COLORS.len()],
                escape(bar_names.get(b).copied().unwrap_or(""))
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" transform="rotate(30 {0:.1} {1:.1})">{}</text>"#,
            LEFT + (g as f64 + 0.3) * group_width,
            HEIGHT - BOTTOM + 14.0,
            escape(label)
        );
    }
    let y = y_axis.to_px_y(reference);
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#555" stroke-dasharray="5,4"/>"##,
        WIDTH - RIGHT
    );
    for (b, name) in bar_names.iter().enumerate() {
        legend_entry(&mut svg, b, COLORS[b % COLORS.len()], name);
    }
    svg + "</svg>\n"
}

/// A linear axis over nice round ticks.
struct Axis {
    min: f64,
    max: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn fit(values: &[f64], from_zero: bool) -> Self {
        let (mut low, mut high) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !low.is_finite() {
            (low, high) = (0.0, 1.0);
        }
        if from_zero {
            low = low.min(0.0);
        }
        if high - low < 1e-12 {
            (low, high) = (low - 0.5, high + 0.5);
        }
        let step = nice_step((high - low) / 5.0);
        let min = (low / step).floor() * step;
        let max = (high / step).ceil() * step;
        let count = ((max - min) / step).round() as usize;
        let ticks = (0..=count).map(|i| min + i as f64 * step).collect();
        Self { min, max, ticks }
    }

    fn none() -> Self {
        Self {
            min: 0.0,
            max: 1.0,
            ticks: Vec::new(),
        }
    }

    fn to_px_x(&self, x: f64) -> f64 {
        LEFT + (x - self.min) / (self.max - self.min) * (WIDTH - LEFT - RIGHT)
    }

    fn to_px_y(&self, y: f64) -> f64 {
        HEIGHT - BOTTOM - (y - self.min) / (self.max - self.min) * (HEIGHT - TOP - BOTTOM)
    }
}

/// 1, 2 or 5 times a power of ten, at least `rough`.
fn nice_step(rough: f64) -> f64 {
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= rough)
        .unwrap_or(10.0 * power)
}

/// The canvas (`height` tall; the plot area is the same in every chart), title and axis labels.
fn open(title: &str, x_label: &str, y_label: &str, height: f64) -> String {
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{:.1}" y="24" font-size="16" text-anchor="middle">{}</text>
"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 14.0,
        escape(x_label)
    );
    let middle = (TOP + HEIGHT - BOTTOM) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{middle:.1}" font-size="13" text-anchor="middle" transform="rotate(-90 18 {middle:.1})">{}</text>"#,
        escape(y_label)
    );
    svg
}

fn axes(svg: &mut String, x: &Axis, y: &Axis) {
    let (left, right, top, bottom) = (LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
    let _ = writeln!(
        svg,
        r##"<path d="M{left},{top} V{bottom} H{right}" fill="none" stroke="#333"/>"##
    );
    for &tick in &x.ticks {
        let px = x.to_px_x(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{bottom}" x2="{px:.1}" y2="{:.1}" stroke="#333"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            bottom + 5.0,
            bottom + 18.0,
            tick_label(tick)
        );
    }
    for &tick in &y.ticks {
        let py = y.to_px_y(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{py:.1}" x2="{right}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left - 5.0,
            left - 8.0,
            py + 4.0,
            tick_label(tick)
        );
    }
}

fn legend_entry(svg: &mut String, index: usize, color: &str, name: &str) {
    let x = WIDTH - RIGHT + 15.0;
    let y = TOP + 10.0 + index as f64 * 20.0;
    let _ = writeln!(
        svg,
        r#"<rect x="{x}" y="{:.1}" width="14" height="4" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
        y - 2.0,
        x + 20.0,
        y + 4.0,
        escape(name)
    );
}

/// `0.5`, `120`, `1.5e12`: short, exact enough for a tick.
fn tick_label(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e6).contains(&magnitude) {
        format!("{value:.1e}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(36.0), 50.0);
        let axis = Axis::fit(&[7.1, 9.06], false);
        assert_eq!((axis.min, axis.max), (7.0, 9.5));
        assert_eq!(tick_label(7.5), "7.5");
        assert_eq!(tick_label(1.5e12), "1.5e12");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn line_chart_has_one_polyline_per_series_and_escapes_text() {
        let series = vec![
            Series {
                name: "a<b".into(),
                points: vec![(0.0, 9.0), (10.0, 8.0), (20.0, 7.5)],
            },
            Series {
                name: "c & d".into(),
                points: vec![(0.0, 9.0)],
            },
        ];
        let svg = line_chart("loss", "seconds", "validation loss", &series);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b") && svg.contains("c &amp; d"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
