//! What `slowscan replay` keeps away from the detectors, run as the real
//! binary over generated captures: failures to live services (R4.5, the
//! service map), alone and beside a static whitelist (R4.4), and ignored
//! sources (R4.6, IPv4 and IPv6 prefixes, listed or in a file).

use std::{
    collections::BTreeSet,
    fs,
    net::IpAddr,
    path::{Path, PathBuf},
};

use slowscan::{capture::PcapWriter, frame::LinkType};
use slowscan_testkit::{
    TempDir,
    frames::{Tcp, handshake, tcp_frame},
};

mod replay_run;

use replay_run::{SLOWSCAN, engine, ip, replay, s};
const S: u64 = 1_000_000_000;
/// 2014-06-25T09:00:00Z.
const T0: u64 = 1_403_686_800 * S;

/// Frames with their capture times, written in time order.
#[derive(Default)]
struct Capture(Vec<(u64, Vec<u8>)>);

impl Capture {
    /// A connection Established (R5): the SYN, then the ACK of S + 1.
    fn established(&mut self, t: u64, src: IpAddr, dst: IpAddr, dport: u16) {
        let sport = 40_000 + (self.0.len() % 20_000) as u16;
        let [syn, ack] = handshake(src, dst, sport, dport, 1_000 + t as u32);
        self.0.push((t, syn));
        self.0.push((t + S / 1000, ack));
    }

    /// A SYN with no follow-up: a Failed attempt (R5).
    fn failed(&mut self, t: u64, src: IpAddr, dst: IpAddr, dport: u16) {
        let sport = 40_000 + (self.0.len() % 20_000) as u16;
        let syn = Tcp::syn(7 + t as u32).ports(sport, dport);
        self.0.push((t, tcp_frame(src, dst, &syn)));
    }

    fn write(mut self, path: &Path) -> PathBuf {
        self.0.sort_by_key(|(t, _)| *t);
        let mut w = PcapWriter::create(path, LinkType::Ethernet).unwrap();
        for (t, f) in &self.0 {
            w.write_packet(*t, f, f.len()).unwrap();
        }
        w.finish().unwrap();
        path.to_path_buf()
    }
}

const MONITOR: &str = "198.51.100.5";
const SCANNER: &str = "198.51.100.66";

/// Service `i` of 20: 203.0.113.(i + 1) on 22, 80 or 443 (eligible, R4.3).
fn service(i: u32) -> (IpAddr, u16) {
    (
        ip(&format!("203.0.113.{}", i + 1)),
        [22, 80, 443][i as usize % 3],
    )
}

/// A monitoring host polls 20 services every 10 minutes for two hours and
/// Establishes each; then an outage makes all of them fail on two more
/// polls. A scanner probes 15 never-live destinations (and the 20 services)
/// at the paper's pace, during the outage.
fn outage_capture(dir: &Path) -> PathBuf {
    let (monitor, scanner) = (ip(MONITOR), ip(SCANNER));
    let mut c = Capture::default();
    for poll in 0..14u64 {
        let t = T0 + poll * 600 * S;
        for i in 0..20 {
            let (dst, port) = service(i);
            if poll < 12 {
                c.established(t + u64::from(i) * S, monitor, dst, port);
            } else {
                c.failed(t + u64::from(i) * S, monitor, dst, port);
            }
        }
    }
    let start = T0 + 7200 * S;
    for i in 0..15u64 {
        let dst = ip(&format!("203.0.113.{}", 100 + i));
        c.failed(start + i * 300 * S, scanner, dst, 3389);
    }
    for i in 0..20 {
        let (dst, port) = service(i);
        c.failed(start + 30 * S + u64::from(i) * 100 * S, scanner, dst, port);
    }
    c.write(&dir.join("outage.pcap"))
}

#[test]
fn r4_5_an_outage_of_live_services_raises_nothing_with_the_defaults() {
    let dir = TempDir::new("filters-outage");
    let capture = outage_capture(&dir);
    let (monitor, scanner) = (ip(MONITOR), ip(SCANNER));

    // Defaults (the ladder, the service map with a 30-day memory): the
    // monitoring host's 40 failures are outages; the scanner's 20 probes to
    // live services are too, its 15 others count and alert.
    let (r, alerting) = replay(&dir, &capture, &[]);
    assert_eq!(r["complete"], true);
    assert_eq!(r["established"], 240, "{r}");
    assert_eq!(r["failed"], 40 + 35, "{r}");
    assert_eq!(engine(&r, "outage_failures"), 40 + 20, "{r}");
    assert_eq!(engine(&r, "services"), 20, "{r}");
    assert_eq!(alerting, BTreeSet::from([scanner]));

    // The map off: every failure counts, and the monitoring host alerts.
    let (r, alerting) = replay(&dir, &capture, &["--no-service-map"]);
    assert_eq!(engine(&r, "outage_failures"), 0, "{r}");
    assert_eq!(engine(&r, "services"), 0, "{r}");
    assert_eq!(alerting, BTreeSet::from([monitor, scanner]));

    // A memory shorter than the outage's distance from the last Established
    // poll: nothing is live by then.
    let (r, alerting) = replay(&dir, &capture, &["--service-memory", "5m"]);
    assert_eq!(engine(&r, "outage_failures"), 0, "{r}");
    assert_eq!(alerting, BTreeSet::from([monitor, scanner]));
}

#[test]
fn r4_5_the_service_map_works_beside_a_static_whitelist() {
    let dir = TempDir::new("filters-whitelist");
    let capture = outage_capture(&dir);
    let (monitor, scanner) = (ip(MONITOR), ip(SCANNER));
    // The first 10 services are whitelisted (R4.4), the other 10 are not.
    let entries: Vec<String> = (0..10)
        .map(|i| {
            let (dst, port) = service(i);
            format!(r#"{{"ip":"{dst}","port":{port}}}"#)
        })
        .collect();
    let wl = dir.join("whitelist.json");
    fs::write(
        &wl,
        format!(r#"{{"version":1,"entries":[{}]}}"#, entries.join(",")),
    )
    .unwrap();

    // Whitelisted destinations are not analysed at all: their handshakes
    // (12 polls) and failures (2 polls, and the scanner's probe) leave no
    // attempt. The map holds the other 10; failures to them are outages.
    let (r, alerting) = replay(&dir, &capture, &["--whitelist", s(&wl)]);
    assert_eq!(r["whitelist_entries"], 10);
    assert_eq!(
        engine(&r, "whitelisted_records"),
        10 * (12 * 2 + 2 + 1),
        "{r}"
    );
    assert_eq!(r["established"], 120, "{r}");
    assert_eq!(engine(&r, "services"), 10, "{r}");
    assert_eq!(engine(&r, "outage_failures"), 10 * 2 + 10, "{r}");
    assert_eq!(alerting, BTreeSet::from([scanner]));

    // The whitelist alone: the monitoring host's failures to the 10 others
    // (10 distinct pairs > 9) alert.
    let (r, alerting) = replay(&dir, &capture, &["--whitelist", s(&wl), "--no-service-map"]);
    assert_eq!(engine(&r, "outage_failures"), 0, "{r}");
    assert_eq!(r["sources"][MONITOR]["failed_pairs"], 10, "{r}");
    assert_eq!(alerting, BTreeSet::from([monitor, scanner]));
}

/// Four scanners at the paper's pace (12 probes 300 s apart, closed ports of
/// never-live hosts), two IPv4 and two IPv6.
fn scanners_capture(dir: &Path, scanners: &[IpAddr]) -> PathBuf {
    let mut c = Capture::default();
    for (k, &src) in scanners.iter().enumerate() {
        for i in 0..12u64 {
            let dst = match src {
                IpAddr::V4(_) => ip(&format!("203.0.113.{}", 100 + i)),
                IpAddr::V6(_) => ip(&format!("2001:db8:1::{:x}", 0x100 + i)),
            };
            c.failed(T0 + k as u64 * S + i * 300 * S, src, dst, 445);
        }
    }
    c.write(&dir.join("scanners.pcap"))
}

#[test]
fn r4_6_ignored_sources_raise_nothing_and_are_counted_apart() {
    let dir = TempDir::new("filters-ignore");
    let ignored = [ip("198.51.100.66"), ip("2001:db8:66::1")];
    let counted = [ip("198.51.100.77"), ip("2001:db8:77::1")];
    let all: Vec<IpAddr> = ignored.iter().chain(&counted).copied().collect();
    let capture = scanners_capture(&dir, &all);

    let (r, alerting) = replay(&dir, &capture, &[]);
    assert_eq!(alerting, all.iter().copied().collect());
    assert_eq!(engine(&r, "ignored_records"), 0);
    assert_eq!(r["attempts"], 48);

    // A /30 holds .66 but not .77; a /48 holds 2001:db8:66::1 only. As a
    // list, then as a file (one prefix a line, `#` comments).
    let list = "198.51.100.64/30,2001:db8:66::/48";
    let file = dir.join("ignore.txt");
    fs::write(
        &file,
        "# the vulnerability scanners\n198.51.100.64/30\n2001:db8:66::/48\n",
    )
    .unwrap();
    for spec in [list, s(&file)] {
        let (r, alerting) = replay(&dir, &capture, &["--ignore-sources", spec]);
        assert_eq!(alerting, counted.iter().copied().collect(), "{spec}");
        // Their 24 SYNs are counted as ignored, never as attempts.
        assert_eq!(engine(&r, "ignored_records"), 24, "{spec}: {r}");
        assert_eq!(r["attempts"], 24, "{spec}: {r}");
        for src in ignored {
            assert!(r["sources"].get(src.to_string()).is_none(), "{src}: {r}");
        }
        for src in counted {
            assert_eq!(r["sources"][src.to_string()]["failed_pairs"], 12, "{r}");
        }
    }
}

/// `replay --config` reads the detection options of a sensor's `run`
/// config file (its other keys, such as where the sensor writes alerts, are
/// skipped); flags override the file.
#[test]
fn replay_takes_detection_options_from_a_run_config_file() {
    let dir = TempDir::new("filters-config");
    let capture = outage_capture(&dir);
    let monitor = ip(MONITOR);
    let sensor_alerts = dir.join("sensor-alerts.json");
    let config = dir.join("run.toml");
    fs::write(
        &config,
        format!(
            "iface = \"eth1\"\nalerts = \"{}\"\nmetrics = \"off\"\nmirror = true\n\
             detector = [\"1h:9\"]\nno-service-map = true\nignore-sources = \"{SCANNER}/32\"\n",
            s(&sensor_alerts)
        ),
    )
    .unwrap();
    // The map off and the scanner ignored, as the file says.
    let (r, alerting) = replay(&dir, &capture, &["--config", s(&config)]);
    assert_eq!(alerting, BTreeSet::from([monitor]));
    assert_eq!(r["detectors"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(engine(&r, "outage_failures"), 0, "{r}");
    assert_eq!(engine(&r, "ignored_records"), 35, "{r}");
    assert!(!sensor_alerts.exists(), "replay wrote the sensor's alerts");
    // A flag overrides the file: the map on, the outage raises nothing.
    let (r, alerting) = replay(&dir, &capture, &["--config", s(&config), "--service-map"]);
    assert_eq!(alerting, BTreeSet::new());
    assert_eq!(engine(&r, "outage_failures"), 40, "{r}");
    // A key neither command knows is an error naming it.
    fs::write(&config, "colour = \"blue\"\n").unwrap();
    let err = SLOWSCAN.failing([
        "replay",
        s(&capture),
        "--config",
        s(&config),
        "--alerts",
        s(&dir.join("a.jsonl")),
    ]);
    assert!(
        err.contains("unknown key `colour`") && err.contains(s(&config)),
        "{err}"
    );
}
