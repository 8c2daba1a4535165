//! `slowscan replay` as the real binary, for the tests that read its report
//! and alerts (replay_filters, replay_tunnels).

use std::{collections::BTreeSet, fs, net::IpAddr, path::Path};

use serde_json::Value;
use slowscan_testkit::Cli;

pub const SLOWSCAN: Cli = Cli(env!("CARGO_BIN_EXE_slowscan"));

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `slowscan replay CAPTURE --report … --alerts … ARGS`: the report and the
/// alerting sources.
pub fn replay(dir: &Path, capture: &Path, args: &[&str]) -> (Value, BTreeSet<IpAddr>) {
    let (report, alerts) = (dir.join("report.json"), dir.join("alerts.jsonl"));
    let mut argv = vec![
        "replay",
        s(capture),
        "--report",
        s(&report),
        "--alerts",
        s(&alerts),
    ];
    argv.extend(args);
    SLOWSCAN.ok(&argv);
    let r: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let sources = fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| {
            let a: Value = serde_json::from_str(l).unwrap();
            ip(a["source"]["ip"].as_str().expect("source.ip"))
        })
        .collect();
    (r, sources)
}

/// A counter of the report's `engine` section.
pub fn engine(r: &Value, k: &str) -> u64 {
    r["engine"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("engine.{k}: {r}"))
}
