//! `slowscan run --iface IF …`: the live sensor (see `slowscan::daemon`).
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, str::FromStr, time::Duration};

use clap::{Args as ClapArgs, ValueEnum};
use slowscan::{
    daemon::{self, DaemonConfig},
    engine::{DetectorConfig, EngineConfig, LearnConfig, SECOND_NS, Whitelist, Window},
    kernel::AttachMode,
};

#[derive(ClapArgs)]
pub struct Args {
    /// Interface to watch (a mirror/SPAN port, or a host's own interface).
    #[arg(long)]
    iface: String,
    /// R6.1 time window in seconds, or `none` (never cleared).
    #[arg(long, default_value = "3600", value_name = "SECONDS|none")]
    window: WindowLen,
    /// R6.1: `tumbling` (the paper's, cleared when the window elapses) or `sliding`.
    #[arg(long, value_enum, default_value_t = WindowMode::Tumbling)]
    window_mode: WindowMode,
    /// R6: alert when a source's distinct failed (host, port) pairs exceed this.
    #[arg(long, default_value_t = 9)]
    threshold: u32,
    /// R5.1: an attempt not Established this long after its SYN failed (seconds).
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    handshake_timeout: HumanDuration,
    /// Whitelist file (R4, `slowscan learn` output), loaded into the kernel map at start.
    #[arg(long, value_name = "FILE")]
    whitelist: Option<PathBuf>,
    /// Dedicated mirror/SPAN port: drop every frame after inspection.
    #[arg(long)]
    mirror: bool,
    /// Attach in generic (skb) XDP mode instead of native.
    #[arg(long)]
    generic: bool,
    /// Alerts as JSON lines: `-` for stdout, or a file (appended, each alert flushed to disk).
    #[arg(long, default_value = "-", value_name = "PATH|-")]
    alerts: PathBuf,
    /// Prometheus text endpoint address, or `off`.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR|off")]
    metrics: MetricsAddr,
    /// Learn the whitelist for this long first (R4.1), load it into the kernel, then detect.
    #[arg(long, value_name = "DURATION")]
    learn_for: Option<HumanDuration>,
    /// With --learn-for: also save the learned whitelist to this file.
    #[arg(long, value_name = "FILE", requires = "learn_for")]
    learn_out: Option<PathBuf>,
    /// Ports ≥ 1024 eligible for learning besides 1–1023 (R4.3), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = LearnConfig::default().eligible_high_ports)]
    eligible_high_ports: Vec<u16>,
    /// Log a one-line summary to stderr this often (e.g. 60, 5m).
    #[arg(long, value_name = "DURATION")]
    summary_every: Option<HumanDuration>,
    /// Keep no per-source totals for the final summary (they grow with the
    /// number of sources seen, without a cap: use this on busy networks).
    #[arg(long)]
    no_source_totals: bool,
    /// Stop by itself after this long (e.g. 90s, 2h).
    #[arg(long = "for", value_name = "DURATION")]
    run_for: Option<HumanDuration>,
}

#[derive(Clone, Copy, ValueEnum)]
enum WindowMode {
    Tumbling,
    Sliding,
}

/// Seconds, or `none`.
#[derive(Clone, Copy)]
struct WindowLen(Option<u64>);

impl FromStr for WindowLen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Self(None));
        }
        let d: HumanDuration = s.parse()?;
        if d.0.is_zero() {
            return Err("a window must be longer than 0 s (or `none`)".into());
        }
        Ok(Self(Some(d.0.as_secs())))
    }
}

/// `90`, `90s`, `500ms`, `5m`, `2h`, `1d` (a bare number is seconds).
#[derive(Clone, Copy, Debug)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| {
            format!("`{s}` is not a duration: write e.g. 90, 90s, 500ms, 5m, 2h or 1d")
        })?;
        let mul = match unit {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
                ));
            }
        };
        Ok(Self(Duration::from_secs_f64(n * mul)))
    }
}

#[derive(Clone, Copy)]
struct MetricsAddr(Option<SocketAddr>);

impl FromStr for MetricsAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        s.parse()
            .map(|a| Self(Some(a)))
            .map_err(|_| format!("`{s}` is not ADDR:PORT (e.g. 127.0.0.1:9464) or `off`"))
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let window = match (a.window.0, a.window_mode) {
        (None, _) => Window::None,
        (Some(s), WindowMode::Tumbling) => Window::Tumbling(s * SECOND_NS),
        (Some(s), WindowMode::Sliding) => Window::Sliding(s * SECOND_NS),
    };
    let whitelist = match &a.whitelist {
        Some(p) => Some(Whitelist::load(p)?),
        None => None,
    };
    let timeout = a.handshake_timeout.0;
    anyhow::ensure!(
        !timeout.is_zero(),
        "--handshake-timeout must be longer than 0 s"
    );
    let cfg = DaemonConfig {
        iface: a.iface,
        attach: if a.generic {
            AttachMode::Generic
        } else {
            AttachMode::Auto
        },
        mirror: a.mirror,
        engine: EngineConfig {
            handshake_timeout_ns: timeout.as_nanos() as u64,
            detectors: vec![DetectorConfig {
                window,
                threshold: a.threshold,
            }],
            whitelist,
            report: !a.no_source_totals,
            ..EngineConfig::default()
        },
        alerts: a.alerts,
        metrics: a.metrics.0,
        learn_for: a.learn_for.map(|d| d.0),
        learn: LearnConfig {
            eligible_high_ports: a.eligible_high_ports,
        },
        learn_out: a.learn_out,
        summary_every: a.summary_every.map(|d| d.0),
        run_for: a.run_for.map(|d| d.0),
        sweep_every: Duration::from_secs(5).min(timeout.max(Duration::from_secs(1))),
    };
    let summary = daemon::run(cfg)?;
    eprint!("{summary}");
    Ok(ExitCode::SUCCESS)
}
