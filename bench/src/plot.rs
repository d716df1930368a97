//! The cost curve as an SVG: one column per sweep (batch size,
//! connections, table size), throughput above and p99 below, uplink beside
//! sql-limit. Written by hand: a few lines and labels need no plotting
//! library.

use std::fmt::Write;

use crate::curve::Point;

const PANEL_W: f64 = 280.0;
const PANEL_H: f64 = 170.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 60.0;
const GAP_X: f64 = 60.0;
const GAP_Y: f64 = 70.0;

/// (sweep, column title, label of an x value)
const SWEEPS: [(&str, &str); 3] = [
    ("batch_size", "entries per batch"),
    ("connections", "connections"),
    ("table_rows", "rows in the table"),
];
/// (target, colour, dash pattern)
const SERIES: [(&str, &str, &str); 2] =
    [("uplink", "#1f77b4", ""), ("sql-limit", "#d95f02", "6 4")];

pub fn svg(points: &[Point], title: &str) -> String {
    let width = LEFT + 3.0 * PANEL_W + 2.0 * GAP_X + 30.0;
    let height = TOP + 2.0 * PANEL_H + GAP_Y + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, (target, colour, dash)) in SERIES.iter().enumerate() {
        let x = LEFT + i as f64 * 140.0;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="38" x2="{}" y2="38" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}"/><text x="{}" y="42">{target}</text>"#,
            x + 30.0,
            x + 36.0
        );
    }
    for (column, (sweep, label)) in SWEEPS.iter().enumerate() {
        let of_sweep: Vec<&Point> = points.iter().filter(|p| p.sweep == *sweep).collect();
        let mut xs: Vec<u64> = of_sweep.iter().map(|p| p.x).collect();
        xs.sort_unstable();
        xs.dedup();
        let left = LEFT + column as f64 * (PANEL_W + GAP_X);
        for (row, (metric, value)) in [
            ("entries/s", (|p: &Point| p.ops_per_s) as fn(&Point) -> f64),
            ("p99 latency, ms", |p: &Point| p.p99_ms),
        ]
        .into_iter()
        .enumerate()
        {
            let top = TOP + row as f64 * (PANEL_H + GAP_Y);
            let max = of_sweep.iter().map(|p| value(p)).fold(0.0, f64::max);
            let scale = nice_ceiling(max);
            panel(&mut out, left, top, &xs, scale, metric, label, column == 0);
            for (target, colour, dash) in SERIES {
                let line: Vec<(f64, f64)> = xs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, x)| {
                        let p = of_sweep.iter().find(|p| p.x == *x && p.target == target)?;
                        Some((
                            x_at(left, i, xs.len()),
                            top + PANEL_H * (1.0 - value(p) / scale),
                        ))
                    })
                    .collect();
                series(&mut out, &line, colour, dash);
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// Axes, grid and labels of one panel.
#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    left: f64,
    top: f64,
    xs: &[u64],
    scale: f64,
    metric: &str,
    x_label: &str,
    y_label: bool,
) {
    let bottom = top + PANEL_H;
    for tick in 0..=4 {
        let y = bottom - PANEL_H * f64::from(tick) / 4.0;
        let value = scale * f64::from(tick) / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left + PANEL_W,
            left - 6.0,
            y + 4.0,
            short(value)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>"##
    );
    for (i, x) in xs.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x_at(left, i, xs.len()),
            bottom + 16.0,
            short(*x as f64)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{x_label}</text>"#,
        left + PANEL_W / 2.0,
        bottom + 34.0
    );
    if y_label {
        let (cx, cy) = (left - 52.0, top + PANEL_H / 2.0);
        let _ = writeln!(
            out,
            r#"<text x="{cx}" y="{cy}" text-anchor="middle" transform="rotate(-90 {cx} {cy})">{metric}</text>"#
        );
    } else {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="10" fill="#666">{metric}</text>"##,
            left + 4.0,
            top + 12.0
        );
    }
}

fn series(out: &mut String, line: &[(f64, f64)], colour: &str, dash: &str) {
    if line.is_empty() {
        return;
    }
    let path: Vec<String> = line.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}"/>"#,
        path.join(" ")
    );
    for (x, y) in line {
        let _ = writeln!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"/>"#
        );
    }
}

/// Evenly spaced x positions: the swept values grow by a factor each.
fn x_at(left: f64, i: usize, n: usize) -> f64 {
    let step = PANEL_W / n.max(1) as f64;
    left + step * (i as f64 + 0.5)
}

/// The smallest 1, 2 or 5 × 10^k at or above `max`.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= max)
        .unwrap_or(10.0 * magnitude)
}

/// 1 200 000 as 1.2M, 25 000 as 25k; 0 for an empty table.
fn short(x: f64) -> String {
    let (value, unit) = if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{unit}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_has_a_line_per_target_and_panel_and_labels_the_values() {
        let mut points = Vec::new();
        for (sweep, xs) in [
            ("batch_size", vec![1, 10, 100, 1000]),
            ("connections", vec![1, 4, 16, 64]),
            ("table_rows", vec![0, 1_000_000]),
        ] {
            for x in xs {
                for target in ["uplink", "sql-limit"] {
                    points.push(Point {
                        sweep,
                        x,
                        target,
                        ops_per_s: 1000.0 + x as f64,
                        p99_ms: 2.5,
                    });
                }
            }
        }
        let svg = svg(&points, "put batches <postgres>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3 * 2 * 2);
        assert!(svg.contains(">1M<") && svg.contains(">64<"), "{svg}");
        assert!(svg.contains("&lt;postgres&gt;"));
        assert_eq!(nice_ceiling(83_000.0), 100_000.0);
        assert_eq!(short(1_000_000.0), "1M");
        assert_eq!(short(25_000.0), "25k");
    }
}
