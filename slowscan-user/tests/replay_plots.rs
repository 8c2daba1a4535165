//! `slowscan replay --plots DIR` on a generated capture (replay_gen: ~900
//! clients, noisy clients, a misconfigured one, a slow scanner): six
//! figures (SVG and PNG of Fig. 1, Fig. 6 and the alert timeline) that are
//! what they claim to be, and plots.json whose numbers match the report and
//! an independent count of the capture's attempts.
//!
//! `SLOWSCAN_PLOTS_KEEP=DIR` also copies the figures and plots.json there:
//! that is how docs/img/ was made (docs/replay.md).

mod replay_gen;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    ffi::OsStr,
    fs,
    net::IpAddr,
};

use replay_gen::{SCANNER, Traffic, write_capture};
use serde_json::Value;
use slowscan::{
    capture::CaptureReader,
    engine::ip_from,
    frame::{FrameOutcome, parse_frame_info},
};
use slowscan_common::tcp;
use slowscan_testkit::{Cli, TempDir};

const FIGURES: [&str; 3] = [
    "hosts-by-ports-used",
    "hosts-by-failed-pairs",
    "alerts-timeline",
];

/// Hosts per bucket of `plots.json`'s histogram, for counts `n`.
fn bucketed(hist: &Value, counts: impl Iterator<Item = u64>) -> Vec<u64> {
    let buckets = hist["buckets"].as_array().unwrap();
    let mut out = vec![0; buckets.len()];
    for n in counts {
        let i = buckets
            .iter()
            .position(|b| {
                n >= b["min"].as_u64().unwrap() && b["max"].as_u64().is_none_or(|m| n <= m)
            })
            .unwrap_or_else(|| panic!("{n} in no bucket of {hist}"));
        out[i] += 1;
    }
    out
}

fn hosts(hist: &Value) -> Vec<u64> {
    hist["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["hosts"].as_u64().unwrap())
        .collect()
}

#[test]
fn replay_plots_draws_the_papers_figures_from_the_report() {
    let dir = TempDir::new("plots");
    let pcap = dir.join("generated.pcap");
    let t = Traffic {
        packets: 60_000,
        failed_per_10k: 100,
        ..Traffic::default()
    };
    write_capture(&pcap, &t).unwrap();
    let plots = dir.join("plots");
    let report = dir.join("report.json");
    let alerts = dir.join("alerts.jsonl");
    Cli(env!("CARGO_BIN_EXE_slowscan")).ok([
        OsStr::new("replay"),
        pcap.as_ref(),
        "--plots".as_ref(),
        plots.as_ref(),
        "--report".as_ref(),
        report.as_ref(),
        "--alerts".as_ref(),
        alerts.as_ref(),
    ]);

    // Six figures, each what its extension says.
    for name in FIGURES {
        let svg = fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
        let root = svg
            .find("<svg")
            .unwrap_or_else(|| panic!("{name}.svg: no <svg"));
        assert!(
            svg[..root].trim().is_empty() || svg[..root].trim_start().starts_with("<?xml"),
            "{name}.svg: the root element is not <svg>"
        );
        assert!(
            svg.trim_end().ends_with("</svg>"),
            "{name}.svg is cut short"
        );
        assert!(svg.contains("<text"), "{name}.svg has no text");
        let png = fs::read(plots.join(format!("{name}.png"))).unwrap();
        assert!(png.len() > 2000, "{name}.png: {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is not a PNG");
        // IHDR: the size the figures are drawn at.
        assert_eq!(&png[12..16], b"IHDR");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (960, 600), "{name}.png");
    }
    let pj: Value =
        serde_json::from_str(&fs::read_to_string(plots.join("plots.json")).unwrap()).unwrap();
    let r: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let listed: Vec<&str> = pj["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 6, "{listed:?}");

    // Fig. 6: the report's per-source failed pairs, bucketed.
    let sources = r["sources"].as_object().unwrap();
    let failed: Vec<u64> = sources
        .values()
        .map(|s| s["failed_pairs"].as_u64().unwrap())
        .filter(|&n| n > 0)
        .collect();
    let fig6 = &pj["hosts_by_failed_pairs"];
    assert_eq!(hosts(fig6), bucketed(fig6, failed.iter().copied()));
    assert_eq!(fig6["hosts"].as_u64().unwrap(), failed.len() as u64);
    assert!(
        failed.len() > 10,
        "too few failing hosts to mean much: {failed:?}"
    );
    // The scanner (36 probes, one port each) is alone in its bucket.
    let scanner = sources[&SCANNER.to_string()]["failed_pairs"]
        .as_u64()
        .unwrap();
    assert_eq!(scanner, 36, "{}", sources[&SCANNER.to_string()]);
    assert_eq!(
        bucketed(fig6, [scanner].into_iter())[6],
        1,
        "36 is in 33–64"
    );
    assert_eq!(hosts(fig6)[6], 1, "{fig6}");

    // Fig. 1: distinct destination ports of each source's attempts (R1),
    // counted here from the capture with the library's parser.
    let mut used: HashMap<IpAddr, HashSet<u16>> = HashMap::new();
    let mut reader = CaptureReader::open(&pcap).unwrap();
    while let Some(p) = reader.next_packet().unwrap() {
        if let (FrameOutcome::Record(rec), _) =
            parse_frame_info(p.link, p.data, p.wire_len, p.ts_ns)
            && tcp::is_attempt(rec.tcp_flags)
        {
            used.entry(ip_from(rec.family, &rec.src_addr))
                .or_default()
                .insert(rec.dst_port);
        }
    }
    let fig1 = &pj["hosts_by_ports_used"];
    assert_eq!(
        hosts(fig1),
        bucketed(fig1, used.values().map(|s| s.len() as u64))
    );
    // The same hosts as the report (no whitelist, no ignore list here).
    assert_eq!(used.len(), sources.len());
    assert_eq!(fig1["hosts"].as_u64().unwrap(), sources.len() as u64);
    assert_eq!(pj["sources_not_counted"], 0);
    let spread: usize = hosts(fig1).iter().filter(|&&n| n > 0).count();
    assert!(spread >= 3, "Fig. 1 in fewer than 3 buckets: {fig1}");

    // The timeline: every detector of the report, with its alert count.
    let timeline = pj["alerts_timeline"].as_array().unwrap();
    let detectors = r["detectors"].as_array().unwrap();
    assert_eq!(timeline.len(), detectors.len());
    let by_name: BTreeMap<&str, u64> = timeline
        .iter()
        .map(|d| {
            (
                d["detector"].as_str().unwrap(),
                d["alerts"].as_u64().unwrap(),
            )
        })
        .collect();
    let total: u64 = by_name.values().sum();
    assert_eq!(total, r["alerts"].as_u64().unwrap());
    let lines = fs::read_to_string(dir.join("alerts.jsonl")).unwrap();
    assert_eq!(lines.lines().count() as u64, total);
    assert!(by_name["1h:9"] >= 1, "{by_name:?}");
    for (d, t) in detectors.iter().zip(timeline) {
        assert_eq!(d["alerts"], t["alerts"], "{d} vs {t}");
    }

    if let Some(keep) = std::env::var_os("SLOWSCAN_PLOTS_KEEP") {
        fs::create_dir_all(&keep).unwrap();
        for f in listed.iter().copied().chain(["plots.json"]) {
            fs::copy(plots.join(f), std::path::Path::new(&keep).join(f)).unwrap();
        }
        for f in ["alerts.jsonl", "report.json"] {
            fs::copy(dir.join(f), std::path::Path::new(&keep).join(f)).unwrap();
        }
    }
}
