//! `slowscan run --iface IF …`: the live sensor (see `slowscan::daemon`).
//!
//! `--config FILE`: a TOML file holding any of the options below under their
//! flag names (`iface = "eth1"`, `threshold = 9`; see `config.rs`); flags
//! given on the command line override the file.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    str::FromStr,
    time::Duration,
};

use anyhow::Context;

use super::{
    config,
    options::{EngineArgs, FleetArgs, HumanDuration},
};
use clap::{ArgMatches, Args as ClapArgs, CommandFactory, Parser};
use slowscan::{
    daemon::{
        self, DaemonConfig,
        reload::{Options, Reloader},
    },
    engine::EngineConfig,
    kernel::AttachMode,
};

#[derive(ClapArgs)]
pub struct Args {
    /// TOML file holding any of these options (flag names as keys); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Interface to watch (a mirror/SPAN port, or a host's own interface).
    #[arg(long, required_unless_present = "config")]
    iface: Option<String>,
    /// This sensor's name in every alert (`observer.name`) [default: the host name].
    #[arg(long, value_name = "NAME")]
    sensor_name: Option<String>,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Detection options, shared with `replay` and `learn`; the whitelist is
    /// also loaded into the kernel map at start.
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    attach: AttachArgs,
    /// Alerts as JSON lines: `-` for stdout, or a file (appended, each alert flushed to disk).
    #[arg(long, default_value = "-", value_name = "PATH|-")]
    alerts: PathBuf,
    /// Prometheus text endpoint address, or `off`.
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR|off")]
    metrics: MetricsAddr,
    /// Learn the whitelist for this long first (R4.1), load it into the kernel, then detect.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    learn_for: Option<HumanDuration>,
    /// With --learn-for: save the learned whitelist to this file [default:
    /// beside --state, its name ending .learned.json; one of them is needed].
    #[arg(long, value_name = "FILE", requires = "learn_for")]
    learn_out: Option<PathBuf>,
    /// Log a one-line summary to stderr this often (e.g. 60, 5m).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    summary_every: Option<HumanDuration>,
    /// Keep per-source totals for the final summary. Off by default: they grow
    /// with every source ever seen, and a sensor's memory must stay bounded.
    #[arg(long, overrides_with = "no_source_totals")]
    source_totals: bool,
    /// No per-source totals (the default; overrides the config file).
    #[arg(long, overrides_with = "source_totals")]
    no_source_totals: bool,
    /// Stop by itself after this long (e.g. 90s, 2h).
    #[arg(long = "for", value_name = "DURATION", allow_hyphen_values = true)]
    run_for: Option<HumanDuration>,
    /// Engine state file: restored at start if present, checkpointed
    /// atomically (so a slow scan straddling a restart is still detected).
    #[arg(long, value_name = "PATH")]
    state: Option<PathBuf>,
    /// Start afresh, ignoring the state file (overwritten at the first checkpoint).
    #[arg(long, requires = "state", overrides_with = "no_state_reset")]
    state_reset: bool,
    /// Restore the state file (the default; overrides the config file).
    #[arg(long, overrides_with = "state_reset")]
    no_state_reset: bool,
    /// Checkpoint the engine state this often (also at SIGUSR1 and at exit).
    #[arg(
        long,
        default_value = "60",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    checkpoint_every: HumanDuration,
    #[command(flatten)]
    maps: MapArgs,
}

/// How the program attaches, shared by `run` and `learn --iface`; every
/// flag has its `--no-…` form, so the command line overrides a config file.
#[derive(ClapArgs, Clone, Copy)]
pub struct AttachArgs {
    /// Dedicated mirror/SPAN port: drop every frame after inspection (on an
    /// interface with addresses this cuts the host off: a warning says so).
    #[arg(long, overrides_with = "no_mirror")]
    mirror: bool,
    /// Pass every frame on after inspection (the default).
    #[arg(long, overrides_with = "mirror")]
    no_mirror: bool,
    /// Attach in generic (skb) XDP mode instead of native.
    #[arg(long, overrides_with = "no_generic")]
    generic: bool,
    /// Native XDP, falling back to generic with a log line (the default).
    #[arg(long, overrides_with = "generic")]
    no_generic: bool,
}

impl AttachArgs {
    pub fn mirror(&self) -> bool {
        self.mirror
    }

    pub fn mode(&self) -> AttachMode {
        if self.generic {
            AttachMode::Generic
        } else {
            AttachMode::Auto
        }
    }

    /// Either flag given (`learn` allows them only with `--iface`).
    pub fn any(&self) -> bool {
        self.mirror || self.generic
    }
}

/// Kernel map sizes, shared by `run` and `learn --iface`.
#[derive(ClapArgs, Clone, Copy)]
pub struct MapArgs {
    /// Size of the kernel whitelist map (entries): raise it for a larger
    /// whitelist (learned or loaded).
    #[arg(long, value_name = "N", default_value_t = slowscan_common::WHITELIST_MAX,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub whitelist_max: u32,
    /// Size of the kernel's pending table (entries, 1024 to 16777216): under
    /// a flood of R new attempts/s a handshake is recognised if it completes
    /// within N / R seconds (docs/operations.md, "Under a SYN flood").
    #[arg(long, value_name = "N", default_value_t = slowscan_common::PENDING_MAX)]
    pub kernel_pending_max: u32,
    /// Size of the kernel's record ring buffer in bytes (a power of two):
    /// what a burst of records may fill while the reader is away
    /// (docs/operations.md, "Sizing the ring").
    #[arg(long, value_name = "BYTES", default_value_t = slowscan_common::RING_BYTES,
          allow_negative_numbers = true)]
    pub ring_bytes: u32,
}

/// `slowscan run`'s options alone, to parse a command line rebuilt from the
/// config file and the flags.
#[derive(Parser)]
#[command(name = "slowscan run", no_binary_name = false)]
struct RunOnly {
    #[command(flatten)]
    args: Args,
}

/// The options of the config file at `path` that were not given as flags
/// (`matches`: the `run` subcommand's), with the flags; and every option's
/// value by key.
fn load_config(path: &Path, matches: &ArgMatches) -> anyhow::Result<(Args, Options)> {
    merge_config(path, &config::read(path)?, matches)
}

fn merge_config(path: &Path, text: &str, matches: &ArgMatches) -> anyhow::Result<(Args, Options)> {
    let (merged, file, m) = config::merge_matches::<RunOnly>(path, text, matches, &[])?;
    let mut a = merged.args;
    a.config = Some(path.to_path_buf());
    a.engine.config = Some(file);
    Ok((a, options_of(&m)))
}

/// `text` checked as `run --config` would read it: every key known, every
/// value valid, the detectors consistent (the docs' examples; an example
/// without `iface` gets one as a flag).
#[cfg(test)]
pub(super) fn check_config(text: &str) -> anyhow::Result<()> {
    let path = Path::new("/etc/slowscan/example.toml");
    let mut argv = vec!["slowscan run", "--config", "/etc/slowscan/example.toml"];
    let table: toml::Table = text.parse()?;
    if !table.contains_key("iface") {
        argv.extend(["--iface", "eth1"]);
    }
    let m = RunOnly::command().try_get_matches_from(argv)?;
    let (a, _) = merge_config(path, text, &m)?;
    a.engine.detectors()?;
    learn_out(&a)?;
    Ok(())
}

/// Every `run` option's value in `m` by its config key, defaults included
/// (several values joined by `, `), for a reload to compare.
fn options_of(m: &ArgMatches) -> Options {
    RunOnly::command()
        .get_arguments()
        .filter_map(|arg| {
            let key = arg.get_long().filter(|l| *l != "config")?;
            let values = m.try_get_raw(arg.get_id().as_str()).ok()??;
            let text: Vec<String> = values.map(|v| v.to_string_lossy().into_owned()).collect();
            Some((key.to_string(), text.join(", ")))
        })
        .collect()
}

/// The keys of a `run` config file (its options' flag names).
pub(super) fn config_keys() -> Vec<String> {
    RunOnly::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect()
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

pub fn run(a: Args, matches: Option<&ArgMatches>) -> anyhow::Result<ExitCode> {
    let (a, options, reload) = match (matches, a.config.clone()) {
        (Some(m), Some(path)) => {
            let (a, options) = load_config(&path, m)?;
            // SIGHUP parses the file again, under the same flags.
            let flags = m.clone();
            let reload = Reloader::new(move || {
                let (a, options) = load_config(&path, &flags)?;
                Ok((daemon_config(a)?, options))
            });
            (a, options, Some(reload))
        }
        (Some(m), None) => (a, options_of(m), None),
        (None, _) => (a, Options::default(), None),
    };
    let cfg = DaemonConfig {
        reload,
        options,
        ..daemon_config(a)?
    };
    let summary = daemon::run(cfg)?;
    eprint!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// The sensor's configuration from its options (checked; files read).
fn daemon_config(a: Args) -> anyhow::Result<DaemonConfig> {
    let iface = a
        .iface
        .clone()
        .context("--iface (or `iface` in the --config file) is required")?;
    let sensor_name = a.sensor_name.clone().unwrap_or_else(daemon::hostname);
    let fleet = a.fleet.config(&sensor_name, &a.engine)?;
    let engine = EngineConfig {
        export_failures: fleet.is_some(),
        report: a.source_totals,
        ..a.engine.engine_config()?
    };
    // A bad size is refused before anything is attached.
    slowscan::kernel::ProgramOptions {
        whitelist_max: a.maps.whitelist_max,
        pending_max: a.maps.kernel_pending_max,
        ring_bytes: a.maps.ring_bytes,
        ..Default::default()
    }
    .check()?;
    let timeout = a.engine.handshake_timeout.0;
    let checkpoint_every = a.checkpoint_every.0;
    anyhow::ensure!(
        !checkpoint_every.is_zero(),
        "--checkpoint-every must be longer than 0 s"
    );
    let ignore = engine.ignore.clone();
    let learn_out = learn_out(&a)?;
    // Before anything is attached: the packaged directories are created
    // when no systemd unit did; any other missing one is named.
    if a.alerts.as_os_str() != "-" {
        slowscan::dirs::prepare(&a.alerts, "--alerts")?;
    }
    if let Some(state) = &a.state {
        slowscan::dirs::prepare(state, "--state")?;
    }
    let cfg = DaemonConfig {
        iface,
        attach: a.attach.mode(),
        mirror: a.attach.mirror(),
        engine,
        alerts: a.alerts,
        sensor_name,
        fleet,
        metrics: a.metrics.0,
        learn_for: a.learn_for.map(|d| d.0),
        learn: a.engine.learn_config(),
        learn_out,
        learn_only: false,
        whitelist_file: a.engine.whitelist.clone(),
        summary_every: a.summary_every.map(|d| d.0),
        run_for: a.run_for.map(|d| d.0),
        sweep_every: Duration::from_secs(5).min(timeout.max(Duration::from_secs(1))),
        state: a.state,
        state_reset: a.state_reset,
        checkpoint_every,
        ignore,
        ignore_file: a.engine.ignore_file(),
        whitelist_max: a.maps.whitelist_max,
        pending_max: a.maps.kernel_pending_max,
        ring_bytes: a.maps.ring_bytes,
        reload: None,
        options: Options::default(),
    };
    Ok(cfg)
}

/// Where `--learn-for` saves what it learned: `--learn-out`, else beside
/// the state file (`eth1.state` → `eth1.learned.json`), where a service
/// keeps what it must not lose. Without either, learning could end in a
/// kernel map too small for it, or a stop, with nothing kept: refused.
fn learn_out(a: &Args) -> anyhow::Result<Option<PathBuf>> {
    if a.learn_for.is_none() {
        return Ok(None);
    }
    match (&a.learn_out, &a.state) {
        (Some(p), _) => Ok(Some(p.clone())),
        (None, Some(state)) => Ok(Some(state.with_extension("learned.json"))),
        (None, None) => anyhow::bail!(
            "--learn-for needs somewhere to save what it learns: give --learn-out FILE, or \
             --state PATH (it then goes beside it, e.g. /var/lib/slowscan/eth1.learned.json \
             for --state /var/lib/slowscan/eth1.state)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use slowscan::engine::{SECOND_NS, Window};

    use super::*;

    fn merged(text: &str, flags: &[&str]) -> Result<Args, String> {
        let argv = ["slowscan run", "--config", "/etc/slowscan/run.toml"]
            .into_iter()
            .chain(flags.iter().copied());
        let m = RunOnly::command().get_matches_from(argv);
        merge_config(Path::new("/etc/slowscan/run.toml"), text, &m)
            .map(|(a, _)| a)
            .map_err(|e| format!("{e:#}"))
    }

    const FILE: &str = r#"
iface = "eth1"
window = "600"
window-mode = "sliding"
threshold = 9
handshake_timeout = "2s"
alerts = "/var/log/slowscan/alerts.json"
mirror = true
eligible-high-ports = [3128, 8080]
metrics = "off"
state = "/var/lib/slowscan/state.json"
checkpoint-every = 30
"#;

    #[test]
    fn values_come_from_the_file_and_flags_override_them() {
        let a = merged(FILE, &["--threshold", "4", "--iface", "eth2"]).unwrap();
        assert_eq!(a.iface.as_deref(), Some("eth2"));
        assert_eq!(a.engine.threshold, Some(4));
        assert_eq!(
            a.engine.detectors().unwrap()[0].window,
            Window::Sliding(600 * SECOND_NS)
        );
        assert_eq!(a.engine.handshake_timeout.0, Duration::from_secs(2));
        assert_eq!(a.alerts, PathBuf::from("/var/log/slowscan/alerts.json"));
        assert!(a.attach.mirror() && a.attach.mode() == AttachMode::Auto);
        assert_eq!(a.engine.eligible_high_ports, vec![3128, 8080]);
        assert!(a.metrics.0.is_none());
        assert_eq!(a.state, Some(PathBuf::from("/var/lib/slowscan/state.json")));
        assert_eq!(a.checkpoint_every.0, Duration::from_secs(30));
        let a = merged(FILE, &[]).unwrap();
        assert_eq!(
            (a.iface.as_deref(), a.engine.threshold),
            (Some("eth1"), Some(9))
        );
        // Defaults stay for what neither gives: the ladder.
        let a = merged("iface = \"eth1\"", &[]).unwrap();
        assert_eq!(
            a.engine.detectors().unwrap(),
            slowscan::engine::DetectorConfig::default_ladder()
        );
    }

    #[test]
    fn every_boolean_has_a_no_form_that_overrides_the_file() {
        let file = "iface = \"eth1\"\nmirror = true\ngeneric = true\nsource-totals = true\nno-service-map = true\n";
        let a = merged(file, &[]).unwrap();
        assert!(a.attach.mirror() && a.attach.mode() == AttachMode::Generic);
        assert!(a.source_totals && a.engine.no_service_map);
        let a = merged(
            file,
            &[
                "--no-mirror",
                "--no-generic",
                "--no-source-totals",
                "--service-map",
            ],
        )
        .unwrap();
        assert!(!a.attach.mirror() && a.attach.mode() == AttachMode::Auto);
        assert!(!a.source_totals);
        assert!(a.engine.engine_config().unwrap().services.is_some());
    }

    #[test]
    fn detectors_come_from_the_file_unless_given_as_flags() {
        let file = "iface = \"eth1\"\ndetector = [\"1h:9\", \"30d:24\"]\n";
        let a = merged(file, &[]).unwrap();
        let names: Vec<String> = a
            .engine
            .detectors()
            .unwrap()
            .iter()
            .map(|d| d.name())
            .collect();
        assert_eq!(names, ["1h:9", "30d:24"]);
        let a = merged(file, &["--detector", "7d:20"]).unwrap();
        assert_eq!(a.engine.detectors().unwrap()[0].name(), "7d:20");
        assert_eq!(a.engine.detectors().unwrap().len(), 1);
        // A window in the file and detectors: the conflict names both.
        let e = merged("window = \"1h\"\ndetector = [\"1d:16\"]", &[])
            .err()
            .unwrap();
        assert!(e.contains("--window") && e.contains("--detector"), "{e}");
        let e = merged("detector = [\"1d:0\"]", &[]).err().unwrap();
        assert!(e.contains("bad value for `detector`"), "{e}");
    }

    #[test]
    fn learning_always_has_somewhere_to_write() {
        let out = |flags: &[&str]| {
            learn_out(&merged("iface = \"eth1\"", flags).unwrap()).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(out(&[]).unwrap(), None);
        assert_eq!(
            out(&["--learn-for", "9h", "--learn-out", "/x/wl.json"]).unwrap(),
            Some(PathBuf::from("/x/wl.json"))
        );
        assert_eq!(
            out(&[
                "--learn-for",
                "9h",
                "--state",
                "/var/lib/slowscan/eth1.state"
            ])
            .unwrap(),
            Some(PathBuf::from("/var/lib/slowscan/eth1.learned.json"))
        );
        let e = out(&["--learn-for", "9h"]).unwrap_err();
        assert!(
            e.contains("--learn-out FILE") && e.contains("--state PATH"),
            "{e}"
        );
    }

    #[test]
    fn a_reload_compares_every_option_and_lists_only_real_keys() {
        use slowscan::daemon::reload::{RELOADABLE, diff};
        let keys = config_keys();
        for (k, _) in RELOADABLE {
            assert!(keys.iter().any(|o| o == k), "`{k}` is not a run option");
        }
        let options = |text: &str| {
            let argv = ["slowscan run", "--config", "/etc/slowscan/run.toml"];
            let m = RunOnly::command().get_matches_from(argv);
            merge_config(Path::new("/etc/slowscan/run.toml"), text, &m)
                .unwrap()
                .1
        };
        let before = options("iface = \"eth1\"\n");
        // Defaults are compared too: a key written with its default is no change.
        assert_eq!(
            before.get("ring-bytes").map(String::as_str),
            Some("16777216")
        );
        assert_eq!(before.get("mirror").map(String::as_str), Some("false"));
        let after = options(
            "iface = \"eth1\"\nring-bytes = 16777216\nmirror = true\n\
             detector = [\"1h:6\", \"1d:16\"]\nwindow-mode = \"sliding\"\n",
        );
        let changed: Vec<String> = diff(&before, &after)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            changed,
            [
                "detector: (not set) -> 1h:6, 1d:16",
                "mirror: false -> true",
                "window-mode: (not set) -> sliding"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let cases = [
            ("colour = \"blue\"", "unknown key `colour`"),
            ("threshold = \"many\"", "bad value for `threshold`"),
            ("window = \"soon\"", "bad value for `window`"),
            ("mirror = \"yes\"", "bad value for `mirror`"),
            ("window-mode = \"hopping\"", "bad value for `window-mode`"),
            ("metrics = [1, 2]", "bad value for `metrics`"),
            ("iface = \"eth1\"\nthreshold = ", "line 2"),
        ];
        for (text, want) in cases {
            let e = merged(text, &[])
                .err()
                .unwrap_or_else(|| panic!("{text} accepted"));
            assert!(e.contains(want), "{text}: {e}");
            assert!(
                e.contains("config file /etc/slowscan/run.toml"),
                "{text}: {e}"
            );
        }
    }
}
