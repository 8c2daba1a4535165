//! The default detectors over long captures: with no detection flags,
//! `slowscan replay` must find slow scans from the paper's pace (12 probes
//! 300 s apart) down to one probe a day for a month (R6.1 phase-free
//! windows, R6.3 several detectors), while the service map (R4.5) keeps
//! outages, a monitoring host, misconfigured clients and clients with up to
//! 8 stale bookmarks in 30 days from raising anything.
//!
//! Captures come from `longnet` (month-long synthetic internal networks,
//! IPv4 and IPv6); `longnet::reference` is an independent analysis of the
//! generator's own attempt list (R5, R4.5, sliding-window counts) that the
//! month test and `reference_analysis_of_the_month` use. That test prints
//! the tables behind docs/detectors.md:
//!
//! ```sh
//! cargo test -p slowscan-user --test horizon reference_analysis -- --nocapture
//! SLOWSCAN_LADDER=1h:9,1d:12,7d:16,30d:20 cargo test …   # another ladder
//! ```

mod longnet;

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    fmt::Write as _,
    fs,
    net::IpAddr,
    path::Path,
};

use longnet::{
    Config, DAY_S, Family, HOUR_S, MINUTE_S, Network, Pace, Placement, Role, SECOND_NS, ScanShape,
    ScanSpec, StaleSpec, THIRTY_DAYS_S, generate,
    reference::{self, Analysis, Detector, duration_label, first_exceeding, span_label},
};
use serde_json::Value;
use slowscan_testkit::{Cli, TempDir};

/// The product's default ladder, as the engine defines it: the ladder the
/// reference analysis checks and tabulates (`SLOWSCAN_LADDER` tries another).
fn default_ladder() -> String {
    slowscan::engine::DetectorConfig::default_ladder()
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// Ladders compared by `reference_analysis_of_the_month`.
const CANDIDATES: [&str; 5] = [
    "1h:9,1d:16,7d:20,30d:24",
    "1h:9,1d:16,7d:18,30d:20",
    "1h:9,1d:15,7d:17,30d:18",
    "1h:9,1d:16,30d:20",
    "1h:9,6h:12,1d:16,14d:19,30d:20",
];

/// Windows of the reference table.
const WINDOWS_S: [u64; 6] = [HOUR_S, 6 * HOUR_S, DAY_S, 7 * DAY_S, 14 * DAY_S, 30 * DAY_S];

fn ladder() -> Vec<Detector> {
    reference::ladder(&std::env::var("SLOWSCAN_LADDER").unwrap_or_else(|_| default_ladder()))
}

/// The address space of the generated networks.
const HOME_NETS: &str = "198.51.100.0/24,203.0.113.0/24,2001:db8::/32";

/// `slowscan replay FILES… --report R --alerts A` with no detection flags:
/// the report and the alerts.
fn replay_with_defaults(dir: &Path, net: &Network) -> (Value, Vec<Value>) {
    let report = dir.join("report.json");
    let alerts = dir.join("alerts.jsonl");
    let mut args: Vec<&OsStr> = vec!["replay".as_ref()];
    args.extend(net.files.iter().map(|f| f.as_os_str()));
    args.extend(["--report".as_ref(), report.as_os_str()]);
    args.extend(["--alerts".as_ref(), alerts.as_os_str()]);
    // The generated network's own address space (R9): its hosts are inside.
    args.extend::<[&OsStr; 2]>(["--home-nets".as_ref(), HOME_NETS.as_ref()]);
    Cli(env!("CARGO_BIN_EXE_slowscan")).ok(args);
    let r: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let a = fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("alert {l:?}: {e}")))
        .collect();
    (r, a)
}

fn source_ip(alert: &Value) -> IpAddr {
    alert["source"]["ip"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("source.ip: {alert}"))
}

fn alerting(alerts: &[Value]) -> BTreeSet<IpAddr> {
    alerts.iter().map(source_ip).collect()
}

/// `1h:9 sliding` from an alert's `slowscan` fields.
fn detector_of(alert: &Value) -> String {
    let s = &alert["slowscan"];
    let window = match s["window"]["seconds"].as_u64() {
        Some(w) => duration_label(w),
        None => "none".into(),
    };
    let mode = s["window"]["mode"].as_str().unwrap_or("?");
    format!("{window}:{} {mode}", s["threshold"])
}

/// The sources of `want` that raised no alert, with their role.
fn missing(net: &Network, want: &BTreeSet<IpAddr>, alerts: &[Value]) -> Vec<String> {
    let got = alerting(alerts);
    want.iter()
        .filter(|a| !got.contains(a))
        .map(|a| format!("{a} ({})", net.hosts[a].label()))
        .collect()
}

/// Alerts of sources outside `allowed`, one line each.
fn unexpected(net: &Network, allowed: &BTreeSet<IpAddr>, alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .filter(|a| !allowed.contains(&source_ip(a)))
        .map(|a| {
            let ip = source_ip(a);
            let role = net.hosts.get(&ip).map_or("unknown".into(), |r| r.label());
            format!(
                "{ip} ({role}): {} failed pairs, detector {}",
                a["slowscan"]["failed_pairs"],
                detector_of(a)
            )
        })
        .collect()
}

#[test]
fn month_with_the_defaults_alerts_every_scanner_and_no_benign_host() {
    let dir = TempDir::new("horizon-month");
    let net = generate(&dir, &Config::month()).unwrap();
    let truth = reference::analyse(&net.attempts);
    let (report, alerts) = replay_with_defaults(&dir, &net);

    // The capture holds what the generator says (R5 decided the same way).
    assert_eq!(report["complete"], true);
    assert_eq!(report["packets"], net.packets, "packets");
    assert_eq!(report["attempts"], truth.attempts, "attempts (R1)");
    assert_eq!(report["established"], truth.established, "Established (R5)");

    let scanners = net.scanner_addrs();
    assert_eq!(scanners.len(), 10, "a scanner per pace per family");
    let lost = missing(&net, &scanners, &alerts);
    assert!(lost.is_empty(), "scanners without an alert: {lost:#?}");
    let false_alerts = unexpected(&net, &scanners, &alerts);
    assert!(
        false_alerts.is_empty(),
        "benign hosts alerted: {false_alerts:#?}"
    );

    // Each alert agrees with the reference: in the alert's window length the
    // source has more distinct counted failed pairs than the threshold (a
    // clock-aligned window of that length holds no more than a sliding one).
    for a in &alerts {
        let s = &a["slowscan"];
        let threshold = s["threshold"].as_u64().expect("threshold") as usize;
        let src = &truth.sources[&source_ip(a)];
        let most = match s["window"]["seconds"].as_u64() {
            Some(w) => src.max_distinct(w * SECOND_NS),
            None => src.max_distinct(u64::MAX / 2),
        };
        assert!(
            most > threshold,
            "{}: alert by {} but the reference counts at most {most}",
            source_ip(a),
            detector_of(a)
        );
    }
}

/// Replays `scans` alone (no other host) with the defaults; returns the
/// scans not detected and any other alert (the directory is kept when
/// there are some).
fn scanners_alone(name: &str, duration_s: u64, scans: Vec<ScanSpec>) -> Vec<String> {
    let mut dir = TempDir::new(&format!("horizon-{name}"));
    let cfg = Config {
        scans,
        ..Config::quiet(duration_s)
    };
    let net = generate(&dir, &cfg).unwrap();
    let want = net.scanner_addrs();
    assert_eq!(want.len(), cfg.scans.len());
    for s in &net.scanners {
        assert_eq!(s.probes, s.pace.probes(), "{name}: whole scans");
    }
    let (report, alerts) = replay_with_defaults(&dir, &net);
    assert_eq!(
        report["attempts"],
        net.attempts.len() as u64,
        "{name}: attempts"
    );
    assert_eq!(
        report["established"], 0,
        "{name}: every probe failed (R5.2)"
    );
    let got = alerting(&alerts);
    let mut problems: Vec<String> = net
        .scanners
        .iter()
        .filter(|s| !got.contains(&s.addr))
        .map(|s| {
            let phase = (s.first_probe_ns / SECOND_NS) % HOUR_S;
            format!(
                "{name}: no alert for {} ({}, first probe {phase} s past the hour)",
                s.addr,
                s.pace.label()
            )
        })
        .collect();
    problems.extend(
        unexpected(&net, &want, &alerts)
            .into_iter()
            .map(|p| format!("{name}: {p}")),
    );
    if !problems.is_empty() {
        dir.keep();
    }
    problems
}

#[test]
fn the_papers_scan_alerts_at_every_start_phase() {
    // 12 probes 300 s apart, starting 0, 600 … 3000 s past a full hour and
    // at odd offsets; a tumbling hour misses half of these (R6.1).
    let phases = [0, 600, 1200, 1800, 2400, 3000, 1, 299, 1337, 2999, 3599];
    let scans = phases
        .iter()
        .enumerate()
        .map(|(k, &phase)| ScanSpec {
            family: if k % 2 == 0 { Family::V4 } else { Family::V6 },
            pace: Pace::Paper,
            start_s: (2 * k as u64 + 1) * HOUR_S + phase,
            shape: [ScanShape::Vertical, ScanShape::Horizontal, ScanShape::Mixed][k % 3],
        })
        .collect();
    let problems = scanners_alone("phases", DAY_S, scans);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn each_required_pace_alerts_alone() {
    let mut problems = Vec::new();
    for pace in Pace::ALL {
        for family in [Family::V4, Family::V6] {
            let length = pace.interval_s() * u64::from(pace.probes());
            // An odd start: not aligned to any minute, hour or day.
            let start_s = 5 * HOUR_S + 17 * MINUTE_S + 13;
            let shape = match family {
                Family::V4 => ScanShape::Horizontal,
                Family::V6 => ScanShape::Vertical,
            };
            problems.extend(scanners_alone(
                &format!("{pace:?}-{family:?}"),
                start_s + length + HOUR_S,
                vec![ScanSpec {
                    family,
                    pace,
                    start_s,
                    shape,
                }],
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn eight_never_live_pairs_in_30_days_raise_nothing() {
    let d = DAY_S;
    let h = HOUR_S;
    let spec = |family, placement, start_s, repeats| StaleSpec {
        family,
        pairs: 8,
        placement,
        start_s,
        repeats,
    };
    use Family::*;
    use Placement::*;
    let stale = vec![
        spec(V4, Burst { within_s: 60 }, 2 * d + 9 * h, 0),
        spec(V4, Burst { within_s: 10 * 60 }, 3 * d + 13 * h + 55 * 60, 2),
        spec(V4, Burst { within_s: h }, 5 * d + 23 * h + 30 * 60, 3),
        spec(V4, Burst { within_s: d }, 8 * d, 1),
        spec(V4, Spread { span_s: 29 * d }, 600, 2),
        spec(
            V4,
            Clusters {
                clusters: 2,
                span_s: 20 * d,
            },
            4 * d,
            1,
        ),
        spec(V6, Burst { within_s: h }, 28 * d + 22 * h, 0),
        spec(
            V6,
            Clusters {
                clusters: 4,
                span_s: 28 * d,
            },
            h,
            2,
        ),
        spec(V6, Spread { span_s: 29 * d }, 7 * h, 1),
    ];
    let dir = TempDir::new("horizon-stale");
    let cfg = Config {
        stale,
        ..Config::quiet(30 * d)
    };
    let net = generate(&dir, &cfg).unwrap();
    let hosts = net.addrs_with_role(Role::StaleBookmarks);
    assert_eq!(hosts.len(), cfg.stale.len());
    let truth = reference::analyse(&net.attempts);
    for a in &hosts {
        assert_eq!(
            truth.sources[a].max_distinct(THIRTY_DAYS_S * SECOND_NS),
            8,
            "{a}: the generator gives 8 distinct pairs in 30 days"
        );
    }
    let (report, alerts) = replay_with_defaults(&dir, &net);
    for a in &hosts {
        let src = &report["sources"][a.to_string()];
        assert_eq!(src["failed_pairs"], 8, "{a}: report {src}");
        assert_eq!(src["established"], 0, "{a}: report {src}");
    }
    let raised = unexpected(&net, &BTreeSet::new(), &alerts);
    assert!(raised.is_empty(), "benign hosts alerted: {raised:#?}");
}

/// The reference analysis of the month network: the numbers behind the
/// default ladder and docs/detectors.md. Checks the generator's ground
/// truth against the product requirement, and that the ladder separates it.
#[test]
fn reference_analysis_of_the_month() {
    let dir = TempDir::new("horizon-reference");
    let net = generate(&dir, &Config::month()).unwrap();
    let truth = reference::analyse(&net.attempts);
    let ladder = ladder();
    println!(
        "month network: {} packets in {} files ({:.1} MB), {} attempts, {} Established, {} failed ({} to live services: outages)\n",
        net.packets,
        net.files.len(),
        net.bytes as f64 / 1e6,
        truth.attempts,
        truth.established,
        truth.failed,
        truth.outages
    );
    println!("{}", host_table(&net, &truth));
    println!("{}", scanner_table(&net, &truth, &ladder));
    println!("{}", pace_table(&ladder));
    println!("{}", variants_table(&ladder));
    println!("{}", candidates_table(&net, &truth));

    let month = THIRTY_DAYS_S * SECOND_NS;
    for (addr, role) in &net.hosts {
        let src = &truth.sources[addr];
        if let Role::Scanner(pace) = role {
            let all = src.max_distinct(u64::MAX / 2);
            assert_eq!(all, pace.probes() as usize, "{addr}: every probe counts");
            let fired = ladder
                .iter()
                .any(|d| src.fires_at(d.window_ns(), d.threshold).is_some());
            assert!(fired, "{addr} ({}) escapes the ladder", role.label());
        } else {
            assert!(
                src.max_distinct(month) <= 8,
                "{addr} ({}): more than 8 failed pairs in 30 days",
                role.label()
            );
            for d in &ladder {
                assert_eq!(
                    src.fires_at(d.window_ns(), d.threshold),
                    None,
                    "{addr} ({}) fires {}",
                    role.label(),
                    d.label()
                );
            }
        }
    }
    // Every kind of benign host is there, and the outages are real: the
    // monitoring host fails on them, and would count them without the
    // service map.
    for role in [
        Role::Client,
        Role::Monitor,
        Role::Misconfigured,
        Role::StaleBookmarks,
    ] {
        assert!(!net.addrs_with_role(role).is_empty(), "{role:?}");
    }
    for monitor in net.addrs_with_role(Role::Monitor) {
        let src = &truth.sources[&monitor];
        assert!(src.outages > 0, "{monitor}: fails during outages");
        assert!(src.counted.is_empty(), "{monitor}: only outages");
        assert!(src.max_distinct_without_service_map(month) > 8);
    }
    let stale_max = net
        .addrs_with_role(Role::StaleBookmarks)
        .iter()
        .map(|a| truth.sources[a].max_distinct(HOUR_S * SECOND_NS))
        .max();
    assert_eq!(stale_max, Some(8), "a burst of 8 pairs within an hour");
}

/// Per host kind: the largest number of distinct counted failed pairs in
/// any sliding window of each length (clients: the worst of them).
fn host_table(net: &Network, truth: &Analysis) -> String {
    let mut t = String::from(
        "Distinct failed pairs (outages excluded, R4.5) in the worst sliding window, per host\n",
    );
    let _ = write!(t, "| host | role | outage failures |");
    for w in WINDOWS_S {
        let _ = write!(t, " {} |", duration_label(w));
    }
    t.push_str(" 30d without the service map |\n|---|---|---|");
    t.push_str(&"---|".repeat(WINDOWS_S.len() + 1));
    t.push('\n');
    let mut rows: BTreeMap<(Role, String), Vec<IpAddr>> = BTreeMap::new();
    for (addr, role) in &net.hosts {
        let key = match role {
            Role::Client => "every client (the worst)".into(),
            _ => addr.to_string(),
        };
        rows.entry((*role, key)).or_default().push(*addr);
    }
    for ((role, name), addrs) in rows {
        let worst = |f: &dyn Fn(&reference::Source) -> usize| {
            addrs
                .iter()
                .map(|a| f(&truth.sources[a]))
                .max()
                .unwrap_or(0)
        };
        let _ = write!(
            t,
            "| {name} | {} | {} |",
            role.label(),
            worst(&|s| s.outages as usize)
        );
        for w in WINDOWS_S {
            let _ = write!(t, " {} |", worst(&|s| s.max_distinct(w * SECOND_NS)));
        }
        let _ = writeln!(
            t,
            " {} |",
            worst(&|s| s.max_distinct_without_service_map(THIRTY_DAYS_S * SECOND_NS))
        );
    }
    t
}

/// Per scanner: when each detector of the ladder (and each window at the
/// ladder's thresholds) fires, counted from the first probe.
fn scanner_table(net: &Network, truth: &Analysis, ladder: &[Detector]) -> String {
    let mut t = String::from("Scanners: time from the first probe to each detector's alert\n");
    t.push_str("| scanner | pace | probes |");
    for d in ladder {
        let _ = write!(t, " {} |", d.label());
    }
    t.push_str(" first |\n|---|---|---|");
    t.push_str(&"---|".repeat(ladder.len() + 1));
    t.push('\n');
    for s in &net.scanners {
        let src = &truth.sources[&s.addr];
        let _ = write!(t, "| {} | {} | {} |", s.addr, s.pace.label(), s.probes);
        let mut first: Option<u64> = None;
        for d in ladder {
            match src.fires_at(d.window_ns(), d.threshold) {
                Some(at) => {
                    first = Some(first.map_or(at, |f| f.min(at)));
                    let _ = write!(t, " {} |", span_label(at - s.first_probe_ns));
                }
                None => t.push_str(" — |"),
            }
        }
        let _ = writeln!(
            t,
            " {} |",
            first.map_or("never".into(), |f| span_label(f - s.first_probe_ns))
        );
    }
    t
}

/// Probe rates each detector catches, and after how long: a scan at a
/// fixed interval to a new pair each probe, for 90 days.
fn pace_table(ladder: &[Detector]) -> String {
    let mut t = String::from(
        "Probe rates: time from the first probe to the alert, and the probes it took (scan lasting 90 days)\n",
    );
    t.push_str("| one probe every |");
    for d in ladder {
        let _ = write!(t, " {} |", d.label());
    }
    t.push_str(" first alert | probes needed |\n|---|");
    t.push_str(&"---|".repeat(ladder.len() + 2));
    t.push('\n');
    let intervals_s = [
        60,
        300,
        360,
        400,
        600,
        1200,
        1800,
        HOUR_S,
        90 * 60,
        2 * HOUR_S,
        6 * HOUR_S,
        8 * HOUR_S,
        12 * HOUR_S,
        DAY_S,
        30 * HOUR_S,
        36 * HOUR_S,
        2 * DAY_S,
    ];
    for every in intervals_s {
        let probes = (90 * DAY_S / every) as u32;
        let failures = reference::paced_failures(every, probes);
        let _ = write!(t, "| {} |", duration_label(every));
        let first = fire_times(&mut t, &failures, ladder);
        match first {
            Some(at) => {
                let n = (at - reference::HANDSHAKE_TIMEOUT_NS) / (every * SECOND_NS) + 1;
                let _ = writeln!(t, " {} | {n} |", span_label(at));
            }
            None => t.push_str(" never | — |\n"),
        }
    }
    t
}

/// Writes each detector's firing time (from time 0) as table cells; returns
/// the earliest.
fn fire_times(t: &mut String, failures: &[reference::Failure], ladder: &[Detector]) -> Option<u64> {
    let mut first: Option<u64> = None;
    for d in ladder {
        match first_exceeding(failures, d.window_ns(), d.threshold) {
            Some(at) => {
                first = Some(first.map_or(at, |f| f.min(at)));
                let _ = write!(t, " {} |", span_label(at));
            }
            None => t.push_str(" — |"),
        }
    }
    first
}

/// Scans that bend the required paces (not part of the requirement): how
/// much of each the ladder tolerates.
fn variants_table(ladder: &[Detector]) -> String {
    let mut t = String::from(
        "Variants of the required paces (time from the first probe; a probe to a live service is not counted, R4.5)\n",
    );
    t.push_str("| scan | counted probes |");
    for d in ladder {
        let _ = write!(t, " {} |", d.label());
    }
    t.push_str(" first alert |\n|---|---|");
    t.push_str(&"---|".repeat(ladder.len() + 1));
    t.push('\n');
    let at = |times: Vec<u64>| -> Vec<reference::Failure> {
        reference::paced_failures(1, times.len() as u32)
            .into_iter()
            .zip(times)
            .map(|((_, pair), ts)| (ts * SECOND_NS, pair))
            .collect()
    };
    // Day 0 is a Monday.
    let weekday = |day: u64| day % 7 < 5;
    let every = |n: u64, step: u64| (0..n).map(|i| i * step).collect::<Vec<u64>>();
    let drop_every = |times: Vec<u64>, k: usize| {
        times
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % k != k - 1)
            .map(|(_, t)| t)
            .collect::<Vec<u64>>()
    };
    let variants: Vec<(&str, Vec<u64>)> = vec![
        ("12 probes 300 s apart, 2 not counted", every(10, 300)),
        ("12 probes 300 s apart, 3 not counted", every(9, 300)),
        (
            "every 20 min for 8 h, every 3rd not counted",
            drop_every(every(24, 1200), 3),
        ),
        (
            "hourly, working hours (08–18 weekdays), 2 weeks",
            (0..14)
                .filter(|&d| weekday(d))
                .flat_map(|d| (8..18).map(move |h| d * DAY_S + h * HOUR_S))
                .collect(),
        ),
        (
            "every 6 h for 2 weeks, every 3rd not counted",
            drop_every(every(56, 6 * HOUR_S), 3),
        ),
        (
            "daily for 30 days, weekdays only",
            (0..30)
                .filter(|&d| weekday(d))
                .map(|d| d * DAY_S + 9 * HOUR_S)
                .collect(),
        ),
        (
            "daily for 30 days, every 5th not counted",
            drop_every(every(30, DAY_S), 5),
        ),
        (
            "daily for 30 days, every 3rd not counted",
            drop_every(every(30, DAY_S), 3),
        ),
        ("daily for 21 days", every(21, DAY_S)),
        ("every 2 days for 60 days", every(30, 2 * DAY_S)),
    ];
    for (name, times) in variants {
        // Times from the first probe.
        let failures = at(times.iter().map(|&t| t - times[0]).collect());
        let _ = write!(t, "| {name} | {} |", failures.len());
        let first = fire_times(&mut t, &failures, ladder);
        let _ = writeln!(t, " {} |", first.map_or("never".into(), span_label));
    }
    t
}

/// Candidate ladders side by side: first alert per required pace (month
/// network), the probes each pace may lose, and the benign headroom.
fn candidates_table(net: &Network, truth: &Analysis) -> String {
    let mut t = String::from(
        "Candidate ladders: first alert per required pace (month network), spare probes (of the pace's probes, how many may go uncounted), benign headroom (threshold − worst benign count in that window)\n",
    );
    t.push_str("| ladder |");
    for pace in Pace::ALL {
        let _ = write!(t, " {} |", pace.label());
    }
    t.push_str(
        " daily, weekdays only | spare probes per pace | benign headroom per detector |\n|---|",
    );
    t.push_str(&"---|".repeat(Pace::ALL.len() + 3));
    t.push('\n');
    let benign: Vec<&reference::Source> = net
        .benign_addrs()
        .iter()
        .map(|a| &truth.sources[a])
        .collect();
    for candidate in CANDIDATES {
        let ladder = reference::ladder(candidate);
        let first = |failures: &[reference::Failure]| {
            ladder
                .iter()
                .filter_map(|d| first_exceeding(failures, d.window_ns(), d.threshold))
                .min()
        };
        let _ = write!(t, "| {candidate} |");
        for pace in Pace::ALL {
            let s = net
                .scanners
                .iter()
                .find(|s| s.pace == pace)
                .expect("a scanner per pace");
            let cell = first(&truth.sources[&s.addr].counted)
                .map_or("never".into(), |at| span_label(at - s.first_probe_ns));
            let _ = write!(t, " {cell} |");
        }
        // Day 0 is a Monday; probes at 09:00.
        let weekdays: Vec<reference::Failure> = reference::paced_failures(DAY_S, 30)
            .into_iter()
            .filter(|&(ts, _)| (ts / (DAY_S * SECOND_NS)) % 7 < 5)
            .collect();
        let _ = write!(
            t,
            " {} |",
            first(&weekdays).map_or("never".into(), span_label)
        );
        let spare: Vec<String> = Pace::ALL
            .iter()
            .map(|&pace| {
                let needed = (1..=pace.probes())
                    .find(|&n| first(&reference::paced_failures(pace.interval_s(), n)).is_some());
                needed.map_or("—".into(), |n| (pace.probes() - n).to_string())
            })
            .collect();
        let headroom: Vec<String> = ladder
            .iter()
            .map(|d| {
                let worst = benign
                    .iter()
                    .map(|s| s.max_distinct(d.window_ns()))
                    .max()
                    .unwrap_or(0);
                (d.threshold as i64 - worst as i64).to_string()
            })
            .collect();
        let _ = writeln!(t, " {} | {} |", spare.join(" / "), headroom.join(" / "));
    }
    t
}
