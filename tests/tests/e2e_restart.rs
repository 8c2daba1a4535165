//! End to end: `slowscan run --state` across restarts (issue 4). In the lab
//! (tests/src/lab.rs), real nmap SYN slow scans, time-scaled as in e2e_lab,
//! whose probes straddle restarts of the sensor:
//! * SIGTERM: the vertical scan's first 8 ports, a clean stop (final
//!   checkpoint), a restart with the same `--state`, its last 6 ports: the
//!   alert comes after the restart and counts failures from both sides;
//! * SIGKILL: the horizontal scan's first 8 hosts before the first restart,
//!   a crash of the second sensor (state from its last periodic checkpoint),
//!   a third start without any clean-up (attach succeeds), the last 6 hosts:
//!   the alert counts all 14;
//! * a corrupt state file: one clear line naming the file, nothing attached.
//!
//! And `--config FILE`: values from the file, a flag overriding one, an
//! unknown key refused with its name.

use std::{fs, time::Duration};

use serde_json::Value;
use slowscan::engine::rfc3339;
use slowscan_tests::{
    VethLab,
    lab::{self, Lab, SCANNER_H, SCANNER_V, SENSOR_IF, SERVER, Scanner},
    privileged, slowscan_bin,
};

const TIMEOUT_S: u64 = 2;

const TOOLS: &[&str] = &["nmap", "tc", "python3"];

fn source(a: &Value) -> &str {
    a["source"]["ip"].as_str().unwrap_or("")
}

fn now_wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn wall(a: &Value, field: &str) -> i64 {
    let text = a["slowscan"][field]
        .as_str()
        .or_else(|| a[field].as_str())
        .unwrap_or_else(|| panic!("no {field} in {a}"));
    rfc3339::parse(text).unwrap_or_else(|| panic!("{field} is not RFC 3339: {a}"))
}

/// Runs a time-scaled nmap to completion (a probe every 0.5 s).
fn scan(lab: &Lab, who: Scanner, targets: &[&str]) {
    let mut args = vec!["--scan-delay", "500ms", "--max-hostgroup", "1"];
    args.extend_from_slice(targets);
    let p = lab.spawn_nmap(who, &args).expect("starting nmap");
    lab.wait_nmap(who, p).expect("nmap");
}

#[test]
fn slow_scans_straddling_restarts_are_detected() {
    let name = "slow_scans_straddling_restarts_are_detected";
    if !privileged(name) || !slowscan_tests::tools_present(name, TOOLS) {
        return;
    }
    let bin = slowscan_bin();
    let mut lab = Lab::new().expect("building the lab");
    lab.start_services().expect("server services");
    lab.start_clients().expect("clients");
    let state = lab.dir.join("state.json");
    let state_arg = state.to_str().unwrap().to_string();
    let timeout = TIMEOUT_S.to_string();
    let args = [
        "--window",
        "600",
        "--window-mode",
        "sliding",
        "--threshold",
        "9",
        "--handshake-timeout",
        &timeout,
        "--metrics",
        "off",
        "--state",
        &state_arg,
        "--checkpoint-every",
        "1",
    ];
    // Decided (timeout), then checkpointed (every 1 s), with a margin.
    let settle = Duration::from_secs(TIMEOUT_S + 3);

    // Sensor 1: the first halves of both scans.
    let s1 = lab.start_sensor(&bin, &args).expect("sensor 1");
    assert!(
        s1.log_so_far().contains("no engine state at"),
        "{}",
        s1.log_so_far()
    );
    let v = lab
        .spawn_nmap(
            Scanner::Vertical,
            &["--scan-delay", "500ms", "-p", "1-8", SERVER],
        )
        .unwrap();
    scan(
        &lab,
        Scanner::Horizontal,
        &["-p", "23", "198.51.100.100-107"],
    );
    lab.wait_nmap(Scanner::Vertical, v).expect("vertical nmap");
    lab::sleep(settle).unwrap();
    let before_restart = now_wall_ns();
    let r1 = s1.stop().expect("SIGTERM sensor 1");
    let ctx = format!("sensor 1 log:\n{}", r1.log);
    assert!(r1.status.success(), "{ctx}");
    assert!(r1.alerts.is_empty(), "alert before any restart; {ctx}");
    assert!(r1.log.contains("engine state saved to"), "{ctx}");
    assert!(
        !lab.dir.join("state.json.tmp").exists(),
        "PATH.tmp left behind"
    );

    // Sensor 2 (SIGTERM restart): the vertical scan's last 6 ports.
    let s2 = lab.start_sensor(&bin, &args).expect("sensor 2");
    let log2 = s2.log_so_far();
    assert!(log2.contains("engine state restored from"), "{log2}");
    scan(&lab, Scanner::Vertical, &["-p", "9-14", SERVER]);
    lab::sleep(settle).unwrap();
    let alerts = s2.alerts_so_far();
    let ctx = format!("sensor 2 log:\n{}", s2.log_so_far());
    let v_alerts: Vec<&Value> = alerts.iter().filter(|a| source(a) == SCANNER_V).collect();
    assert_eq!(v_alerts.len(), 1, "{alerts:?}; {ctx}");
    let a = v_alerts[0];
    let pairs = a["slowscan"]["failed_pairs"].as_u64().unwrap();
    assert!(
        pairs > 6,
        "only the ports after the restart counted: {a}; {ctx}"
    );
    assert_eq!(pairs, 10, "first crossing of threshold 9: {a}");
    assert_eq!(a["slowscan"]["shape"], "vertical", "{a}");
    assert!(wall(a, "@timestamp") > before_restart, "{a}");
    assert!(
        wall(a, "first_failure") < before_restart,
        "first failure not from before the restart: {a}"
    );

    // Sensor 2 crashes (SIGKILL): no final checkpoint, no clean detach.
    let before_crash = now_wall_ns();
    let r2 = s2.kill().expect("SIGKILL sensor 2");
    assert!(!r2.status.success());
    assert!(!r2.log.contains("engine state saved to"), "{}", r2.log);

    // Sensor 3 starts without any clean-up, from the last checkpoint.
    let s3 = lab
        .start_sensor(&bin, &args)
        .expect("sensor 3 after SIGKILL (attach must succeed)");
    let log3 = s3.log_so_far();
    assert!(log3.contains("engine state restored from"), "{log3}");
    scan(
        &lab,
        Scanner::Horizontal,
        &["-p", "23", "198.51.100.108-113"],
    );
    lab::sleep(settle).unwrap();
    let r3 = s3.stop().expect("SIGTERM sensor 3");
    let ctx = format!("sensor 3 log:\n{}", r3.log);
    assert!(r3.status.success(), "{ctx}");
    let h: Vec<&Value> = r3
        .alerts
        .iter()
        .filter(|a| source(a) == SCANNER_H)
        .collect();
    assert_eq!(h.len(), 1, "{:?}; {ctx}", r3.alerts);
    let a = h[0];
    assert_eq!(a["slowscan"]["failed_pairs"], 10, "{a}");
    assert_eq!(a["slowscan"]["shape"], "horizontal", "{a}");
    assert!(wall(a, "@timestamp") > before_crash, "{a}");
    assert!(
        wall(a, "first_failure") < before_restart,
        "first failure not from before both restarts: {a}"
    );
    // The scanner's vertical alert was not repeated after the crash: its
    // re-alert state came back from the checkpoint.
    let v_total = r3.alerts.iter().filter(|a| source(a) == SCANNER_V).count();
    assert_eq!(v_total, 1, "{:?}", r3.alerts);
    for a in &r3.alerts {
        assert!(
            [SCANNER_V, SCANNER_H].contains(&source(a)),
            "a benign host alerted: {a}"
        );
    }
    assert_eq!(r3.kernel_counter("records_lost"), Some(0), "{ctx}");

    // A corrupt state file: one clear line naming it; nothing attached.
    fs::write(
        &state,
        b"{\"kind\":\"slowscan-engine-state\",\"format\":1,\"sav",
    )
    .unwrap();
    let out = lab
        .sensor
        .command(bin.to_str().unwrap())
        .args(["run", "--iface", SENSOR_IF, "--metrics", "off", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt state was accepted: {err}");
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("slowscan: error: engine state ")
            && last.contains(&state_arg)
            && last.contains("not a slowscan engine state")
            && last.contains("--state-reset"),
        "{err}"
    );
    assert!(!err.contains("attached"), "{err}");
    // … and --state-reset starts afresh over it.
    let out = lab
        .sensor
        .command(bin.to_str().unwrap())
        .args([
            "run",
            "--iface",
            SENSOR_IF,
            "--metrics",
            "off",
            "--for",
            "1s",
        ])
        .args(["--state", &state_arg, "--state-reset"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--state-reset: {err}");
    // Overwritten with a fresh state of the current format (3, binary).
    let saved = fs::read(&state).unwrap();
    assert_eq!(&saved[..14], b"SLOWSCAN-STATE");
    assert_eq!(saved[14..18], 3u32.to_le_bytes());
}

#[test]
fn config_file_values_flags_override_unknown_keys_refused() {
    let name = "config_file_values_flags_override_unknown_keys_refused";
    if !privileged(name) {
        return;
    }
    let bin = slowscan_bin();
    let lab = VethLab::new();
    let dir = std::env::temp_dir().join(slowscan_tests::unique("slowscan-cfg-"));
    fs::create_dir_all(&dir).unwrap();
    let alerts = dir.join("alerts.jsonl");
    let state = dir.join("state.json");
    let config = dir.join("run.toml");
    fs::write(
        &config,
        format!(
            r#"# slowscan run --config
iface = "{iface}"
generic = true
window = "600"
window-mode = "sliding"
threshold = 9
handshake-timeout = "2s"
alerts = "{alerts}"
metrics = "off"
state = "{state}"
checkpoint-every = 1
for = "2s"
"#,
            iface = lab.if_b,
            alerts = alerts.display(),
            state = state.display(),
        ),
    )
    .unwrap();
    let out = lab
        .b
        .command(bin.to_str().unwrap())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--threshold", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let want = format!(
        "detecting on {}: detectors 10m:5 (sliding; service map 30d); handshake timeout 2 s; alerts to {}",
        lab.if_b,
        alerts.display()
    );
    assert!(err.contains(&want), "want `{want}` in:\n{err}");
    assert!(err.contains("(--for elapsed)"), "{err}");
    assert!(state.exists() && alerts.exists(), "{err}");

    // An unknown key: one line naming it and the file.
    fs::write(
        &config,
        format!("iface = \"{}\"\ncolour = \"blue\"\n", lab.if_b),
    )
    .unwrap();
    let out = lab
        .b
        .command(bin.to_str().unwrap())
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "config file {}: unknown key `colour`",
            config.display()
        )),
        "{err}"
    );
    // A bad value: names its key.
    fs::write(
        &config,
        format!("iface = \"{}\"\nthreshold = -3\n", lab.if_b),
    )
    .unwrap();
    let out = lab
        .b
        .command(bin.to_str().unwrap())
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad value for `threshold`"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}
