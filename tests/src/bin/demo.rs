//! `cargo xtask demo`: the lab (see `slowscan_tests::lab`), the sensor on its
//! mirror port, benign traffic, a misconfigured client, and two real nmap
//! slow scans, time-scaled (a probe a second instead of one every 300 s; a
//! 3 s handshake timeout instead of 60 s). Prints the alerts and the sensor's
//! summary, then tears everything down (also on Ctrl-C or failure).
//!
//! `demo [--keep-capture FILE]` — also save what the sensor saw as a pcap,
//! for `slowscan replay`. `demo --fleet` — two sensors, one Redis Cluster:
//! a scan split over two segments alerts once, fleet-wide.
use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, bail};
use slowscan_tests::lab::{
    self, BENIGN, DEAD_PORT, HORIZONTAL_RANGE, Lab, MISCONFIGURED, SCANNER_H, SCANNER_V, SENSOR_IF,
    SERVER, Scanner,
};

const THRESHOLD: &str = "9";
const TIMEOUT_S: u64 = 3;

fn main() -> ExitCode {
    lab::catch_interrupts();
    match demo() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut keep_capture: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fleet" => return fleet_demo(),
            "--keep-capture" => {
                let p = PathBuf::from(args.next().context("--keep-capture needs a FILE")?);
                keep_capture = Some(std::path::absolute(&p)?);
            }
            "-h" | "--help" => {
                println!("usage: demo [--keep-capture FILE] | demo --fleet");
                return Ok(());
            }
            other => bail!("unknown argument {other} (usage: demo [--keep-capture FILE])"),
        }
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo builds network namespaces and loads XDP: run it as root");
    }
    for tool in ["ip", "tc", "nmap", "python3"] {
        lab::run(std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]))
            .with_context(|| format!("{tool} is missing (`cargo xtask setup` installs it)"))?;
    }
    let slowscan = lab::slowscan_beside_exe()?;

    say("building the lab: namespaces on a bridge, mirror port to the sensor (198.51.100.0/24)");
    let mut lab = Lab::new()?;
    lab.start_services()?;
    say(&format!(
        "server {SERVER}: http.server on 80, listeners on 22, 443, 8080; 21 more addresses .100–.120"
    ));
    if let Some(p) = &keep_capture {
        lab.start_capture(p)?;
        say(&format!(
            "capturing what the sensor sees to {}",
            p.display()
        ));
    }
    let sensor = lab.start_sensor(
        &slowscan,
        &[
            "--window",
            "300",
            "--threshold",
            THRESHOLD,
            "--handshake-timeout",
            &TIMEOUT_S.to_string(),
            "--metrics",
            "127.0.0.1:9464",
            "--summary-every",
            "10",
        ],
    )?;
    say(&format!(
        "sensor: slowscan run --iface {SENSOR_IF} --mirror --window 300 --threshold {THRESHOLD} --handshake-timeout {TIMEOUT_S} (pid {})",
        sensor.pid()
    ));
    lab.start_clients()?;
    say(&format!(
        "benign client {BENIGN} browsing the server; misconfigured client {MISCONFIGURED} retrying dead port {SERVER}:{DEAD_PORT}"
    ));
    lab::sleep(std::time::Duration::from_secs(3))?;

    say(&format!(
        "scanner {SCANNER_V}: nmap -sS --scan-delay 1s -p 1-25 {SERVER}   (vertical slow scan, ~25 s)"
    ));
    say(&format!(
        "scanner {SCANNER_H}: nmap -sS --scan-delay 1s -p 23 {HORIZONTAL_RANGE}   (horizontal slow scan)"
    ));
    let v = lab.spawn_nmap(
        Scanner::Vertical,
        &["--scan-delay", "1s", "-p", "1-25", SERVER],
    )?;
    let h = lab.spawn_nmap(
        Scanner::Horizontal,
        &[
            "--scan-delay",
            "1s",
            "--max-hostgroup",
            "1",
            "-p",
            "23",
            HORIZONTAL_RANGE,
        ],
    )?;
    lab.wait_nmap(Scanner::Vertical, v)?;
    lab.wait_nmap(Scanner::Horizontal, h)?;
    say(&format!(
        "scans done; waiting {} s for the last handshakes to time out",
        TIMEOUT_S + 2
    ));
    lab::sleep(std::time::Duration::from_secs(TIMEOUT_S + 2))?;

    let metrics = lab
        .in_sensor("python3", &[
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode())",
        ])
        .unwrap_or_default();
    let result = sensor.stop()?;
    if keep_capture.is_some() {
        lab.stop_capture()?;
    }

    println!("\n=== alerts (JSON lines, as the sensor wrote them) ===");
    for a in &result.alerts {
        println!("{a}");
    }
    println!("\n=== alerts, readable ===");
    for a in &result.alerts {
        let s = &a["slowscan"];
        println!(
            "{}  source {}  {} scan  failed pairs {} > threshold {}  ({} hosts, {} ports, alert #{})",
            a["@timestamp"].as_str().unwrap_or("?"),
            a["source"]["ip"].as_str().unwrap_or("?"),
            s["shape"].as_str().unwrap_or("?"),
            s["failed_pairs"],
            s["threshold"],
            s["distinct_hosts"],
            s["distinct_ports"],
            s["alert_seq"],
        );
    }
    println!("\n=== sensor summary ===\n{}", result.summary().trim_end());
    let wanted = [
        "slowscan_kernel_frames_total",
        "slowscan_kernel_ring_full_total",
        "slowscan_records_lost_total",
        "slowscan_pending_attempts",
        "slowscan_tracked_sources",
        "slowscan_alerts_total",
    ];
    println!(
        "\n=== metrics (excerpt of http://127.0.0.1:9464/metrics in the sensor namespace) ==="
    );
    for l in metrics
        .lines()
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)))
    {
        println!("{l}");
    }

    let sources: std::collections::BTreeSet<&str> = result
        .alerts
        .iter()
        .filter_map(|a| a["source"]["ip"].as_str())
        .collect();
    let expected: std::collections::BTreeSet<&str> = [SCANNER_V, SCANNER_H].into();
    if let Some(p) = &keep_capture {
        println!(
            "\ncapture kept: {}  (try: slowscan replay {})",
            p.display(),
            p.display()
        );
    }
    println!(
        "\ndemo finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if !result.status.success() {
        bail!("the sensor exited with {}", result.status);
    }
    if sources != expected {
        bail!("expected alerts from exactly {expected:?}, got {sources:?}");
    }
    println!("OK: both scanners detected; the benign and the misconfigured client raised no alert");
    Ok(())
}

fn say(s: &str) {
    eprintln!("demo: {s}");
}

/// `demo --fleet`: two sensors on two segments share their counts through a
/// real Redis Cluster; a scan split over the segments alerts once,
/// fleet-wide; with the store stopped, each sensor goes on alone.
fn fleet_demo() -> anyhow::Result<()> {
    use slowscan_tests::{Netns, fleetlab::Segment, redis::RedisCluster, unique};
    use std::time::Duration;

    let started = Instant::now();
    for tool in ["ip", "redis-server", "redis-cli"] {
        lab::run(std::process::Command::new("sh").args(["-c", &format!("command -v {tool}")]))
            .with_context(|| format!("{tool} is missing (`cargo xtask setup` installs it)"))?;
    }
    let slowscan = lab::slowscan_beside_exe()?;
    let home = Netns::new("ssfh");
    home.exec(&["ip", "link", "set", "lo", "up"]);
    say("starting a Redis Cluster of 3 masters (Debian's redis-server) for the fleet");
    let mut cluster = home.run(|| RedisCluster::start(3, 0));
    let url = cluster.url();
    say(&format!("the store: {url}"));
    let dir = std::env::temp_dir().join(unique("slowscan-fleet-demo"));
    std::fs::create_dir_all(&dir)?;
    let segs = [Segment::new(&home), Segment::new(&home)];
    let names = ["seg-a", "seg-b"];
    let mut sensors = Vec::new();
    for (seg, name) in segs.iter().zip(names) {
        let alerts = dir.join(format!("{name}.jsonl"));
        let s = seg.start_sensor(&home, &slowscan, name, &url, "2", "off", &dir)?;
        say(&format!(
            "sensor {name} watches segment {} (detector 1h:8: alert above 8 distinct failed pairs), joined the fleet",
            seg.sensor_if
        ));
        sensors.push((name, alerts, s));
    }
    const SCANNER: [u8; 4] = [198, 51, 100, 66];
    say(
        "a scanner, 198.51.100.66, probes port 445 of 5 hosts on segment A and 5 on segment B, one a second:",
    );
    say("  each sensor alone sees 5 failed pairs — under its threshold; the fleet sees 10");
    for h in 1..=10u8 {
        segs[usize::from(h > 5)].probe(SCANNER, h);
        std::thread::sleep(Duration::from_secs(1));
    }
    let lines = |p: &PathBuf| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(15);
    while sensors.iter().all(|(_, p, _)| lines(p).is_empty()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    println!("\n=== alerts of the fleet, from both sensors' files ===");
    let mut fleet_alerts = 0;
    for (name, p, _) in &sensors {
        for a in lines(p) {
            fleet_alerts += 1;
            println!(
                "{name} wrote: {} — {} failed pairs > {} (detector {}), scope {}, sensors {}",
                a["source"]["ip"],
                a["slowscan"]["failed_pairs"],
                a["slowscan"]["threshold"],
                a["slowscan"]["detector"],
                a["slowscan"]["scope"],
                a["slowscan"]["sensors"]
            );
        }
    }
    if fleet_alerts != 1 {
        bail!("expected exactly one fleet alert, got {fleet_alerts}");
    }
    say("stopping the store: the sensors go on, on their own counts");
    cluster.stop_all();
    const ALONE: [u8; 4] = [198, 51, 100, 88];
    say("another scanner, 198.51.100.88, probes 9 hosts on segment A");
    for h in 21..=29u8 {
        segs[0].probe(ALONE, h);
    }
    let end = Instant::now() + Duration::from_secs(20);
    let local = loop {
        let v: Vec<_> = lines(&sensors[0].1)
            .into_iter()
            .filter(|a| a["source"]["ip"] == "198.51.100.88")
            .collect();
        if !v.is_empty() || Instant::now() > end {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let Some(a) = local.first() else {
        bail!("no local alert with the store stopped");
    };
    println!(
        "seg-a wrote: {} — {} failed pairs, scope {}",
        a["source"]["ip"], a["slowscan"]["failed_pairs"], a["slowscan"]["scope"]
    );
    for (name, _, s) in sensors {
        let r = s.stop()?;
        if !r.status.success() {
            bail!("sensor {name} failed:\n{}", r.log);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\nOK: the split scan alerted once, fleet-wide, naming both sensors; with the store down, a sensor alerted alone ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
