//! Measurements: a fixed-size log-linear latency histogram (about 3% precision,
//! no allocation when recording), per-second rows, the CSV and an SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

const SUB: u64 = 32;
const BUCKETS: usize = 32 + 59 * 32;

/// Latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    pub total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros());
    let sub = (v >> (e - 5)) & (SUB - 1);
    (32 + (e - 5) * SUB + sub) as usize
}

fn bucket_value(i: usize) -> u64 {
    if i < 32 {
        return i as u64;
    }
    let e = (i as u64 - 32) / SUB + 5;
    let sub = (i as u64 - 32) % SUB;
    (SUB + sub) << (e - 5)
}

impl Histogram {
    pub fn record(&mut self, us: u64) {
        self.counts[bucket(us).min(BUCKETS - 1)] += 1;
        self.total += 1;
    }
    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let want = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return bucket_value(i);
            }
        }
        bucket_value(BUCKETS - 1)
    }
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
    }
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

/// Counters of one interval (one second, or the whole run).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub started: u64,
    pub sent: u64,
    pub retransmits: u64,
    pub received: u64,
    pub leases: u64,
    pub done: u64,
    pub drops: u64,
    pub nak: u64,
    pub unexpected: u64,
    pub bad_sent: u64,
    pub bad_answered: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.started += o.started;
        self.sent += o.sent;
        self.retransmits += o.retransmits;
        self.received += o.received;
        self.leases += o.leases;
        self.done += o.done;
        self.drops += o.drops;
        self.nak += o.nak;
        self.unexpected += o.unexpected;
        self.bad_sent += o.bad_sent;
        self.bad_answered += o.bad_answered;
    }
}

/// One row of the per-second series.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub t: f64,
    pub c: Counters,
    pub p50_us: u64,
    pub p99_us: u64,
}

pub fn write_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let mut s = String::from("t_s,started,sent,retransmits,received,leases,done,drops,nak,unexpected,bad_sent,bad_answered,p50_us,p99_us\n");
    for r in rows {
        let c = &r.c;
        writeln!(
            s,
            "{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.t,
            c.started,
            c.sent,
            c.retransmits,
            c.received,
            c.leases,
            c.done,
            c.drops,
            c.nak,
            c.unexpected,
            c.bad_sent,
            c.bad_answered,
            r.p50_us,
            r.p99_us
        )?;
    }
    std::fs::write(path, s)?;
    Ok(())
}

/// A line chart with one or more series sharing an x axis; written by hand
/// (a few dozen lines of SVG do not need a plotting crate).
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<(&'a str, Vec<(f64, f64)>)>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

impl Chart<'_> {
    /// Render into an SVG group at vertical offset `y0` (each chart is 300 px tall).
    fn render(&self, s: &mut String, y0: f64) {
        let (w, h, l, r, t, b) = (800.0, 300.0, 70.0, 20.0, 30.0, 40.0);
        let pts = self.series.iter().flat_map(|(_, v)| v.iter());
        let xmax = pts.clone().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9);
        let ymax = nice(pts.map(|p| p.1).fold(0.0f64, f64::max));
        let px = |x: f64| l + (x / xmax) * (w - l - r);
        let py = |y: f64| y0 + t + (1.0 - y / ymax) * (h - t - b);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">{}</text>"#,
            w / 2.0,
            y0 + 18.0,
            esc(self.title)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{l}" y="{}" width="{}" height="{}" fill="none" stroke="gray"/>"#,
            y0 + t,
            w - l - r,
            h - t - b
        );
        for k in 0..=4 {
            let y = ymax * f64::from(k) / 4.0;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>"#,
                l - 4.0,
                py(y) + 3.0,
                fmt_num(y)
            );
            let x = xmax * f64::from(k) / 4.0;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
                px(x),
                y0 + h - b + 14.0,
                fmt_num(x)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            w / 2.0,
            y0 + h - 6.0,
            esc(self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="14" y="{}" font-size="11" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
            y0 + h / 2.0,
            y0 + h / 2.0,
            esc(self.y_label)
        );
        for (k, (name, v)) in self.series.iter().enumerate() {
            let c = COLORS[k % COLORS.len()];
            let pts: Vec<String> = v
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{}"/>"#,
                pts.join(" ")
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-size="11" fill="{c}">{}</text>"#,
                l + 8.0,
                y0 + t + 14.0 + 13.0 * k as f64,
                esc(name)
            );
        }
    }
}

/// Write charts stacked vertically into one SVG file.
pub fn write_svg(path: &Path, charts: &[Chart]) -> Result<()> {
    let height = 300.0 * charts.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="800" height="{height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    for (k, c) in charts.iter().enumerate() {
        c.render(&mut s, 300.0 * k as f64);
    }
    s.push_str("</svg>\n");
    std::fs::write(path, s)?;
    Ok(())
}

/// The per-second rate and latency charts of one run.
pub fn run_charts(rows: &[Row]) -> Vec<Chart<'static>> {
    vec![
        Chart {
            title: "leases per second",
            x_label: "time (s)",
            y_label: "leases/s",
            series: vec![
                (
                    "leases/s",
                    rows.iter().map(|r| (r.t, r.c.leases as f64)).collect(),
                ),
                (
                    "drops/s",
                    rows.iter().map(|r| (r.t, r.c.drops as f64)).collect(),
                ),
            ],
        },
        Chart {
            title: "exchange latency",
            x_label: "time (s)",
            y_label: "ms",
            series: vec![
                (
                    "p50",
                    rows.iter()
                        .map(|r| (r.t, r.p50_us as f64 / 1000.0))
                        .collect(),
                ),
                (
                    "p99",
                    rows.iter()
                        .map(|r| (r.t, r.p99_us as f64 / 1000.0))
                        .collect(),
                ),
            ],
        },
    ]
}

fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_num(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quantiles must land within the histogram's stated precision (1/32).
    #[test]
    fn histogram_quantiles_within_precision() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - want).abs() / want < 1.0 / 16.0,
                "q{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.quantile(0.0), 1);
    }
}
