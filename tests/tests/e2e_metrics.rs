//! The Grafana dashboard (contrib/grafana/slowscan.json) against a real
//! sensor: `slowscan run` on a veth in a test namespace with `--metrics`,
//! a few connection attempts from the other end, then its /metrics page.
//! Every metric a dashboard query uses must be on the page, with HELP and
//! TYPE; every slowscan metric on the page must have HELP text.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Child, Stdio},
    time::Duration,
};

use serde_json::Value;
use slowscan_tests::{LAB_B, VethLab, privileged, slowscan_bin};

const METRICS: &str = "127.0.0.1:9464";

/// Metric names in the dashboard's queries and template variables.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/grafana/slowscan.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{p}"));
        assert!(!targets.is_empty(), "panel without a query: {}", p["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().expect("expr").to_owned());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    let mut names = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("slowscan_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

/// GET /metrics from inside the namespace.
fn scrape(lab: &VethLab) -> Option<String> {
    lab.b.run(|| {
        let addr: SocketAddr = METRICS.parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| body.to_owned())
            .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
    })
}

/// name → (help, type, samples) of the page.
fn parse(page: &str) -> BTreeMap<String, (Option<String>, Option<String>, usize)> {
    let mut m: BTreeMap<String, (Option<String>, Option<String>, usize)> = BTreeMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            m.entry(name.into()).or_default().0 = Some(help.into());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            m.entry(name.into()).or_default().1 = Some(kind.into());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            m.entry(name.into()).or_default().2 += 1;
        }
    }
    m
}

/// The value of the unlabelled sample `name` on the page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

struct Stop(Child);

impl Stop {
    /// What the sensor wrote to stderr (read once it has ended).
    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            e.read_to_string(&mut err).ok();
        }
        err
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dashboard_queries_use_metrics_the_sensor_exports() {
    let name = "dashboard_queries_use_metrics_the_sensor_exports";
    if !privileged(name) {
        return;
    }
    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 20, "{wanted:?}");
    let bin = slowscan_bin();
    let lab = VethLab::new();
    let sensor = lab
        .b
        .command(bin.to_str().unwrap())
        .args(["run", "--iface", &lab.if_b, "--metrics", METRICS])
        .args(["--handshake-timeout", "1", "--for", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting slowscan run");
    let mut sensor = Stop(sensor);

    // Attempts toward the sensor's side (nothing listens: they fail, R5).
    let mut page = String::new();
    let mut missing: Vec<String> = wanted.iter().cloned().collect();
    for round in 0..40 {
        lab.a.run(move || {
            let to: SocketAddr = format!("{LAB_B}:{}", 2000 + round).parse().unwrap();
            let _ = TcpStream::connect_timeout(&to, Duration::from_millis(200));
        });
        std::thread::sleep(Duration::from_millis(500));
        if let Some(p) = scrape(&lab) {
            let m = parse(&p);
            page = p;
            missing = wanted
                .iter()
                .filter(|n| m.get(*n).is_none_or(|e| e.2 == 0))
                .cloned()
                .collect();
            let attempts = sample(&page, "slowscan_kernel_attempts_emitted_total").unwrap_or(0.0);
            if missing.is_empty() && attempts >= 2.0 {
                break;
            }
        }
        if let Ok(Some(status)) = sensor.0.try_wait() {
            panic!("the sensor exited ({status}):\n{}", sensor.stderr());
        }
    }
    assert!(
        missing.is_empty(),
        "dashboard metrics not on /metrics: {missing:?}\n{page}"
    );
    let m = parse(&page);
    for n in &wanted {
        let (help, kind, _) = &m[n];
        assert!(
            help.as_deref().is_some_and(|h| h.len() > 10),
            "{n} has no HELP text"
        );
        assert!(
            matches!(kind.as_deref(), Some("counter" | "gauge")),
            "{n}: TYPE {kind:?}"
        );
        assert_eq!(
            n.ends_with("_total"),
            kind.as_deref() == Some("counter"),
            "{n}: counters end in _total, gauges do not"
        );
    }
    let undescribed: Vec<&String> = m
        .iter()
        .filter(|(n, e)| n.starts_with("slowscan_") && e.0.is_none())
        .map(|(n, _)| n)
        .collect();
    assert!(
        undescribed.is_empty(),
        "metrics without HELP (add a describe_* in daemon/metrics.rs): {undescribed:?}"
    );
    // The attempts were seen by the kernel program and the engine.
    let value = |name: &str| -> f64 {
        sample(&page, name).unwrap_or_else(|| panic!("no {name} in\n{page}"))
    };
    assert!(
        value("slowscan_kernel_attempts_emitted_total") >= 2.0,
        "{page}"
    );
    assert_eq!(value("slowscan_records_lost_total"), 0.0, "{page}");
    // The kernel table's capacity, for the C / R rule of docs/operations.md.
    assert_eq!(
        value("slowscan_kernel_pending_capacity"),
        f64::from(slowscan_common::PENDING_MAX),
        "{page}"
    );
    // The ring reader's lag is measured (records were read): a real age.
    for name in [
        "slowscan_reader_lag_seconds",
        "slowscan_reader_lag_max_seconds",
    ] {
        let lag = value(name);
        assert!(lag.is_finite() && lag >= 0.0, "{name} {lag}\n{page}");
    }

    // SIGTERM: a clean stop.
    // SAFETY: kill on the child's own PID.
    unsafe { libc::kill(sensor.0.id() as i32, libc::SIGTERM) };
    let status = sensor.0.wait().unwrap();
    assert!(status.success(), "{}", sensor.stderr());
}
