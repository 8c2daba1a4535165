//! `slowscan replay --plots DIR`: the paper's figures for a capture, as SVG
//! and PNG, and the numbers behind them in `plots.json`.
//!
//! * `hosts-by-ports-used`: the paper's Fig. 1, hosts by the number of
//!   distinct destination ports their connection attempts (R1) used —
//!   counted here from the records, every attempt whatever its outcome;
//! * `hosts-by-failed-pairs`: the paper's Fig. 6 in this project's unit, hosts
//!   by the number of distinct failed (destination IP, port) pairs over the
//!   whole replay (the report's `failed_pairs`, what R6 counts; the paper
//!   counted ports);
//! * `alerts-timeline`: alerts of each detector over time (cumulative).
//!
//! Both histograms use the same power-of-two buckets (1, 2, 3–4, 5–8 …
//! 513–1024, more) on a logarithmic host axis. Memory stays bounded: at most
//! [`PORTS_CAP`] ports are kept per source and [`MAX_SOURCES`] sources.
use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::Path,
};

use anyhow::Context;
use plotters::{
    coord::{Shift, ranged1d::SegmentValue},
    prelude::*,
    style::{
        FontStyle, register_font,
        text_anchor::{HPos, Pos, VPos},
    },
};
use serde::Serialize;
use slowscan::engine::{DetectorConfig, Report, ip_from, rfc3339};
use slowscan_common::{PacketRecord, tcp};

/// Ports kept per source: one more than the last bucket's lower bound.
pub const PORTS_CAP: usize = 1025;
/// Sources tracked for Fig. 1; later ones are counted as not plotted.
pub const MAX_SOURCES: usize = 1 << 20;
/// Alert times kept per detector for the timeline.
const MAX_ALERT_TIMES: usize = 1 << 20;

/// Bucket upper bounds: 1, 2, 4 … 1024, then everything above.
const BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const BUCKETS: usize = BOUNDS.len() + 1;

/// The bucket of a count ≥ 1.
pub fn bucket(n: u64) -> usize {
    BOUNDS.iter().position(|&b| n <= b).unwrap_or(BOUNDS.len())
}

/// `(min, max)` of a bucket; `max` is `None` for the last.
fn bucket_range(i: usize) -> (u64, Option<u64>) {
    let min = if i == 0 { 1 } else { BOUNDS[i - 1] + 1 };
    (min, BOUNDS.get(i).copied())
}

fn bucket_label(i: usize) -> String {
    match bucket_range(i) {
        (min, Some(max)) if min == max => min.to_string(),
        (min, Some(max)) => format!("{min}–{max}"),
        (min, None) => format!("≥{min}"),
    }
}

enum Ports {
    Some(HashSet<u16>),
    /// More than [`PORTS_CAP`] − 1 distinct ports: the last bucket.
    Many,
}

/// Distinct destination ports of each source's connection attempts (R1),
/// for Fig. 1.
#[derive(Default)]
pub struct PortsUsed {
    sources: HashMap<IpAddr, Ports>,
    not_counted: u64,
}

impl PortsUsed {
    pub fn record(&mut self, rec: &PacketRecord) {
        if !tcp::is_attempt(rec.tcp_flags) {
            return;
        }
        let src = ip_from(rec.family, &rec.src_addr);
        let full = self.sources.len() >= MAX_SOURCES;
        let ports = match self.sources.get_mut(&src) {
            Some(p) => p,
            None if full => {
                self.not_counted += 1;
                return;
            }
            None => self
                .sources
                .entry(src)
                .or_insert(Ports::Some(HashSet::new())),
        };
        if let Ports::Some(set) = ports {
            set.insert(rec.dst_port);
            if set.len() >= PORTS_CAP {
                *ports = Ports::Many;
            }
        }
    }

    fn histogram(&self) -> [u64; BUCKETS] {
        let mut h = [0; BUCKETS];
        for p in self.sources.values() {
            let n = match p {
                Ports::Some(set) => set.len() as u64,
                Ports::Many => PORTS_CAP as u64,
            };
            h[bucket(n)] += 1;
        }
        h
    }
}

/// Alert times (wall clock, ns) per detector, for the timeline.
pub struct AlertTimes(Vec<Vec<i64>>);

impl AlertTimes {
    pub fn new(detectors: usize) -> Self {
        AlertTimes(vec![Vec::new(); detectors])
    }

    pub fn record(&mut self, detector: usize, timestamp_ns: i64) {
        let v = &mut self.0[detector];
        if v.len() < MAX_ALERT_TIMES {
            v.push(timestamp_ns);
        }
    }
}

#[derive(Serialize)]
struct BucketJson {
    label: String,
    min: u64,
    /// `null` for the last bucket (no upper bound).
    max: Option<u64>,
    hosts: u64,
}

#[derive(Serialize)]
struct HistogramJson {
    /// What a host is counted by.
    counts: &'static str,
    hosts: u64,
    buckets: Vec<BucketJson>,
}

#[derive(Serialize)]
struct TimelineJson {
    detector: String,
    alerts: u64,
    first: Option<String>,
    last: Option<String>,
}

#[derive(Serialize)]
struct PlotsJson {
    /// Fig. 1.
    hosts_by_ports_used: HistogramJson,
    /// Sources past the cap of tracked sources, left out of Fig. 1.
    sources_not_counted: u64,
    /// Fig. 6 (pairs).
    hosts_by_failed_pairs: HistogramJson,
    alerts_timeline: Vec<TimelineJson>,
    files: Vec<String>,
}

fn histogram_json(counts: &'static str, h: &[u64; BUCKETS]) -> HistogramJson {
    HistogramJson {
        counts,
        hosts: h.iter().sum(),
        buckets: (0..BUCKETS)
            .map(|i| {
                let (min, max) = bucket_range(i);
                BucketJson {
                    label: bucket_label(i),
                    min,
                    max,
                    hosts: h[i],
                }
            })
            .collect(),
    }
}

/// The font every figure's text uses, embedded (assets/README.md).
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

fn register() -> anyhow::Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    anyhow::ensure!(ok, "the embedded font could not be loaded");
    Ok(())
}

const SIZE: (u32, u32) = (960, 600);

/// Draws one figure twice, as `NAME.svg` and `NAME.png`, with the same code:
/// `$area` is bound to each backend's drawing area in turn.
macro_rules! svg_and_png {
    ($dir:expr, $files:expr, $name:expr, |$area:ident| $draw:expr) => {{
        let svg = $dir.join(format!("{}.svg", $name));
        {
            let $area = SVGBackend::new(&svg, SIZE).into_drawing_area();
            $draw.with_context(|| format!("drawing {}", svg.display()))?;
            $area
                .present()
                .map_err(plot_err)
                .with_context(|| format!("writing {}", svg.display()))?;
        }
        let png = $dir.join(format!("{}.png", $name));
        {
            let $area = BitMapBackend::new(&png, SIZE).into_drawing_area();
            $draw.with_context(|| format!("drawing {}", png.display()))?;
            $area
                .present()
                .map_err(plot_err)
                .with_context(|| format!("writing {}", png.display()))?;
        }
        $files.push(format!("{}.svg", $name));
        $files.push(format!("{}.png", $name));
    }};
}

/// Writes the figures (SVG and PNG) and plots.json into `dir`.
pub fn write(
    dir: &Path,
    ports: &PortsUsed,
    totals: &Report,
    detectors: &[DetectorConfig],
    alerts: &AlertTimes,
    capture_span_ns: Option<(i64, i64)>,
) -> anyhow::Result<()> {
    register()?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the plots directory {}", dir.display()))?;
    let fig1 = ports.histogram();
    let mut fig6 = [0u64; BUCKETS];
    for t in totals.sources.values().filter(|t| t.failed_pairs > 0) {
        fig6[bucket(t.failed_pairs)] += 1;
    }
    let names: Vec<String> = detectors.iter().map(|d| d.name()).collect();
    let mut files: Vec<String> = Vec::new();
    svg_and_png!(dir, files, "hosts-by-ports-used", |area| histogram(
        &area,
        "Hosts by distinct destination ports used (the paper's Fig. 1)",
        "distinct destination ports of a host's connection attempts",
        &fig1,
    ));
    svg_and_png!(dir, files, "hosts-by-failed-pairs", |area| histogram(
        &area,
        "Hosts by distinct failed (host, port) pairs (the paper's Fig. 6)",
        "distinct failed (destination IP, port) pairs of a host over the replay",
        &fig6,
    ));
    svg_and_png!(dir, files, "alerts-timeline", |area| timeline(
        &area,
        &names,
        &alerts.0,
        capture_span_ns
    ));
    let json = PlotsJson {
        hosts_by_ports_used: histogram_json("distinct destination ports of the attempts", &fig1),
        sources_not_counted: ports.not_counted,
        hosts_by_failed_pairs: histogram_json(
            "distinct failed (destination IP, port) pairs",
            &fig6,
        ),
        alerts_timeline: names
            .iter()
            .zip(&alerts.0)
            .map(|(n, t)| TimelineJson {
                detector: n.clone(),
                alerts: t.len() as u64,
                first: t.iter().min().map(|&ns| rfc3339::format(ns)),
                last: t.iter().max().map(|&ns| rfc3339::format(ns)),
            })
            .collect(),
        files,
    };
    let mut text = serde_json::to_string_pretty(&json).expect("plots serialise");
    text.push('\n');
    let path = dir.join("plots.json");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

/// Hosts per bucket, bars on a logarithmic axis, each bar's count above it.
fn histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    h: &[u64; BUCKETS],
) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(plot_err)?;
    let max = h.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0u32..BUCKETS as u32 - 1).into_segmented(),
            (0.5f64..max * 4.0).log_scale(),
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc("hosts (logarithmic)")
        .x_labels(BUCKETS)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bucket_label(*i as usize),
            _ => String::new(),
        })
        .y_label_formatter(&|y| {
            if *y < 1.0 {
                String::new()
            } else {
                format!("{}", y.round() as u64)
            }
        })
        .axis_desc_style((FAMILY, 16))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(plot_err)?;
    let bars = || {
        h.iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (i as u32, n as f64))
    };
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(31, 119, 180).filled())
                .margin(8)
                .baseline(0.5)
                .data(bars()),
        )
        .map_err(plot_err)?;
    let above = (FAMILY, 14)
        .into_font()
        .into_text_style(area)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(bars().map(|(i, n)| {
            Text::new(
                format!("{n}"),
                (SegmentValue::CenterOf(i), n * 1.08),
                &above,
            )
        }))
        .map_err(plot_err)?;
    Ok(())
}

/// Cumulative alerts of each detector against hours since the capture's
/// first packet (to its last), one step line and a dot per alert.
fn timeline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[String],
    times: &[Vec<i64>],
    span_ns: Option<(i64, i64)>,
) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(plot_err)?;
    let t0 = span_ns
        .map(|s| s.0)
        .or_else(|| times.iter().flatten().copied().min())
        .unwrap_or(0);
    let hours = move |ns: i64| (ns - t0) as f64 / 3.6e12;
    // To the last packet (or alert), at least an hour.
    let end = times
        .iter()
        .flatten()
        .copied()
        .chain(span_ns.map(|s| s.1))
        .map(hours)
        .fold(1.0f64, f64::max)
        * 1.02;
    let most = times.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let top = most as f64 * 1.15 + 0.5;
    let since = rfc3339::format(t0);
    let mut chart = ChartBuilder::on(area)
        .caption("Alerts per detector over time (cumulative)", (FAMILY, 22))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("hours since {}Z (the first packet)", &since[..19]))
        .y_desc("alerts")
        .y_labels(most.min(10) + 1)
        .y_label_formatter(&|y| {
            if y.fract() == 0.0 {
                format!("{y:.0}")
            } else {
                String::new()
            }
        })
        .axis_desc_style((FAMILY, 16))
        .label_style((FAMILY, 13))
        .draw()
        .map_err(plot_err)?;
    for (k, (name, ts)) in names.iter().zip(times).enumerate() {
        let mut ts: Vec<f64> = ts.iter().map(|&t| hours(t)).collect();
        ts.sort_by(f64::total_cmp);
        let color = Palette99::pick(k).to_rgba();
        let mut steps = vec![(0.0, 0.0)];
        for (i, &t) in ts.iter().enumerate() {
            steps.push((t, i as f64));
            steps.push((t, (i + 1) as f64));
        }
        steps.push((end, ts.len() as f64));
        chart
            .draw_series(LineSeries::new(steps, color.stroke_width(2)))
            .map_err(plot_err)?
            .label(match ts.len() {
                1 => format!("{name}: 1 alert"),
                n => format!("{name}: {n} alerts"),
            })
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                ts.iter()
                    .enumerate()
                    .map(|(i, &t)| Circle::new((t, (i + 1) as f64), 3, color.filled())),
            )
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FAMILY, 14))
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        let labels: Vec<String> = (0..BUCKETS).map(bucket_label).collect();
        assert_eq!(labels[..4], ["1", "2", "3–4", "5–8"]);
        assert_eq!(labels[BUCKETS - 1], "≥1025");
        for (n, b) in [
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (1024, 10),
            (1025, 11),
            (65535, 11),
        ] {
            assert_eq!(bucket(n), b, "{n}");
            let (min, max) = bucket_range(b);
            assert!(
                n >= min && max.is_none_or(|m| n <= m),
                "{n} in {min}..{max:?}"
            );
        }
    }
}
