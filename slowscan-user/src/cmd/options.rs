//! Detection options shared by the commands that run the engine
//! (`replay`, `learn`; `run` can flatten the same [`EngineArgs`]).
//!
//! Bad values are refused when the command line is parsed, with a message
//! that says what to write instead; [`EngineArgs::engine_config`] adds the
//! checks that need more than one option or a file (the whitelist).
use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::config::ConfigFile;
use slowscan::engine::{
    DEFAULT_MAX_PENDING, DEFAULT_MAX_SOURCES, DetectorConfig, EngineConfig, HomeNets,
    IdentityConfig, IgnoreList, LearnConfig, MAX_WINDOW_NS, ServiceMapConfig, Whitelist, Window,
    services::{DEFAULT_MAX_SERVICES, DEFAULT_SERVICE_MEMORY_NS},
};

/// Engine options: R5.1 handshake timeout, R6 detectors, R4.3–R4.6
/// whitelist, service map and ignore list, memory caps.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Detection (docs/method.md R4–R6)")]
pub struct EngineArgs {
    /// A detector: alert when a source's distinct failed (host, port) pairs
    /// within WINDOW exceed THRESHOLD (R6), e.g. `1h:9`, `30d:24`, `none:9`;
    /// windows up to 90d. Repeat for several (docs/detectors.md) [default:
    /// the ladder 1h:9, 1d:16, 7d:18, 30d:20].
    #[arg(long = "detector", value_name = "WINDOW:THRESHOLD", allow_hyphen_values = true,
          conflicts_with_all = ["window", "threshold"])]
    pub detectors: Vec<DetectorSpec>,
    /// One detector's window instead of the ladder: seconds (also 90s, 10m,
    /// 1h, 30d), or `none` (never cleared); threshold from --threshold (9).
    #[arg(long, value_name = "SECONDS|none", allow_hyphen_values = true)]
    pub window: Option<WindowLen>,
    /// One detector's threshold instead of the ladder (window from --window,
    /// 1h): alert when the distinct failed pairs exceed N (N ≥ 1).
    #[arg(long, value_name = "N", value_parser = parse_threshold, allow_negative_numbers = true)]
    pub threshold: Option<u32>,
    /// How windows move (R6.1): `sliding` (phase-free: failures within the
    /// last window length; the default) or `tumbling` (the paper's: aligned
    /// to the clock, all counts cleared when the window elapses) [default:
    /// sliding; tumbling with replay --sweep].
    #[arg(long, value_enum, value_name = "MODE")]
    pub window_mode: Option<WindowMode>,
    /// R5.1: an attempt not Established this long after its SYN failed
    /// (seconds, or 500ms, 2m …).
    #[arg(
        long,
        default_value = "60",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub handshake_timeout: HumanDuration,
    /// R4.4: whitelist file (`slowscan learn` output); traffic to its
    /// destinations is not analysed.
    #[arg(long, value_name = "FILE")]
    pub whitelist: Option<PathBuf>,
    /// R4.6: sources never analysed (vulnerability scanners, monitoring):
    /// comma-separated IPv4/IPv6 prefixes (198.51.100.0/24,2001:db8::/32) or
    /// a file of them, one per line.
    #[arg(long, value_name = "CIDR,…|FILE")]
    pub ignore_sources: Option<String>,
    /// R4.5: a destination Established within this long is a live service;
    /// failures to it are outages, counted toward no detector [default: 30d;
    /// with replay --sweep: no service map unless given].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub service_memory: Option<HumanDuration>,
    /// R4.5: turn the service map off (every failure counts).
    #[arg(long, overrides_with = "service_map")]
    pub no_service_map: bool,
    /// R4.5: the service map on (the default; overrides the config file).
    #[arg(long, overrides_with = "no_service_map")]
    pub service_map: bool,
    /// Cap on live services; when full, the least recently Established of a
    /// sample is forgotten (counted).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SERVICES as u64,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_services: u64,
    /// R4.3: ports ≥ 1024 that are services besides 1–1023 (for learning and
    /// the service map), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "PORT,…", allow_negative_numbers = true,
          default_values_t = LearnConfig::default().eligible_high_ports,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub eligible_high_ports: Vec<u16>,
    /// Cap on pending attempts; when full, the oldest is decided Failed early
    /// (counted as evicted).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PENDING as u64,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending: u64,
    /// Cap on tracked sources; when full, a source with few failures is
    /// forgotten (counted as evicted).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SOURCES as u64,
          allow_negative_numbers = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sources: u64,
    /// R9: the organisation's own address space (comma-separated prefixes,
    /// or a file of them). A source inside is a host (its MAC, on the
    /// monitored segment) or its address (routed); one outside is its
    /// --outside-prefix; by default the private, shared, unique-local and
    /// link-local ranges
    /// [default: 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,169.254.0.0/16,fc00::/7,fe80::/10].
    #[arg(long, value_name = "CIDR,…|FILE")]
    pub home_nets: Option<String>,
    /// R9: the prefix a source outside the home networks is counted under,
    /// per family (`v4=/24,v6=/48`; /32 and /128 count each address).
    #[arg(long, value_name = "v4=/LEN,v6=/LEN", default_value = "v4=/32,v6=/64")]
    pub outside_prefix: String,
    /// R9: what failures are counted under: `hosts` (a host on the segment
    /// by its MAC, a routed source by its address, an outside source by its
    /// prefix) or `addresses` (every source address apart, the paper's R6).
    #[arg(long, value_enum, value_name = "RULE", default_value = "hosts")]
    pub count_by: CountBy,
    /// The `--config` file these options were merged with, if any.
    #[arg(skip)]
    pub config: Option<ConfigFile>,
}

/// Fleet options (docs/fleet.md), shared by `run`, `collect` and
/// `follow-zeek`.
#[derive(Args, Clone, Debug)]
pub struct FleetArgs {
    /// Join a fleet of sensors sharing their counts through Redis (Cluster or
    /// one server): redis://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…], or
    /// rediss:// for TLS (docs/fleet.md).
    #[arg(long, value_name = "URLS")]
    pub fleet: Option<String>,
    /// With --fleet: this sensor's site, when sites reuse private address
    /// space: addresses inside the home networks are then shared only among
    /// the sensors of the same site (docs/fleet.md).
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub fleet_site: Option<String>,
}

impl FleetArgs {
    /// With `--fleet`: the client's configuration for the sensor named
    /// `sensor_name` detecting with `engine` (its detectors, its home
    /// networks for `--fleet-site`). The engine must then export its
    /// counted failures (`EngineConfig::export_failures`).
    pub fn config(
        &self,
        sensor_name: &str,
        engine: &EngineArgs,
    ) -> anyhow::Result<Option<slowscan::fleet::FleetConfig>> {
        let Some(urls) = &self.fleet else {
            return Ok(None);
        };
        let url =
            slowscan::fleet::FleetUrl::parse(urls).map_err(|e| anyhow::anyhow!("--fleet: {e}"))?;
        let mut f = slowscan::fleet::FleetConfig::new(url, sensor_name, &engine.detectors()?)?
            .with_site(self.fleet_site.as_deref())?;
        f.home_nets = engine.identity_config()?.home_nets;
        Ok(Some(f))
    }
}

/// What failures are counted under (R9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CountBy {
    Hosts,
    Addresses,
}

fn parse_threshold(s: &str) -> Result<u32, String> {
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n < 1 {
        return Err(format!(
            "`{s}`: a threshold must be at least 1 (an alert fires when the count exceeds it)"
        ));
    }
    u32::try_from(n).map_err(|_| format!("`{s}` is too large"))
}

/// `WINDOW:THRESHOLD` as given to `--detector`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorSpec {
    pub window: WindowLen,
    pub threshold: u32,
}

impl FromStr for DetectorSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (w, t) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not WINDOW:THRESHOLD (e.g. 1h:9, 30d:24, none:9)"))?;
        Ok(Self {
            window: w.parse()?,
            threshold: parse_threshold(t)?,
        })
    }
}

impl EngineArgs {
    /// `flag` as an error names it: the config file's key when its value
    /// came from there.
    fn origin(&self, flag: &str) -> String {
        self.config
            .as_ref()
            .and_then(|c| c.name(flag))
            .unwrap_or_else(|| flag.to_string())
    }

    /// The mode windows move in: `--window-mode`, else sliding (or `default`).
    pub fn mode_or(&self, default: WindowMode) -> WindowMode {
        self.window_mode.unwrap_or(default)
    }

    /// The detectors selected: `--detector`s, or one from `--window` and
    /// `--threshold`, or the default ladder; in `--window-mode` (sliding).
    pub fn detectors(&self) -> anyhow::Result<Vec<DetectorConfig>> {
        let mode = self.mode_or(WindowMode::Sliding);
        let specs: Vec<DetectorSpec> = if !self.detectors.is_empty() {
            self.detectors.clone()
        } else if self.window.is_some() || self.threshold.is_some() {
            vec![DetectorSpec {
                window: self.window.unwrap_or(WindowLen(Some(3600 * 1_000_000_000))),
                threshold: self.threshold.unwrap_or(9),
            }]
        } else {
            return Ok(DetectorConfig::default_ladder()
                .into_iter()
                .map(|d| DetectorConfig {
                    window: WindowLen(d.window.length_ns()).window(mode),
                    ..d
                })
                .collect());
        };
        let mut out: Vec<DetectorConfig> = Vec::new();
        for s in specs {
            let d = DetectorConfig {
                window: s.window.window(mode),
                threshold: s.threshold,
            };
            anyhow::ensure!(
                !out.contains(&d),
                "{} {} is given twice",
                self.origin("--detector"),
                d.name()
            );
            out.push(d);
        }
        Ok(out)
    }

    /// R4.3 eligibility (learning and the service map).
    pub fn learn_config(&self) -> LearnConfig {
        LearnConfig {
            eligible_high_ports: self.eligible_high_ports.clone(),
        }
    }

    /// The ignore list of `--ignore-sources`, if given.
    pub fn ignore_list(&self) -> anyhow::Result<Option<IgnoreList>> {
        self.ignore_sources
            .as_deref()
            .map(|spec| IgnoreList::parse_spec(spec).context(self.origin("--ignore-sources")))
            .transpose()
    }

    /// The file `--ignore-sources` names, when it names one (not a list of
    /// prefixes): a running sensor rereads it at SIGHUP and `slowscan
    /// ignore` keeps it in step.
    pub fn ignore_file(&self) -> Option<PathBuf> {
        let spec = self.ignore_sources.as_deref()?;
        (!IgnoreList::spec_is_list(spec)).then(|| PathBuf::from(spec.trim()))
    }

    /// R9: `--home-nets`, `--outside-prefix` and `--count-by`.
    pub fn identity_config(&self) -> anyhow::Result<IdentityConfig> {
        let mut cfg = match self.count_by {
            CountBy::Hosts => IdentityConfig::default(),
            CountBy::Addresses => IdentityConfig::addresses_only(),
        };
        if let Some(spec) = &self.home_nets {
            cfg.home_nets = HomeNets::parse_spec(spec).context(self.origin("--home-nets"))?;
        }
        if self.count_by == CountBy::Hosts {
            IdentityConfig::parse_outside_prefix(&self.outside_prefix, &mut cfg)
                .context(self.origin("--outside-prefix"))?;
        }
        Ok(cfg)
    }

    /// The engine configuration (no per-source report, no learning): loads
    /// and checks the whitelist and ignore files.
    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let timeout = self.handshake_timeout.0;
        anyhow::ensure!(
            !timeout.is_zero(),
            "{} must be longer than 0 s (the project's default is 60)",
            self.origin("--handshake-timeout")
        );
        let handshake_timeout_ns = u64::try_from(timeout.as_nanos()).ok().with_context(|| {
            format!(
                "{} is too long (at most about 584 years)",
                self.origin("--handshake-timeout")
            )
        })?;
        let memory = self
            .service_memory
            .map_or(Duration::from_nanos(DEFAULT_SERVICE_MEMORY_NS), |d| d.0);
        anyhow::ensure!(
            !memory.is_zero(),
            "{} must be longer than 0 s (or turn the map off with --no-service-map)",
            self.origin("--service-memory")
        );
        let whitelist = match &self.whitelist {
            Some(path) => Some(Whitelist::load(path)?),
            None => None,
        };
        Ok(EngineConfig {
            handshake_timeout_ns,
            detectors: self.detectors()?,
            max_pending: usize::try_from(self.max_pending).unwrap_or(usize::MAX),
            max_sources: usize::try_from(self.max_sources).unwrap_or(usize::MAX),
            whitelist,
            services: (!self.no_service_map).then(|| ServiceMapConfig {
                memory_ns: u64::try_from(memory.as_nanos()).unwrap_or(u64::MAX),
                max_services: usize::try_from(self.max_services).unwrap_or(usize::MAX),
                eligible: self.learn_config(),
            }),
            ignore: self.ignore_list()?,
            identity: self.identity_config()?,
            ..EngineConfig::default()
        })
    }
}

/// R6.1 window modes (`none` is a window length, see [`WindowLen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WindowMode {
    Tumbling,
    Sliding,
}

/// A window length in whole nanoseconds, or `None` for `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowLen(pub Option<u64>);

impl WindowLen {
    pub fn window(self, mode: WindowMode) -> Window {
        match (self.0, mode) {
            (None, _) => Window::None,
            (Some(ns), WindowMode::Tumbling) => Window::Tumbling(ns),
            (Some(ns), WindowMode::Sliding) => Window::Sliding(ns),
        }
    }
}

impl FromStr for WindowLen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(Self(None));
        }
        let d: HumanDuration = s.parse().map_err(|e| format!("{e}, or `none`"))?;
        if d.0.is_zero() {
            return Err("a window must be longer than 0 s (or `none`, never cleared)".into());
        }
        let ns = u64::try_from(d.0.as_nanos()).unwrap_or(u64::MAX);
        if ns > MAX_WINDOW_NS {
            return Err(format!(
                "`{s}` is longer than the longest window, 90d (or `none`, never cleared)"
            ));
        }
        Ok(Self(Some(ns)))
    }
}

/// `600 s`, `0.5 s`, `none`: how windows are named in tables.
impl fmt::Display for WindowLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some(ns) if ns % 1_000_000_000 == 0 => write!(f, "{} s", ns / 1_000_000_000),
            Some(ns) => write!(f, "{} s", ns as f64 / 1e9),
        }
    }
}

/// `90`, `90s`, `500ms`, `5m`, `2h`, `1d` (a bare number is seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.starts_with('-') {
            return Err(format!("`{s}`: a duration cannot be negative"));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let not_a_duration =
            || format!("`{s}` is not a duration: write e.g. 90, 90s, 500ms, 5m, 2h or 1d");
        let n: f64 = num.parse().map_err(|_| not_a_duration())?;
        let mul = match unit.trim() {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => {
                return Err(format!(
                    "`{s}`: unknown unit `{other}` (use ms, s, m, h or d)"
                ));
            }
        };
        Duration::try_from_secs_f64(n * mul)
            .map(Self)
            .map_err(|_| format!("`{s}` is too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        engine: EngineArgs,
    }

    fn parse(args: &[&str]) -> Result<EngineArgs, String> {
        let argv = std::iter::once("t").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .map(|c| c.engine)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_engine_defaults() {
        let cfg = parse(&[]).unwrap().engine_config().unwrap();
        let def = EngineConfig::default();
        assert_eq!(cfg.detectors, def.detectors);
        assert_eq!(cfg.detectors, DetectorConfig::default_ladder());
        assert!(
            cfg.detectors
                .iter()
                .all(|d| matches!(d.window, Window::Sliding(_)))
        );
        assert_eq!(cfg.handshake_timeout_ns, def.handshake_timeout_ns);
        assert_eq!(cfg.max_pending, def.max_pending);
        assert_eq!(cfg.max_sources, def.max_sources);
        assert_eq!(cfg.services, def.services);
        assert!(cfg.whitelist.is_none() && cfg.learn.is_none() && !cfg.report);
    }

    #[test]
    fn r6_3_detectors_and_single_window() {
        let s = 1_000_000_000;
        let d = parse(&["--detector", "1h:9", "--detector", "30d:24"])
            .unwrap()
            .detectors()
            .unwrap();
        assert_eq!(
            d,
            vec![
                DetectorConfig {
                    window: Window::Sliding(3600 * s),
                    threshold: 9
                },
                DetectorConfig {
                    window: Window::Sliding(30 * 86400 * s),
                    threshold: 24
                }
            ]
        );
        assert_eq!(d[1].name(), "30d:24");
        let d = parse(&["--detector", "90d:40", "--detector", "none:9"])
            .unwrap()
            .detectors()
            .unwrap();
        assert_eq!(d[1].window, Window::None);
        let d = parse(&["--detector", "10m:4", "--window-mode", "tumbling"])
            .unwrap()
            .detectors()
            .unwrap();
        assert_eq!(d[0].window, Window::Tumbling(600 * s));
        // --window/--threshold: one detector, the other defaulted.
        let d = parse(&["--window", "none", "--threshold", "4"])
            .unwrap()
            .detectors()
            .unwrap();
        assert_eq!(
            d,
            vec![DetectorConfig {
                window: Window::None,
                threshold: 4
            }]
        );
        let d = parse(&["--window", "600"]).unwrap().detectors().unwrap();
        assert_eq!(
            d,
            vec![DetectorConfig {
                window: Window::Sliding(600 * s),
                threshold: 9
            }]
        );
        let d = parse(&["--threshold", "5", "--window-mode", "tumbling"])
            .unwrap()
            .detectors()
            .unwrap();
        assert_eq!(d[0].window, Window::Tumbling(3600 * s));
        assert_eq!(WindowLen(Some(1_500_000_000)).to_string(), "1.5 s");
        assert_eq!(WindowLen(None).to_string(), "none");
    }

    #[test]
    fn bad_values_are_explained() {
        let cases: [(&[&str], &str); 15] = [
            (&["--window", "0"], "longer than 0 s"),
            (&["--window", "soon"], "not a duration"),
            (&["--window", "5 parsecs"], "unknown unit"),
            (&["--window", "91d"], "90d"),
            (&["--detector", "91d:30"], "90d"),
            (&["--detector", "1h"], "WINDOW:THRESHOLD"),
            (&["--detector", "1h:0"], "at least 1"),
            (&["--detector", "1h:-3"], "at least 1"),
            (&["--threshold", "0"], "at least 1"),
            (&["--threshold", "many"], "--threshold"),
            (&["--detector", "1h:9", "--window", "1h"], "--window"),
            (&["--detector", "1h:9", "--threshold", "4"], "--threshold"),
            (&["--window-mode", "hopping"], "tumbling"),
            (&["--eligible-high-ports", "0"], "--eligible-high-ports"),
            (&["--max-pending", "0"], "--max-pending"),
        ];
        for (args, want) in cases {
            let e = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} accepted"));
            assert!(e.contains(want), "{args:?}: {e}");
        }
        // Negative values, space-separated, reach the parser that names the
        // flag (not clap's "unexpected argument").
        let negative: [(&[&str], &str); 9] = [
            (&["--threshold", "-3"], "at least 1"),
            (&["--window", "-600"], "negative"),
            (&["--detector", "-1h:9"], "negative"),
            (&["--handshake-timeout", "-5"], "negative"),
            (&["--service-memory", "-1d"], "negative"),
            (&["--max-pending", "-1"], "--max-pending"),
            (&["--max-sources", "-1"], "--max-sources"),
            (&["--max-services", "-1"], "--max-services"),
            (&["--eligible-high-ports", "-8080"], "--eligible-high-ports"),
        ];
        for (args, want) in negative {
            let e = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} accepted"));
            assert!(
                e.contains(args[0]) && e.contains(want) && !e.contains("unexpected argument"),
                "{args:?}: {e}"
            );
        }
        let e = parse(&["--detector", "1h:9", "--detector", "1h:9"])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("--detector 1h:9 is given twice"),
            "{e:#}"
        );
        let e = parse(&["--handshake-timeout", "0"])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert!(format!("{e:#}").contains("longer than 0 s"), "{e:#}");
        let e = parse(&["--whitelist", "/nonexistent/wl.json"])
            .unwrap()
            .engine_config()
            .unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/wl.json"), "{e:#}");
    }
}
