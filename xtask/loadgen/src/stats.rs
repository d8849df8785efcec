//! Measurements: a fixed-size log-linear latency histogram (about 3% precision,
//! no allocation when recording), per-second rows, the CSV and an SVG plot
//! (plotters).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

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

/// A line chart with one or more series sharing an x axis, drawn by
/// plotters (its SVG backend, no font files: the viewer renders the text).
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<(&'a str, Vec<(f64, f64)>)>,
}

/// Each chart's size in the stacked SVG.
const CHART_PX: (u32, u32) = (800, 300);

impl Chart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let pts = || self.series.iter().flat_map(|(_, v)| v.iter());
        let xmax = pts().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9);
        let ymax = pts().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9) * 1.05;
        let mut c = ChartBuilder::on(area)
            .caption(self.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(plot_error)?;
        c.configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_labels(6)
            .y_labels(5)
            .draw()
            .map_err(plot_error)?;
        for (k, (name, v)) in self.series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            c.draw_series(LineSeries::new(v.iter().copied(), color.stroke_width(2)))
                .map_err(plot_error)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(plot_error)?;
        Ok(())
    }
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Write charts stacked vertically into one SVG file.
pub fn write_svg(path: &Path, charts: &[Chart]) -> Result<()> {
    let height = CHART_PX.1 * charts.len().max(1) as u32;
    let root = SVGBackend::new(path, (CHART_PX.0, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    for (chart, area) in charts
        .iter()
        .zip(root.split_evenly((charts.len().max(1), 1)))
    {
        chart.draw(&area)?;
    }
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("writing {}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Quantiles must land within the histogram's stated precision (1/32).
    #[test]
    fn charts_are_written_with_every_title_and_series() {
        let dir = std::env::temp_dir().join(format!("loadgen-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.svg");
        let rows: Vec<Row> = (0..5u32)
            .map(|i| Row {
                t: f64::from(i),
                c: Counters {
                    leases: u64::from(i) * 1000,
                    ..Counters::default()
                },
                p50_us: 100 + u64::from(i),
                p99_us: 900,
            })
            .collect();
        write_svg(&path, &run_charts(&rows)).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim()))
            .collect();
        for (text, times) in [
            ("leases per second", 1),
            ("exchange latency", 1),
            // The y axis of the first chart and its first series' legend.
            ("leases/s", 2),
            ("drops/s", 1),
            ("p50", 1),
            ("p99", 1),
            ("time (s)", 2),
        ] {
            let n = texts.iter().filter(|t| **t == text).count();
            assert_eq!(n, times, "{text:?} in {texts:?}");
        }
    }

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
