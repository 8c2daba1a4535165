//! End to end: `slowscan run` on the lab's mirror port (tests/src/lab.rs),
//! benign traffic, a misconfigured client retrying one dead port (the paper's
//! main false-positive source, Fig. 6), and two real nmap SYN slow scans,
//! time-scaled (a probe every 0.5 s instead of every 300 s, a 2 s handshake
//! timeout instead of 60 s): one over many ports of one host (vertical), one
//! over one port of 21 hosts (horizontal). Exactly the two scanners alert,
//! with the right shape, in alert lines valid against docs/alert.schema.json;
//! nothing is lost. Also the daemon's error cases.

use std::{collections::BTreeSet, process::Command, time::Duration};

use serde_json::Value;
use slowscan_tests::{
    Netns,
    lab::{
        self, BENIGN, HORIZONTAL_RANGE, Lab, MISCONFIGURED, SCANNER_H, SCANNER_V, SENSOR_IF,
        SERVER, Scanner,
    },
    privileged, slowscan_bin,
};

const TIMEOUT_S: u64 = 2;

const TOOLS: &[&str] = &["nmap", "tc", "python3", "setpriv", "nsenter"];

fn source(a: &Value) -> &str {
    a["source"]["ip"]
        .as_str()
        .unwrap_or_else(|| panic!("alert without source.ip: {a}"))
}

/// `IP: attempts=… established=… failed=… failed_pairs=…` from the summary.
fn per_source(summary: &str, ip: &str, field: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{ip}:")))
        .unwrap_or_else(|| panic!("no per-source line for {ip} in the summary:\n{summary}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for {ip}: {line}"))
}

#[test]
fn slow_scans_in_the_lab_alert_exactly_the_scanners() {
    let name = "slow_scans_in_the_lab_alert_exactly_the_scanners";
    if !privileged(name) || !slowscan_tests::tools_present(name, TOOLS) {
        return;
    }
    let bin = slowscan_bin();
    let mut lab = Lab::new().expect("building the lab");
    lab.start_services().expect("server services");
    // The sensor's on-disk whitelist, which `slowscan whitelist` keeps in step.
    let wl_dir = std::env::temp_dir().join(slowscan_tests::unique("sswl"));
    std::fs::create_dir_all(&wl_dir).unwrap();
    let wl_file = wl_dir.join("whitelist.json");
    std::fs::write(&wl_file, r#"{"version":1,"entries":[]}"#).unwrap();
    let sensor = lab
        .start_sensor(
            &bin,
            &[
                "--whitelist",
                wl_file.to_str().unwrap(),
                "--window",
                "300",
                "--window-mode",
                "sliding",
                "--threshold",
                "9",
                "--handshake-timeout",
                &TIMEOUT_S.to_string(),
                "--metrics",
                "127.0.0.1:9464",
            ],
        )
        .expect("starting slowscan run");
    lab.start_clients().expect("clients");

    // A second sensor on the same interface cannot attach: one clear line.
    let second = lab
        .sensor
        .command(bin.to_str().unwrap())
        .args([
            "run",
            "--iface",
            SENSOR_IF,
            "--metrics",
            "off",
            "--for",
            "2s",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "a second sensor attached to {SENSOR_IF}: {err}"
    );
    // Refused before touching the interface, naming the running sensor.
    assert!(
        err.contains(&format!("a slowscan sensor (PID {})", sensor.pid()))
            && err.contains(&format!("already running on {SENSOR_IF}")),
        "unexpected message: {err}"
    );

    // A live whitelist push (R4.4) through the sensor's pinned map: under
    // `ip netns exec` the pins live in the sensor's own mount namespace.
    let pid = sensor.pid().to_string();
    let push = Command::new("nsenter")
        .args(["-t", &pid, "-m", "-n"])
        .arg(&bin)
        .args([
            "whitelist",
            "add",
            &format!("{SERVER}:8080"),
            "--iface",
            SENSOR_IF,
        ])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "whitelist add: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    // … and the sensor's whitelist file follows, so a restart keeps it.
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&wl_file).unwrap()).unwrap();
    assert_eq!(kept["entries"][0]["ip"], SERVER, "{kept}");
    assert_eq!(kept["entries"][0]["port"], 8080, "{kept}");
    std::fs::remove_dir_all(&wl_dir).unwrap();

    // After attaching it keeps only CAP_NET_ADMIN (12) and CAP_BPF (39).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    assert_eq!(
        u64::from_str_radix(cap_eff, 16).unwrap(),
        (1 << 12) | (1 << 39),
        "CapEff {cap_eff}"
    );

    lab::sleep(Duration::from_secs(2)).unwrap();
    let v = lab
        .spawn_nmap(
            Scanner::Vertical,
            &["--scan-delay", "500ms", "-p", "1-24", SERVER],
        )
        .unwrap();
    let h = lab
        .spawn_nmap(
            Scanner::Horizontal,
            &[
                "--scan-delay",
                "500ms",
                "--max-hostgroup",
                "1",
                "-p",
                "23",
                HORIZONTAL_RANGE,
            ],
        )
        .unwrap();
    lab.wait_nmap(Scanner::Vertical, v).expect("vertical nmap");
    lab.wait_nmap(Scanner::Horizontal, h)
        .expect("horizontal nmap");
    lab::sleep(Duration::from_secs(TIMEOUT_S + 2)).unwrap();

    let metrics = lab
        .in_sensor("python3", &[
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode())",
        ])
        .expect("scraping the metrics endpoint");
    let r = sensor.stop().expect("stopping the sensor");
    let ctx = format!("sensor log:\n{}", r.log);
    assert!(
        r.status.success(),
        "slowscan run exited with {}; {ctx}",
        r.status
    );

    // Every live alert is a valid line of docs/alert.schema.json.
    let schema: Value = serde_json::from_str(include_str!("../../docs/alert.schema.json")).unwrap();
    let schema = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("docs/alert.schema.json is a JSON Schema");
    for a in &r.alerts {
        let errors: Vec<String> = schema.iter_errors(a).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "live alert {a} fails the schema: {errors:?}"
        );
    }

    // Exactly the scanners, each with its shape.
    let sources: BTreeSet<&str> = r.alerts.iter().map(source).collect();
    assert!(
        !sources.contains(BENIGN),
        "the benign client alerted; {ctx}"
    );
    assert!(
        !sources.contains(MISCONFIGURED),
        "the misconfigured client alerted; {ctx}"
    );
    assert_eq!(
        sources,
        BTreeSet::from([SCANNER_V, SCANNER_H]),
        "alerting sources; {ctx}"
    );
    for a in &r.alerts {
        let s = &a["slowscan"];
        assert_eq!(s["threshold"], 9);
        assert!(
            s["failed_pairs"].as_u64().unwrap() > 9,
            "alert below the threshold: {a}"
        );
        if source(a) == SCANNER_V {
            assert_eq!(s["shape"], "vertical", "{a}");
            assert_eq!(s["distinct_hosts"], 1, "{a}");
        } else {
            assert_eq!(s["shape"], "horizontal", "{a}");
            assert_eq!(s["distinct_ports"], 1, "{a}");
            assert!(s["distinct_hosts"].as_u64().unwrap() >= 10, "{a}");
        }
    }
    for scanner in [SCANNER_V, SCANNER_H] {
        assert!(
            r.alerts
                .iter()
                .any(|a| source(a) == scanner && a["slowscan"]["alert_seq"] == 1),
            "no first-crossing alert for {scanner}; {ctx}"
        );
    }

    // The false-positive source was really exercised: many failures, one pair.
    let summary = r.summary();
    assert!(
        per_source(summary, MISCONFIGURED, "failed") > 9,
        "{summary}"
    );
    assert_eq!(
        per_source(summary, MISCONFIGURED, "failed_pairs"),
        1,
        "{summary}"
    );
    assert!(per_source(summary, BENIGN, "established") > 0, "{summary}");
    assert_eq!(per_source(summary, BENIGN, "failed_pairs"), 0, "{summary}");
    assert_eq!(
        per_source(summary, SCANNER_V, "failed_pairs"),
        24,
        "{summary}"
    );
    assert_eq!(
        per_source(summary, SCANNER_H, "failed_pairs"),
        21,
        "{summary}"
    );

    // Nothing lost, in the summary and on the metrics endpoint.
    assert_eq!(r.kernel_counter("ring_full"), Some(0), "{summary}");
    assert_eq!(r.kernel_counter("records_lost"), Some(0), "{summary}");
    assert!(
        r.kernel_counter("attempts_emitted").unwrap() >= 45,
        "{summary}"
    );
    for line in [
        "slowscan_kernel_ring_full_total 0",
        "slowscan_records_lost_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "metrics lack `{line}`:\n{metrics}"
        );
    }
    for name in [
        "slowscan_pending_attempts",
        "slowscan_tracked_sources",
        "slowscan_alerts_total",
        "slowscan_evictions_total",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    // Detached and unpinned: the interface carries no XDP program any more.
    let link = lab.in_sensor("ip", &["link", "show", SENSOR_IF]).unwrap();
    assert!(
        !link.contains("xdp"),
        "XDP still attached after SIGTERM: {link}"
    );
}

#[test]
fn run_errors_are_one_clear_line() {
    let name = "run_errors_are_one_clear_line";
    if !privileged(name) || !slowscan_tests::tools_present(name, TOOLS) {
        return;
    }
    let bin = slowscan_bin();
    let ns = Netns::new("sserr");
    let fails = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{cmd:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let run = |cmd: &mut Command| {
        let err = fails(cmd);
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
        err
    };

    // Unknown interface: the message lists the interfaces that exist.
    let err = run(ns.command(bin.to_str().unwrap()).args([
        "run",
        "--iface",
        "nope0",
        "--metrics",
        "off",
    ]));
    assert!(
        err.contains("interface nope0 does not exist (ip link lists: lo)"),
        "{err}"
    );

    // Not root.
    let err = run(ns
        .command("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&bin)
        .args(["run", "--iface", "lo", "--metrics", "off"]));
    assert!(err.contains("slowscan run must run as root"), "{err}");

    // Bad values (clap's message, with its usage hint).
    let err = fails(
        ns.command(bin.to_str().unwrap())
            .args(["run", "--iface", "lo", "--window", "0"]),
    );
    assert!(err.contains("window"), "{err}");
    let err = fails(ns.command(bin.to_str().unwrap()).args([
        "run",
        "--iface",
        "lo",
        "--metrics",
        "nowhere",
    ]));
    assert!(err.contains("ADDR:PORT"), "{err}");
}
