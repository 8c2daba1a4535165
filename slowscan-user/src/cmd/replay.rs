//! `slowscan replay FILE...`: the engine over capture files.
//!
//! The files (pcap or pcapng, Ethernet, Linux cooked or raw IP, gzipped or
//! not) are read in the order given as one continuous stream, through the
//! same frame parser and engine as the live sensor, so the same traffic gives
//! the same alerts. Alerts are JSON lines (R8) on `--alerts`; `--report`
//! writes a JSON summary; `--sweep` runs the paper's windows × thresholds
//! (Table 4) in one pass; `--plots DIR` draws the paper's Fig. 1 and Fig. 6
//! and an alert timeline (see `plots.rs`). `--config FILE` takes the
//! detection options from a TOML file, e.g. a sensor's (`config.rs`).
//!
//! Damage: when a capture turns out truncated or corrupt, what was decided
//! before the damage is still delivered (alerts written, report written with
//! `"complete": false`), then the command fails with the file and the byte
//! offset. Attempts still pending at that point stay undecided (their
//! follow-ups may lie past the damage). An empty capture is an empty result.
use std::{
    collections::HashSet,
    fs::File,
    io::{self, BufWriter, IsTerminal, Write},
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{ArgMatches, Args as ClapArgs, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use slowscan::{
    capture::{FileSummary, Input, ReadObserver, check_inputs, feed::Quiet, feed_engine},
    engine::{Alert, DetectorConfig, Engine, EngineStats, Report, rfc3339},
    frame::FrameCounters,
};

use super::{
    config,
    options::{EngineArgs, HumanDuration, WindowLen, WindowMode},
    plots,
};

/// The paper's Table 4: windows 600 s, 3600 s, none …
const SWEEP_WINDOWS: [Option<u64>; 3] = [Some(600), Some(3600), None];
/// … × thresholds 4–9 (R6.2).
const SWEEP_THRESHOLDS: [u32; 6] = [4, 5, 6, 7, 8, 9];

#[derive(ClapArgs)]
pub struct Args {
    /// Capture files: pcap or pcapng (Ethernet, Linux cooked, raw IP, PPP,
    /// Cisco HDLC, NFLOG, IP over InfiniBand, 802.11, radiotap, BSD
    /// loopback), gzipped or not. Read in the order given, as one continuous
    /// stream. Or Zeek conn logs (TSV or JSON, gzipped or not), Zeek log
    /// directories or globs, in any order.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// TOML file of detection options under their flag names, e.g. a
    /// sensor's `run --config` file (its other keys are skipped); flags
    /// override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Alerts as JSON lines: `-` for stdout (the default, except with
    /// --sweep: none unless asked for), or a file (created or truncated).
    #[arg(long, value_name = "PATH|-")]
    alerts: Option<PathBuf>,
    /// Write a JSON summary here: totals (attempts, established, failed,
    /// untracked), per-source totals, frame counters, engine counters and
    /// per-detector results.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Run every (window, threshold) of the paper's Table 4 in one pass and
    /// print the matrix of alerts (distinct alerting sources) on stdout.
    #[arg(long, conflicts_with_all = ["window", "threshold", "detectors"])]
    sweep: bool,
    /// With --sweep: the windows (default 600,3600,none).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SECONDS|none,…",
        allow_hyphen_values = true
    )]
    sweep_windows: Vec<WindowLen>,
    /// With --sweep: the thresholds (default 4,5,6,7,8,9).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "N,…",
        allow_negative_numbers = true
    )]
    sweep_thresholds: Vec<u32>,
    /// With --sweep: file of known scanner addresses (one per line, `#`
    /// comments); adds the false-positive rate FP/(FP+TN) per cell.
    #[arg(long, value_name = "FILE")]
    ground_truth: Option<PathBuf>,
    /// Write figures here (created if missing), SVG and PNG: hosts by
    /// distinct destination ports used (the paper's Fig. 1), hosts by
    /// distinct failed pairs (Fig. 6), alerts per detector over time; and
    /// their numbers in plots.json.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// The files hold NetFlow v5/v9 or IPFIX export datagrams captured on
    /// the wire (UDP to a collector), not the traffic itself (docs/flows.md).
    #[arg(long, conflicts_with_all = ["sweep", "plots"])]
    flow_exports: bool,
    /// Zeek conn log lines and flow records are counted in start order when
    /// at most this late; later ones are counted as late, out of order
    /// [default: 6h for conn logs; with --flow-exports the whole input is
    /// sorted].
    #[arg(long, value_name = "DURATION")]
    max_lateness: Option<HumanDuration>,
    /// Write the engine state here at the end (what `run --state` reads),
    /// so a sensor starts with this history.
    #[arg(long, value_name = "FILE")]
    state_out: Option<PathBuf>,
}

/// The detection options alone, to parse them merged with a config file.
#[derive(Parser)]
#[command(name = "slowscan replay")]
struct EngineOnly {
    #[command(flatten)]
    engine: EngineArgs,
}

/// The detection options of `--config` that were not given as flags
/// (`matches`: the `replay` subcommand's); a `run` file's other keys are
/// skipped.
fn with_config(mut a: Args, matches: Option<&ArgMatches>) -> anyhow::Result<Args> {
    let (Some(path), Some(matches)) = (a.config.clone(), matches) else {
        return Ok(a);
    };
    a.engine = merge_engine_config(&path, &config::read(&path)?, matches)?;
    Ok(a)
}

fn merge_engine_config(
    path: &Path,
    text: &str,
    matches: &ArgMatches,
) -> anyhow::Result<EngineArgs> {
    let (merged, file) =
        config::merge::<EngineOnly>(path, text, matches, &super::run::config_keys())?;
    let mut engine = merged.engine;
    engine.config = Some(file);
    Ok(engine)
}

pub fn run(a: Args, matches: Option<&ArgMatches>) -> anyhow::Result<ExitCode> {
    let a = with_config(a, matches)?;
    if !a.sweep {
        for (given, name) in [
            (!a.sweep_windows.is_empty(), "--sweep-windows"),
            (!a.sweep_thresholds.is_empty(), "--sweep-thresholds"),
            (a.ground_truth.is_some(), "--ground-truth"),
        ] {
            if given {
                bail!("{name} applies to --sweep only (add --sweep)");
            }
        }
    }
    let mut cfg = a.engine.engine_config()?;
    cfg.report = true;
    // --sweep reproduces the paper's Table 4: tumbling windows (R6.1) unless
    // --window-mode says otherwise; otherwise the configured detectors.
    let sweep_mode = a.engine.mode_or(WindowMode::Tumbling);
    let (windows, thresholds) = if a.sweep {
        // The paper's method in every cell: each cell's alerts counted on
        // their own (Table 4), and no continuous service map (R4.5 is this
        // project's) unless asked for with --service-memory.
        cfg.dedup_across_detectors = false;
        if a.engine.service_memory.is_none() {
            cfg.services = None;
        }
        let windows = dedup(if a.sweep_windows.is_empty() {
            SWEEP_WINDOWS
                .iter()
                .map(|w| WindowLen(w.map(|s| s * 1_000_000_000)))
                .collect()
        } else {
            a.sweep_windows.clone()
        });
        let thresholds = dedup(if a.sweep_thresholds.is_empty() {
            SWEEP_THRESHOLDS.to_vec()
        } else {
            a.sweep_thresholds.clone()
        });
        cfg.detectors = windows
            .iter()
            .flat_map(|w| {
                thresholds.iter().map(|&threshold| DetectorConfig {
                    window: w.window(sweep_mode),
                    threshold,
                })
            })
            .collect();
        (windows, thresholds)
    } else {
        (Vec::new(), Vec::new())
    };
    let services_on = cfg.services.is_some();
    let ground_truth = match &a.ground_truth {
        Some(p) => Some(load_ground_truth(p)?),
        None => None,
    };

    // Where each output goes; stdout carries at most one of them.
    let alerts_path = match (&a.alerts, a.sweep) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(PathBuf::from("-")),
        (None, true) => None,
    };
    let is_stdout = |p: &Option<PathBuf>| p.as_deref() == Some(Path::new("-"));
    if a.sweep && is_stdout(&alerts_path) {
        bail!("--sweep prints its matrix on stdout: give --alerts a file");
    }
    if is_stdout(&a.report) && (a.sweep || is_stdout(&alerts_path)) {
        bail!("stdout already carries the alerts or the matrix: give --report a file");
    }

    let conn_logs = super::replay_zeek::inputs(&a.files)?;
    let total_bytes = match conn_logs {
        Some(_) => 0,
        None => check_inputs(&a.files)?,
    };
    if a.flow_exports {
        return super::flow_replay::run(
            &a.files,
            a.max_lateness.map(|d| d.0),
            cfg,
            alerts_path.as_deref(),
            a.report.as_deref(),
        );
    }
    let mut alerts = AlertOut::open(alerts_path.as_deref())?;
    let mut tallies = vec![Tally::default(); cfg.detectors.len()];
    let detectors = cfg.detectors.clone();
    let timeout_ns = cfg.handshake_timeout_ns;
    let whitelist_entries = cfg.whitelist.as_ref().map_or(0, |w| w.len());
    let identities = IdentitiesJson::of(&cfg.identity);
    let mut engine = Engine::new(cfg);
    let mut progress = Progress::new(total_bytes);
    let started = Instant::now();

    let mut input = Input::default();
    // --plots: distinct ports per source (Fig. 1) and alert times, bounded.
    let mut ports_used = a.plots.as_ref().map(|_| plots::PortsUsed::default());
    let mut alert_times = plots::AlertTimes::new(detectors.len());
    let mut on_alerts = |batch: &[Alert]| {
        for alert in batch {
            let t = &mut tallies[alert.detector];
            t.alerts += 1;
            t.sources.insert(alert.source);
            if a.plots.is_some() {
                alert_times.record(alert.detector, alert.timestamp_ns);
            }
        }
        alerts.write(batch)
    };
    let mut zeek = None;
    let damage: Option<anyhow::Error> = match &conn_logs {
        Some(logs) => {
            let lateness = a
                .max_lateness
                .map_or(6 * 3600 * 1_000_000_000, |d| d.0.as_nanos() as u64);
            let (st, damage) =
                super::replay_zeek::feed(logs, &mut engine, lateness, timeout_ns, &mut on_alerts)?;
            zeek = Some(st);
            damage
        }
        None => feed_engine(
            &a.files,
            &mut engine,
            &mut input,
            &mut progress,
            |rec| {
                if let Some(p) = ports_used.as_mut() {
                    p.record(rec);
                }
            },
            &mut on_alerts,
        )?
        .map(anyhow::Error::from),
    };
    if let Some(path) = &a.state_out {
        slowscan::daemon::checkpoint::save(path, &engine.checkpoint())?;
    }
    progress.finish();
    let elapsed = started.elapsed();
    alerts.flush()?;

    let stats = engine.stats();
    let totals = engine.report();
    let cells: Vec<DetectorResult> = detectors
        .iter()
        .zip(&tallies)
        .map(|(d, t)| DetectorResult::new(d, t, &totals, ground_truth.as_ref()))
        .collect();
    let error = damage.as_ref().map(|e| e.to_string());
    if let Some(path) = &a.report {
        let report = ReplayReport {
            totals: &totals,
            complete: damage.is_none(),
            error: error.clone(),
            packets: input.frames.frames,
            first_packet: input.first_ts_ns.map(|t| rfc3339::format(t as i64)),
            last_packet: input.last_ts_ns.map(|t| rfc3339::format(t as i64)),
            files: &input.files,
            frames: FramesJson::from(&input.frames),
            engine: stats,
            handshake_timeout_seconds: timeout_ns as f64 / 1e9,
            whitelist_entries,
            identities: &identities,
            alerts: stats.alerts,
            detectors: &cells,
            ground_truth: ground_truth.as_ref().map(|g| g.len()),
            seconds: elapsed.as_secs_f64(),
            zeek,
        };
        write_report(path, &report)?;
    }
    if let (Some(dir), Some(ports)) = (&a.plots, &ports_used) {
        plots::write(
            dir,
            ports,
            &totals,
            &detectors,
            &alert_times,
            input
                .first_ts_ns
                .zip(input.last_ts_ns)
                .map(|(a, b)| (a as i64, b as i64)),
        )?;
    }
    if a.sweep {
        let mut out = io::stdout().lock();
        print_sweep(
            &mut out,
            &windows,
            &thresholds,
            (sweep_mode, services_on),
            &cells,
            &totals,
            ground_truth.as_ref(),
        )
        .and_then(|()| out.flush())
        .context("writing the sweep matrix to stdout")?;
    }

    let rate = input.frames.frames as f64 / elapsed.as_secs_f64().max(1e-9);
    tracing::info!(
        "replayed {}: {} packets ({} TCP) in {:.2} s ({:.0} packets/s); \
         {} attempts, {} established, {} failed, {} untracked; {} from {}",
        slowscan::count(input.files.len() as u64, "file"),
        input.frames.frames,
        input.frames.records,
        elapsed.as_secs_f64(),
        rate,
        totals.attempts,
        totals.established,
        totals.failed,
        totals.untracked,
        slowscan::count(stats.alerts, "alert"),
        slowscan::count(
            tallies
                .iter()
                .flat_map(|t| &t.sources)
                .collect::<HashSet<_>>()
                .len() as u64,
            "source"
        ),
    );
    if stats.evicted_pending + stats.evicted_sources > 0 {
        tracing::warn!(
            "memory caps reached: {} pending attempts decided early, {} sources forgotten \
             (raise --max-pending / --max-sources)",
            stats.evicted_pending,
            stats.evicted_sources
        );
    }
    match damage {
        None => Ok(ExitCode::SUCCESS),
        Some(e) if conn_logs.is_some() => Err(e.context(format!(
            "replay stopped early: the alerts{} cover the lines read before this point",
            if a.report.is_some() {
                " and the report"
            } else {
                ""
            },
        ))),
        Some(e) => Err(e.context(format!(
            "replay stopped early: the alerts{} cover the {} packets read before this point \
             ({} attempts still pending there were left undecided)",
            if a.report.is_some() {
                " and the report"
            } else {
                ""
            },
            input.frames.frames,
            stats.pending
        ))),
    }
}

fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Reading the files (shared with `learn`)

/// A progress bar on stderr over the bytes of all files; it appears only when
/// stderr is a terminal and the replay has been running for 2 s.
pub(super) struct Progress {
    enabled: bool,
    started: Instant,
    total: u64,
    /// Bytes of the files already read.
    base: u64,
    name: String,
    bar: Option<ProgressBar>,
}

impl Progress {
    const DELAY: Duration = Duration::from_secs(2);

    pub fn new(total_bytes: u64) -> Self {
        Progress {
            enabled: io::stderr().is_terminal(),
            started: Instant::now(),
            total: total_bytes,
            base: 0,
            name: String::new(),
            bar: None,
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl ReadObserver for Progress {
    fn start_file(&mut self, path: &Path) {
        self.name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if let Some(bar) = &self.bar {
            bar.set_message(self.name.clone());
        }
    }

    fn position(&mut self, in_file: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() {
            if self.started.elapsed() < Self::DELAY {
                return;
            }
            let style = ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .expect("valid template")
            .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(
                Some(self.total),
                ProgressDrawTarget::stderr_with_hz(4),
            )
            .with_style(style)
            .with_message(self.name.clone());
            bar.set_elapsed(self.started.elapsed());
            // Rates and ETA from here on, not from a jump from 0.
            bar.set_position(self.base + in_file);
            bar.reset_eta();
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.base + in_file);
        }
    }

    fn end_file(&mut self, len: u64) {
        self.base += len;
        self.position(0);
    }

    /// The warning, with the bar cleared.
    fn out_of_order(&mut self, path: &Path, behind_s: f64) {
        let warn = || Quiet.out_of_order(path, behind_s);
        match &self.bar {
            Some(bar) => bar.suspend(warn),
            None => warn(),
        }
    }
}

// ---------------------------------------------------------------------------
// Outputs

/// The alert sink of a replay: buffered (a replay decides many alerts a
/// second), flushed at the end and before an error is reported.
pub(super) enum AlertOut {
    None,
    Some { out: Box<dyn Write>, name: String },
}

impl AlertOut {
    pub(super) fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(AlertOut::None);
        };
        if path.as_os_str() == "-" {
            return Ok(AlertOut::Some {
                out: Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
                name: "stdout".into(),
            });
        }
        slowscan::dirs::prepare(path, "--alerts")?;
        let file = File::create(path)
            .with_context(|| format!("cannot create the alerts file {}", path.display()))?;
        Ok(AlertOut::Some {
            out: Box::new(BufWriter::with_capacity(1 << 16, file)),
            name: path.display().to_string(),
        })
    }

    pub(super) fn write(&mut self, alerts: &[Alert]) -> anyhow::Result<()> {
        let AlertOut::Some { out, name } = self else {
            return Ok(());
        };
        for alert in alerts {
            serde_json::to_writer(&mut *out, alert)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .with_context(|| format!("writing alerts to {name}"))?;
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            AlertOut::None => Ok(()),
            AlertOut::Some { out, name } => out
                .flush()
                .with_context(|| format!("writing alerts to {name}")),
        }
    }
}

/// Writes JSON to `path` (`-`: stdout) directly, not through a temporary
/// file, so device paths such as /dev/null work.
pub(super) fn write_report(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("report serialises");
    text.push('\n');
    if path.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        return out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the report to stdout");
    }
    std::fs::write(path, text)
        .with_context(|| format!("cannot write the report {}", path.display()))
}

#[derive(Clone, Default)]
struct Tally {
    alerts: u64,
    sources: HashSet<IpAddr>,
}

/// `--report`: the engine's totals and per-source totals at the top level,
/// then how the run went.
#[derive(Serialize)]
struct ReplayReport<'a> {
    #[serde(flatten)]
    totals: &'a Report,
    /// Every file read to its end.
    complete: bool,
    /// The damage that stopped the replay.
    error: Option<String>,
    packets: u64,
    first_packet: Option<String>,
    last_packet: Option<String>,
    files: &'a [FileSummary],
    frames: FramesJson,
    engine: EngineStats,
    handshake_timeout_seconds: f64,
    whitelist_entries: usize,
    /// R9: what failures were counted under.
    identities: &'a IdentitiesJson,
    alerts: u64,
    detectors: &'a [DetectorResult],
    /// Scanners listed in --ground-truth.
    #[serde(skip_serializing_if = "Option::is_none")]
    ground_truth: Option<usize>,
    /// Wall time of the replay.
    seconds: f64,
    /// Zeek conn logs: what was read and how it counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    zeek: Option<slowscan::zeek::ZeekStats>,
}

/// R9 as configured: the home networks, the outside prefix, MACs on or off.
#[derive(Serialize)]
pub struct IdentitiesJson {
    pub home_nets: Vec<String>,
    pub outside_prefix: String,
    pub macs: bool,
}

impl IdentitiesJson {
    pub fn of(c: &slowscan::engine::IdentityConfig) -> Self {
        Self {
            home_nets: c.home_nets.prefixes().map(|p| p.to_string()).collect(),
            outside_prefix: c.outside_label(),
            macs: c.macs,
        }
    }
}

/// [`FrameCounters`], named as the kernel counters.
#[derive(Serialize)]
struct FramesJson {
    frames: u64,
    tcp: u64,
    non_ip: u64,
    non_tcp: u64,
    malformed: u64,
    fragments_skipped: u64,
    too_deep: u64,
    ipv6: u64,
    vlan_tagged: u64,
    header_anomalies: u64,
    first_fragments: u64,
    tcp_header_cut: u64,
    /// Frames per encapsulation opened (`decap_mpls` …), by counter name.
    decapsulated: std::collections::BTreeMap<&'static str, u64>,
}

impl From<&FrameCounters> for FramesJson {
    fn from(c: &FrameCounters) -> Self {
        FramesJson {
            frames: c.frames,
            tcp: c.records,
            non_ip: c.non_ip,
            non_tcp: c.non_tcp,
            malformed: c.malformed,
            fragments_skipped: c.fragments_skipped,
            too_deep: c.too_deep,
            ipv6: c.ipv6,
            vlan_tagged: c.vlan_tagged,
            header_anomalies: c.header_anomalies,
            first_fragments: c.first_fragments,
            tcp_header_cut: c.tcp_header_cut,
            decapsulated: c
                .iter()
                .filter(|(k, _)| k.name().starts_with("decap_"))
                .map(|(k, v)| (k.name(), v))
                .collect(),
        }
    }
}

/// One detector (one cell of the sweep): its alerts and alerting sources,
/// and against a ground truth its confusion counts.
#[derive(Serialize)]
struct DetectorResult {
    window: WindowJson,
    threshold: u32,
    alerts: u64,
    /// Distinct alerting sources, sorted.
    alerting_sources: Vec<IpAddr>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    confusion: Option<Confusion>,
}

/// As in alerts: `{"mode":"tumbling","seconds":600}`, `seconds` null for `none`.
#[derive(Serialize)]
struct WindowJson {
    mode: &'static str,
    seconds: Option<serde_json::Value>,
}

/// Hosts are the sources that made at least one attempt (R1), plus the
/// listed scanners; positives are the listed scanners.
#[derive(Clone, Copy, Serialize)]
struct Confusion {
    true_positives: u64,
    false_positives: u64,
    false_negatives: u64,
    true_negatives: u64,
    /// FP / (FP + TN); `null` when there is no negative host.
    false_positive_rate: Option<f64>,
}

impl DetectorResult {
    fn new(d: &DetectorConfig, t: &Tally, totals: &Report, gt: Option<&HashSet<IpAddr>>) -> Self {
        let mut alerting_sources: Vec<IpAddr> = t.sources.iter().copied().collect();
        alerting_sources.sort_unstable();
        let confusion = gt.map(|gt| {
            let tp = t.sources.iter().filter(|s| gt.contains(s)).count() as u64;
            let fp = t.sources.len() as u64 - tp;
            let negatives = totals.sources.keys().filter(|s| !gt.contains(s)).count() as u64;
            let tn = negatives - fp;
            Confusion {
                true_positives: tp,
                false_positives: fp,
                false_negatives: gt.len() as u64 - tp,
                true_negatives: tn,
                false_positive_rate: (negatives > 0).then(|| fp as f64 / negatives as f64),
            }
        });
        DetectorResult {
            window: WindowJson {
                mode: d.window.mode(),
                seconds: d.window.length_ns().map(|ns| {
                    if ns % 1_000_000_000 == 0 {
                        (ns / 1_000_000_000).into()
                    } else {
                        (ns as f64 / 1e9).into()
                    }
                }),
            },
            threshold: d.threshold,
            alerts: t.alerts,
            alerting_sources,
            confusion,
        }
    }
}

/// One address per line; blank lines and `#` comments are skipped.
fn load_ground_truth(path: &Path) -> anyhow::Result<HashSet<IpAddr>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the ground-truth file {}", path.display()))?;
    let mut set = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let ip: IpAddr = line.parse().map_err(|_| {
            anyhow::anyhow!(
                "{} line {}: `{line}` is not an IP address (write one scanner address per line)",
                path.display(),
                i + 1
            )
        })?;
        set.insert(ip);
    }
    Ok(set)
}

/// The sweep as the paper's tables: Table 4 (alerts and distinct alerting
/// hosts), and with a ground truth Table 6 (false-positive rate, %) and the
/// scanners detected per cell.
#[allow(clippy::too_many_arguments)]
fn print_sweep(
    out: &mut impl Write,
    windows: &[WindowLen],
    thresholds: &[u32],
    (mode, services): (WindowMode, bool),
    cells: &[DetectorResult],
    totals: &Report,
    gt: Option<&HashSet<IpAddr>>,
) -> io::Result<()> {
    let mode = match mode {
        WindowMode::Tumbling => "tumbling, the paper's",
        WindowMode::Sliding => "sliding",
    };
    let cell = |w: usize, t: usize| &cells[w * thresholds.len() + t];
    writeln!(
        out,
        "Alerts (distinct alerting hosts) by window ({mode}) and threshold; {} hosts made attempts",
        totals.sources.len()
    )?;
    writeln!(
        out,
        "(each cell counts its own alerts; {})",
        if services {
            "failures to live services are outages (R4.5)"
        } else {
            "no service map, as in the paper"
        }
    )?;
    matrix(out, windows, thresholds, |w, t| {
        let c = cell(w, t);
        format!("{}({})", c.alerts, c.alerting_sources.len())
    })?;
    if let Some(gt) = gt {
        let seen = gt.iter().filter(|s| totals.sources.contains_key(s)).count();
        let negatives = totals.sources.keys().filter(|s| !gt.contains(s)).count();
        writeln!(out)?;
        writeln!(
            out,
            "False-positive rate, % = FP/(FP+TN) over {negatives} hosts not in the ground truth"
        )?;
        matrix(out, windows, thresholds, |w, t| {
            match cell(w, t).confusion.and_then(|c| c.false_positive_rate) {
                Some(r) => format!("{:.1}", r * 100.0),
                None => "-".into(),
            }
        })?;
        writeln!(out)?;
        writeln!(
            out,
            "Scanners detected, of {} in the ground truth ({seen} seen making attempts)",
            gt.len()
        )?;
        matrix(out, windows, thresholds, |w, t| {
            let c = cell(w, t).confusion.expect("ground truth given");
            format!("{}/{}", c.true_positives, gt.len())
        })?;
    }
    Ok(())
}

fn matrix(
    out: &mut impl Write,
    windows: &[WindowLen],
    thresholds: &[u32],
    cell: impl Fn(usize, usize) -> String,
) -> io::Result<()> {
    let rows: Vec<Vec<String>> = std::iter::once(
        std::iter::once("window".to_owned())
            .chain(thresholds.iter().map(|t| t.to_string()))
            .collect(),
    )
    .chain(windows.iter().enumerate().map(|(w, len)| {
        std::iter::once(len.to_string())
            .chain((0..thresholds.len()).map(|t| cell(w, t)))
            .collect()
    }))
    .collect();
    let widths: Vec<usize> = (0..=thresholds.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for (c, s) in row.iter().enumerate().skip(1) {
            line.push_str(&format!("  {s:>w$}", w = widths[c]));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use slowscan::engine::{SECOND_NS, Window};

    use super::*;

    #[derive(Parser)]
    struct ReplayOnly {
        #[command(flatten)]
        args: Args,
    }

    const PATH: &str = "/etc/slowscan/run.toml";

    /// The detection options of `replay x.pcap --config PATH FLAGS` with
    /// the file `text`.
    fn merged(text: &str, flags: &[&str]) -> Result<EngineArgs, String> {
        let argv = ["slowscan replay", "x.pcap", "--config", PATH]
            .into_iter()
            .chain(flags.iter().copied());
        let m = ReplayOnly::command().get_matches_from(argv);
        merge_engine_config(Path::new(PATH), text, &m).map_err(|e| format!("{e:#}"))
    }

    /// A sensor's file: detection options beside `run`'s own.
    const RUN_FILE: &str = r#"
iface = "eth1"
alerts = "/var/log/slowscan/alerts.json"
metrics = "off"
mirror = true
state = "/var/lib/slowscan/state.json"
detector = ["1h:9", "30d:24"]
window-mode = "tumbling"
handshake_timeout = "2s"
no-service-map = true
ignore-sources = "198.51.100.0/24"
"#;

    #[test]
    fn detection_options_come_from_a_run_config_file() {
        let e = merged(RUN_FILE, &[]).unwrap();
        let names: Vec<String> = e.detectors().unwrap().iter().map(|d| d.name()).collect();
        assert_eq!(names, ["1h:9", "30d:24"]);
        assert_eq!(
            e.detectors().unwrap()[0].window,
            Window::Tumbling(3600 * SECOND_NS)
        );
        let cfg = e.engine_config().unwrap();
        assert_eq!(cfg.handshake_timeout_ns, 2 * SECOND_NS);
        assert!(cfg.services.is_none());
        assert!(cfg.ignore.is_some());
        // Flags override the file.
        let e = merged(
            RUN_FILE,
            &[
                "--detector",
                "7d:18",
                "--service-map",
                "--window-mode",
                "sliding",
            ],
        )
        .unwrap();
        let d = e.detectors().unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].window, Window::Sliding(7 * 86_400 * SECOND_NS));
        assert!(e.engine_config().unwrap().services.is_some());
        // No file: the defaults.
        let e = merged("", &[]).unwrap();
        assert_eq!(
            e.detectors().unwrap(),
            slowscan::engine::DetectorConfig::default_ladder()
        );
    }

    #[test]
    fn config_file_errors_name_the_key() {
        let cases = [
            ("colour = \"blue\"", "unknown key `colour`"),
            ("threshold = \"many\"", "bad value for `threshold`"),
            ("detector = [\"1d:0\"]", "bad value for `detector`"),
            ("window = \"1h\"\ndetector = [\"1d:16\"]", "--detector"),
        ];
        for (text, want) in cases {
            let e = merged(text, &[])
                .err()
                .unwrap_or_else(|| panic!("{text} accepted"));
            assert!(e.contains(want) && e.contains(PATH), "{text}: {e}");
        }
        // Checks made after parsing name the key too when it came from the
        // file, and the flag when it came from the command line.
        let e = merged("detector = [\"1h:9\", \"1h:9\"]", &[])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!("config file {PATH}: `detector` 1h:9 is given twice")
        );
        let e = merged("", &["--detector", "1h:9", "--detector", "1h:9"])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert_eq!(format!("{e:#}"), "--detector 1h:9 is given twice");
        let e = merged("handshake_timeout = \"0\"", &[])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert!(
            format!("{e:#}").starts_with(&format!(
                "config file {PATH}: `handshake_timeout` must be longer than 0 s"
            )),
            "{e:#}"
        );
        let e = merged("ignore-sources = \"198.51.100.7/24\"", &[])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("config file {PATH}: `ignore-sources`")),
            "{e:#}"
        );
    }
}
