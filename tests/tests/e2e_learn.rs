//! Learning as the paper does it (R4.1–R4.3, §5.1): `slowscan learn --iface
//! IF --for DURATION --out FILE` on a live interface, with real connections
//! from one namespace to real servers in another. Established connections to
//! an eligible port become entries; an ineligible high port does not.

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use slowscan_tests::{
    LAB_B, VethLab,
    lab::{Sensor, setup},
    slowscan_bin,
};

/// A child process killed (by its PID) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_server(lab: &VethLab, port: u16) -> Proc {
    let child = lab
        .b
        .command("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", LAB_B])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// The whitelist file at `out` holds the lab's web server (port 80).
fn assert_web_learned(out: &std::path::Path, ctx: &str) {
    let wl = slowscan::whitelist::Whitelist::load(out).unwrap();
    let key = slowscan::whitelist::key_of(LAB_B.parse().unwrap(), 80);
    assert!(wl.contains(&key), "{ctx}: {}", wl.to_json());
}

fn fetch(lab: &VethLab, port: u16) {
    let url = format!("http://{LAB_B}:{port}/");
    let script = format!(
        "import urllib.request,time\nfor i in range(40):\n  try:\n    urllib.request.urlopen('{url}', timeout=2).read(); break\n  except Exception: time.sleep(0.1)\nelse: raise SystemExit('no server')"
    );
    lab.a.exec(&["python3", "-c", &script]);
}

#[test]
fn learn_on_a_live_interface_writes_the_eligible_destinations() {
    let name = "learn_on_a_live_interface_writes_the_eligible_destinations";
    let Some((lab, dir)) = setup(name, "sslearn", &["python3"]) else {
        return;
    };
    let out = dir.join("whitelist.json");
    let _web = http_server(&lab, 80);
    let _alt = http_server(&lab, 8080);
    let sensor = lab
        .b
        .command(slowscan_bin().to_str().unwrap())
        .args([
            "learn",
            "--iface",
            &lab.if_b,
            "--for",
            "8s",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sensor = Proc(sensor);
    // The connections start once the program is attached (a loaded machine
    // may take seconds to load and attach it).
    for _ in 0..100 {
        let link = String::from_utf8(lab.b.exec(&["ip", "link", "show", &lab.if_b]).stdout)
            .unwrap_or_default();
        if link.contains("xdp") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        fetch(&lab, 80);
        fetch(&lab, 8080);
    }
    let status = wait(&mut sensor.0, Duration::from_secs(20));
    let mut log = String::new();
    use std::io::Read;
    sensor
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "slowscan learn failed: {log}");
    let wl: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let entries: Vec<(String, u64, u64)> = wl["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["ip"].as_str().unwrap().to_string(),
                e["port"].as_u64().unwrap(),
                e["established"].as_u64().unwrap(),
            )
        })
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        entries.len(),
        1,
        "only the eligible destination (R4.3): {entries:?}"
    );
    assert_eq!((entries[0].0.as_str(), entries[0].1), (LAB_B, 80));
    assert!(
        entries[0].2 >= 3,
        "three established connections at least: {entries:?}"
    );
    // The sensor detached on its own: nothing is left on the interface.
    let link = String::from_utf8(lab.b.exec(&["ip", "link", "show", &lab.if_b]).stdout).unwrap();
    assert!(!link.contains("xdp"), "{link}");
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "slowscan learn did not stop by itself"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Learning never loses its result (R4.1): the output's missing directory
/// is created before learning starts, an unwritable output stops the start
/// at once, and SIGTERM during learning writes what was learned so far (and
/// `slowscan learn` says, with a non-zero exit, that it is partial).
#[test]
fn learning_output_is_checked_first_and_a_stop_keeps_what_was_learned() {
    let name = "learning_output_is_checked_first_and_a_stop_keeps_what_was_learned";
    let Some((lab, dir)) = setup(name, "sslearn2", &["python3"]) else {
        return;
    };

    // Unwritable: refused before anything is attached.
    let bad = lab
        .b
        .command(slowscan_bin().to_str().unwrap())
        .args([
            "learn",
            "--iface",
            &lab.if_b,
            "--for",
            "9h",
            "--out",
            "/proc/slowscan-nope/wl.json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{err}");
    assert!(
        err.contains("--out /proc/slowscan-nope/wl.json") && err.contains("cannot create"),
        "{err}"
    );
    assert!(!err.contains("attached"), "{err}");

    let out = dir.join("new/sub/whitelist.json");
    let _web = http_server(&lab, 80);
    let learner = Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &[
            "learn",
            "--iface",
            &lab.if_b,
            "--for",
            "9h",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.join("unused"),
        dir.join("learn.log"),
        "learning the whitelist",
    )
    .unwrap();
    assert!(
        out.parent().unwrap().is_dir(),
        "the directory is made before learning"
    );
    for _ in 0..3 {
        fetch(&lab, 80);
    }
    // Records reach the engine within the reader's poll and the tick.
    std::thread::sleep(Duration::from_millis(700));
    learner.signal(libc::SIGTERM);
    let r = learner.wait(Duration::from_secs(15)).unwrap();
    assert!(
        !r.status.success(),
        "a partial whitelist is not a success:\n{}",
        r.log
    );
    assert!(
        r.log.contains("learning interrupted by SIGTERM"),
        "{}",
        r.log
    );
    assert!(r.log.contains("(a partial whitelist)"), "{}", r.log);
    assert_web_learned(&out, "SIGTERM");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A learned set larger than the kernel whitelist map is written to
/// `--learn-out` first; the map-full error then names `--whitelist-max`.
#[test]
fn a_learned_set_larger_than_the_kernel_map_is_written_first() {
    let name = "a_learned_set_larger_than_the_kernel_map_is_written_first";
    let Some((lab, dir)) = setup(name, "sslearn3", &["python3"]) else {
        return;
    };
    let out = dir.join("whitelist.json");
    let _web = http_server(&lab, 80);
    let _tls = http_server(&lab, 443);
    let sensor = Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &[
            "run",
            "--iface",
            &lab.if_b,
            "--metrics",
            "off",
            "--learn-for",
            "4s",
            "--learn-out",
            out.to_str().unwrap(),
            "--whitelist-max",
            "1",
        ],
        dir.join("alerts"),
        dir.join("run.log"),
        "learning the whitelist",
    )
    .unwrap();
    fetch(&lab, 80);
    fetch(&lab, 443);
    let r = sensor.wait(Duration::from_secs(20)).unwrap();
    assert!(!r.status.success(), "{}", r.log);
    assert!(r.log.contains("--whitelist-max"), "{}", r.log);
    assert!(
        r.log.contains("kernel whitelist map is full (1 entries)"),
        "{}",
        r.log
    );
    let wl = slowscan::whitelist::Whitelist::load(&out).unwrap();
    assert_eq!(wl.len(), 2, "{}", wl.to_json());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Where a sensor in `ns` keeps its pins and its runtime file.
fn pins_and_runtime(ns: &slowscan_tests::Netns, iface: &str) -> [std::path::PathBuf; 2] {
    let key = slowscan_tests::lab::netns_key(ns);
    [
        std::path::Path::new("/sys/fs/bpf/slowscan")
            .join(&key)
            .join(iface),
        std::path::Path::new("/run/slowscan")
            .join(&key)
            .join(format!("{iface}.json")),
    ]
}

/// `slowscan run --learn-for 9h` in `lab.b`, learning into `out`.
fn run_learning(lab: &VethLab, dir: &std::path::Path, out: &std::path::Path, log: &str) -> Sensor {
    Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &[
            "run",
            "--iface",
            &lab.if_b,
            "--metrics",
            "off",
            "--learn-for",
            "9h",
            "--learn-out",
            out.to_str().unwrap(),
        ],
        dir.join("alerts"),
        dir.join(log),
        "learning the whitelist",
    )
    .unwrap()
}

/// SIGTERM or SIGINT during `slowscan run --learn-for`: what was learned so
/// far — every connection seen before the signal — is written and the log
/// says so; then the clean shutdown (exit 0, pins and runtime file gone).
#[test]
fn a_stop_during_run_learn_for_writes_what_was_learned() {
    let name = "a_stop_during_run_learn_for_writes_what_was_learned";
    let Some((lab, dir)) = setup(name, "sslearn4", &["python3"]) else {
        return;
    };
    let _web = http_server(&lab, 80);
    for (sig, label) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let out = dir.join(format!("{label}.json"));
        let sensor = run_learning(&lab, &dir, &out, &format!("{label}.log"));
        for _ in 0..3 {
            fetch(&lab, 80);
        }
        // No wait: the shutdown drains the ring before writing.
        sensor.signal(sig);
        let r = sensor.wait(Duration::from_secs(20)).unwrap();
        assert!(r.status.success(), "{label}: {}", r.log);
        let said = format!("learning interrupted by {label} after ");
        assert!(r.log.contains(&said), "{label}: {}", r.log);
        assert!(
            r.log.contains(&format!(
                "were written to {} (a partial whitelist)",
                out.display()
            )),
            "{label}: {}",
            r.log
        );
        assert!(r.summary().contains(&format!("({label})")), "{}", r.log);
        assert_web_learned(&out, label);
        for p in pins_and_runtime(&lab.b, &lab.if_b) {
            assert!(!p.exists(), "{label}: {} left", p.display());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A learned whitelist that cannot be written at the end (its directory
/// replaced by a file meanwhile) stops the sensor through the clean
/// shutdown — program detached, pins and runtime file removed, a summary —
/// with the error and a non-zero exit.
#[test]
fn a_learned_whitelist_that_cannot_be_written_stops_cleanly() {
    let name = "a_learned_whitelist_that_cannot_be_written_stops_cleanly";
    let Some((lab, dir)) = setup(name, "sslearn5", &["python3"]) else {
        return;
    };
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let out = sub.join("whitelist.json");
    let sensor = Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &[
            "run",
            "--iface",
            &lab.if_b,
            "--metrics",
            "off",
            "--learn-for",
            "2s",
            "--learn-out",
            out.to_str().unwrap(),
        ],
        dir.join("alerts"),
        dir.join("run.log"),
        "learning the whitelist",
    )
    .unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    std::fs::write(&sub, b"not a directory").unwrap();
    let r = sensor.wait(Duration::from_secs(20)).unwrap();
    assert!(!r.status.success(), "{}", r.log);
    assert!(
        r.log
            .contains("the learned whitelist (0 destinations) could not be written"),
        "{}",
        r.log
    );
    assert!(r.log.contains("detached from"), "{}", r.log);
    assert!(r.summary().contains("(error: "), "{}", r.log);
    for p in pins_and_runtime(&lab.b, &lab.if_b) {
        assert!(!p.exists(), "{} left", p.display());
    }
    let link = String::from_utf8(lab.b.exec(&["ip", "link", "show", &lab.if_b]).stdout).unwrap();
    assert!(!link.contains("xdp"), "still attached: {link}");
    std::fs::remove_dir_all(&dir).unwrap();
}
