//! Detection options shared by the commands that run the engine
//! (`replay`, `learn`; `run` can flatten the same [`EngineArgs`]).
//!
//! Bad values are refused when the command line is parsed, with a message
//! that says what to write instead; [`EngineArgs::engine_config`] adds the
//! checks that need more than one option or a file (the whitelist).
use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;
use clap::{Args, ValueEnum};
use slowscan::engine::{
    DEFAULT_MAX_PENDING, DEFAULT_MAX_SOURCES, DetectorConfig, EngineConfig, Whitelist, Window,
};

/// Engine options: R5.1 handshake timeout, R6 window and threshold, R4.4
/// whitelist, memory caps.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Detection (METHOD.md R4–R6)")]
pub struct EngineArgs {
    /// R6.1 time window: seconds (also 90s, 10m, 1h), or `none` (never cleared).
    #[arg(long, default_value = "3600", value_name = "SECONDS|none")]
    pub window: WindowLen,
    /// R6.1: `tumbling` (the paper's: all counts cleared when the window
    /// elapses) or `sliding` (failures within the last window length).
    #[arg(long, value_enum, default_value_t = WindowMode::Tumbling)]
    pub window_mode: WindowMode,
    /// R6: a source is reported when its distinct failed (host, port) pairs
    /// in the window exceed N.
    #[arg(long, default_value_t = 9, value_name = "N")]
    pub threshold: u32,
    /// R5.1: an attempt not Established this long after its SYN failed
    /// (seconds, or 500ms, 2m …).
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    pub handshake_timeout: HumanDuration,
    /// R4.4: whitelist file (`slowscan learn` output); traffic to its
    /// destinations is not analysed.
    #[arg(long, value_name = "FILE")]
    pub whitelist: Option<PathBuf>,
    /// Cap on pending attempts; when full, the oldest is decided Failed early
    /// (counted as evicted).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PENDING as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending: u64,
    /// Cap on tracked sources; when full, a source with few failures is
    /// forgotten (counted as evicted).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SOURCES as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sources: u64,
}

impl EngineArgs {
    /// The R6.1 window selected by `--window` and `--window-mode`.
    pub fn window(&self) -> Window {
        self.window.window(self.window_mode)
    }

    /// The one detector selected by `--window`, `--window-mode`, `--threshold`.
    pub fn detector(&self) -> DetectorConfig {
        DetectorConfig {
            window: self.window(),
            threshold: self.threshold,
        }
    }

    /// The engine configuration (one detector, no per-source report, no
    /// learning): loads and checks the whitelist file.
    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let timeout = self.handshake_timeout.0;
        anyhow::ensure!(
            !timeout.is_zero(),
            "--handshake-timeout must be longer than 0 s (the paper's project default is 60)"
        );
        let handshake_timeout_ns = u64::try_from(timeout.as_nanos())
            .ok()
            .context("--handshake-timeout is too long (at most about 584 years)")?;
        let whitelist = match &self.whitelist {
            Some(path) => Some(Whitelist::load(path)?),
            None => None,
        };
        Ok(EngineConfig {
            handshake_timeout_ns,
            detectors: vec![self.detector()],
            max_pending: usize::try_from(self.max_pending).unwrap_or(usize::MAX),
            max_sources: usize::try_from(self.max_sources).unwrap_or(usize::MAX),
            whitelist,
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
        let ns = u64::try_from(d.0.as_nanos())
            .map_err(|_| format!("`{s}` is too long for a window (use `none`)"))?;
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
        assert_eq!(cfg.handshake_timeout_ns, def.handshake_timeout_ns);
        assert_eq!(cfg.max_pending, def.max_pending);
        assert_eq!(cfg.max_sources, def.max_sources);
        assert!(cfg.whitelist.is_none() && cfg.learn.is_none() && !cfg.report);
    }

    #[test]
    fn r6_1_windows_and_modes() {
        let s = 1_000_000_000;
        let a = parse(&["--window", "none", "--threshold", "4"]).unwrap();
        assert_eq!(
            a.detector(),
            DetectorConfig {
                window: Window::None,
                threshold: 4
            }
        );
        let a = parse(&["--window", "10m", "--window-mode", "sliding"]).unwrap();
        assert_eq!(a.window(), Window::Sliding(600 * s));
        let a = parse(&["--window", "600"]).unwrap();
        assert_eq!(a.window(), Window::Tumbling(600 * s));
        assert_eq!(a.window.to_string(), "600 s");
        let a = parse(&["--window", "1.5"]).unwrap();
        assert_eq!(a.window(), Window::Tumbling(1_500_000_000));
        assert_eq!(WindowLen(None).to_string(), "none");
    }

    #[test]
    fn bad_values_are_explained() {
        let cases: [(&[&str], &str); 9] = [
            (&["--window", "0"], "longer than 0 s"),
            (&["--window", "soon"], "not a duration"),
            (&["--window", "5 parsecs"], "unknown unit"),
            (&["--window-mode", "hopping"], "tumbling"),
            (&["--threshold", "many"], "--threshold"),
            (&["--handshake-timeout", "five"], "not a duration"),
            (
                &["--handshake-timeout", "99999999999999999999d"],
                "too long",
            ),
            (&["--max-pending", "0"], "--max-pending"),
            (&["--max-sources", "lots"], "--max-sources"),
        ];
        for (args, want) in cases {
            let e = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} accepted"));
            assert!(e.contains(want), "{args:?}: {e}");
        }
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
