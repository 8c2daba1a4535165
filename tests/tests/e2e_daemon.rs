//! The sensor as a daemon, end to end (root; a failure under `CI=true`): a
//! veth pair, `slowscan run --mirror` on one end (in that namespace's
//! network namespace only, so its pins and runtime file are visible here),
//! frames injected at the other end.
//! * signals: SIGHUP reopens the alerts file (logrotate's `create` and
//!   `copytruncate`) and rereads the whitelist and ignore files; SIGUSR1
//!   checkpoints and logs a summary; every terminating signal stops cleanly
//!   (summary, checkpoint, pins and runtime file removed, program detached);
//! * a full disk (a tiny tmpfs, full from the start): alerts wait in memory
//!   and are written in order when space returns; checkpoints fail, are
//!   retried, resume, and their age (from the start while none succeeded)
//!   falls back;
//! * two sensors on same-named interfaces in two network namespaces stay
//!   apart, and a killed sensor is reported as such;
//! * a vanished interface is reported, and the sensor reattaches when it returns.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use slowscan_tests::{
    LAB_A, LAB_B, Netns, VethLab,
    lab::{self, Sensor, netns_key, scratch, setup},
    mirrorlab::{SCANNER, WAIT, cli, injector, lines, probe, wait_lines},
    privileged, sh, slowscan_bin, tools_present, unique,
};

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn pins_of(ns: &Netns, iface: &str) -> PathBuf {
    Path::new("/sys/fs/bpf/slowscan")
        .join(netns_key(ns))
        .join(iface)
}

fn runtime_of(ns: &Netns, iface: &str) -> PathBuf {
    Path::new("/run/slowscan")
        .join(netns_key(ns))
        .join(format!("{iface}.json"))
}

fn start(lab: &VethLab, dir: &Path, extra: &[&str]) -> Sensor {
    let alerts = dir.join("alerts.jsonl");
    let mut args = vec![
        "run",
        "--iface",
        &lab.if_b,
        "--mirror",
        "--detector",
        "1h:3",
        "--handshake-timeout",
        "1",
        "--alerts",
        alerts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let log = dir.join(unique("sensor-") + ".log");
    Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &args,
        alerts.clone(),
        log,
        "detecting on",
    )
    .expect("starting slowscan run")
}

#[test]
fn signals_reload_report_and_stop_cleanly() {
    let Some((lab, dir)) = setup("signals_reload_report_and_stop_cleanly", "sssig", &[]) else {
        return;
    };
    let wl = dir.join("whitelist.json");
    fs::write(&wl, r#"{"version":1,"entries":[]}"#).unwrap();
    let ignore = dir.join("ignore.txt");
    fs::write(&ignore, "203.0.113.0/24\n").unwrap();
    let state = dir.join("state");
    let s = start(
        &lab,
        &dir,
        &[
            "--metrics",
            "off",
            "--whitelist",
            wl.to_str().unwrap(),
            "--ignore-sources",
            ignore.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
    );
    let alerts = dir.join("alerts.jsonl");
    let fd = injector(&lab);

    // The first alert (4 failed pairs > 3).
    probe(&fd, 1..=4);
    wait_lines(&alerts, 1);

    // logrotate `create`: the file renamed away, SIGHUP; the next alert (the
    // count doubled to 8) goes to a new file of the same name.
    let rotated = dir.join("alerts.jsonl.1");
    fs::rename(&alerts, &rotated).unwrap();
    s.signal(libc::SIGHUP);
    s.wait_log("reopened", WAIT).unwrap();
    probe(&fd, 5..=8);
    assert_eq!(wait_lines(&alerts, 1).len(), 1);
    assert_eq!(
        lines(&rotated).len(),
        1,
        "the rotated file keeps the first alert"
    );

    // logrotate `copytruncate`: copied, emptied in place, no signal; the next
    // alert (16) starts the emptied file, without a hole before it.
    fs::copy(&alerts, dir.join("alerts.jsonl.2")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&alerts)
        .unwrap();
    probe(&fd, 9..=16);
    let after = wait_lines(&alerts, 1);
    assert_eq!(after[0]["slowscan"]["failed_pairs"], 16, "{after:?}");
    assert!(!fs::read(&alerts).unwrap().contains(&0), "a hole of NULs");

    // SIGHUP rereads the whitelist file into the kernel map …
    fs::write(
        &wl,
        format!(r#"{{"version":1,"entries":[{{"ip":"{LAB_B}","port":80}}]}}"#),
    )
    .unwrap();
    s.signal(libc::SIGHUP);
    s.wait_log("1 entry in the kernel maps (1 added, 0 removed)", WAIT)
        .unwrap();
    let listed = ok(&cli(&lab.b, &["whitelist", "list", "--iface", &lab.if_b]));
    assert_eq!(listed.trim(), format!("{LAB_B}:80"));
    // … and the ignore file into the kernel ignore maps.
    fs::write(&ignore, format!("203.0.113.0/24\n{LAB_A}/32\n")).unwrap();
    s.signal(libc::SIGHUP);
    s.wait_log("2 prefixes in the kernel maps (1 added, 0 removed)", WAIT)
        .unwrap();
    let listed = ok(&cli(&lab.b, &["ignore", "list", "--iface", &lab.if_b]));
    assert_eq!(listed, format!("{LAB_A}/32\n203.0.113.0/24\n"));

    // SIGUSR1: a checkpoint and a summary now.
    s.signal(libc::SIGUSR1);
    let log = s.wait_log("summary (SIGUSR1)", WAIT).unwrap();
    assert!(
        log.contains("SIGUSR1: engine state checkpointed to"),
        "{log}"
    );

    // SIGQUIT, like every terminating signal, is a clean stop.
    let (pins, runtime) = (pins_of(&lab.b, &lab.if_b), runtime_of(&lab.b, &lab.if_b));
    assert!(pins.exists() && runtime.exists());
    s.signal(libc::SIGQUIT);
    let r = s.wait(WAIT).unwrap();
    assert!(r.status.success(), "{}", r.log);
    assert!(r.summary().contains("(SIGQUIT)"), "{}", r.log);
    assert!(r.log.contains("engine state saved to"), "{}", r.log);
    assert!(!pins.exists(), "pins left in {}", pins.display());
    assert!(
        !runtime.exists(),
        "runtime file left: {}",
        runtime.display()
    );
    let link = String::from_utf8(lab.b.exec(&["ip", "link", "show", &lab.if_b]).stdout).unwrap();
    assert!(!link.contains("xdp"), "still attached: {link}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_terminating_signal_stops_cleanly() {
    let Some((lab, dir)) = setup("every_terminating_signal_stops_cleanly", "ssstop", &[]) else {
        return;
    };
    let sigs = [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGPWR, "SIGPWR"),
        (libc::SIGRTMIN() + 3, "a real-time signal"),
        (libc::SIGRTMAX(), "a real-time signal"),
        // Sent by another process (`kill -ABRT`), not an abort of its own.
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    for (sig, label) in sigs {
        let s = start(&lab, &dir, &["--metrics", "off"]);
        s.signal(sig);
        let r = s.wait(WAIT).unwrap();
        assert!(r.status.success(), "{label}: {}", r.log);
        assert!(
            r.summary().contains(&format!("({label})")),
            "{label}: {}",
            r.log
        );
        assert!(!pins_of(&lab.b, &lab.if_b).exists(), "{label}: pins left");
        assert!(
            !runtime_of(&lab.b, &lab.if_b).exists(),
            "{label}: runtime file left"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A terminating signal that comes while the sensor is still starting
/// (here: loading a 60,000-entry whitelist into the kernel map, after
/// attaching) is acted on once it runs: the clean shutdown, exit 0, pins
/// and runtime file removed, nothing left attached. To place the signal
/// surely before the loop, the sensor is frozen (SIGSTOP) as soon as it
/// says it attached; SIGTERM is sent while it is frozen before `detecting
/// on`, then it is let go (SIGCONT): the signal is delivered before it runs
/// another instruction.
#[test]
fn a_stop_while_starting_is_a_clean_shutdown() {
    let Some((lab, dir)) = setup("a_stop_while_starting_is_a_clean_shutdown", "ssearly", &[])
    else {
        return;
    };
    let wl = dir.join("whitelist.json");
    let entries: Vec<String> = (1..=60_000u32)
        .map(|i| format!(r#"{{"ip":"2001:db8::{i:x}","port":80}}"#))
        .collect();
    fs::write(
        &wl,
        format!(r#"{{"version":1,"entries":[{}]}}"#, entries.join(",")),
    )
    .unwrap();
    for attempt in 1..=5 {
        let s = Sensor::start_in(
            &lab.b,
            &slowscan_bin(),
            &[
                "run",
                "--iface",
                &lab.if_b,
                "--mirror",
                "--metrics",
                "off",
                "--whitelist",
                wl.to_str().unwrap(),
            ],
            dir.join("alerts.jsonl"),
            dir.join(format!("early{attempt}.log")),
            "slowscan attached to",
        )
        .expect("starting slowscan run");
        s.signal(libc::SIGSTOP);
        let caught = !s.log_so_far().contains("detecting on");
        s.signal(libc::SIGTERM);
        s.signal(libc::SIGCONT);
        let r = s.wait(WAIT).unwrap();
        assert!(r.status.success(), "{}", r.log);
        assert!(r.summary().contains("(SIGTERM)"), "{}", r.log);
        assert!(!pins_of(&lab.b, &lab.if_b).exists(), "pins left");
        assert!(!runtime_of(&lab.b, &lab.if_b).exists(), "runtime file left");
        let link =
            String::from_utf8(lab.b.exec(&["ip", "link", "show", &lab.if_b]).stdout).unwrap();
        assert!(!link.contains("xdp"), "still attached: {link}");
        if caught {
            assert!(
                r.log
                    .contains("SIGTERM arrived while starting: stopping cleanly"),
                "{}",
                r.log
            );
            fs::remove_dir_all(&dir).unwrap();
            return;
        }
    }
    panic!("the sensor was never frozen before its loop in 5 starts");
}

/// `--kernel-pending-max` sizes the kernel's pending table at load: the
/// pinned map's max_entries follow it, the start-up log and `slowscan
/// status` report it, and a size out of bounds is refused before anything
/// is attached.
#[test]
fn kernel_pending_max_sizes_the_pending_table() {
    let Some((lab, dir)) = setup("kernel_pending_max_sizes_the_pending_table", "sspend", &[])
    else {
        return;
    };
    let pending_map = || {
        let p = pins_of(&lab.b, &lab.if_b)
            .join(format!("v{}", slowscan_common::FORMAT_VERSION))
            .join(slowscan_common::maps::PENDING);
        aya::maps::MapInfo::from_pin(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .max_entries()
    };
    for (flag, want) in [
        (None, slowscan_common::PENDING_MAX),
        (Some("1048576"), 1 << 20),
    ] {
        let mut extra = vec!["--metrics", "off"];
        if let Some(n) = flag {
            extra.extend(["--kernel-pending-max", n]);
        }
        let s = start(&lab, &dir, &extra);
        assert_eq!(pending_map(), want);
        assert!(
            s.log_so_far()
                .contains(&format!("kernel pending table: {want} entries")),
            "{}",
            s.log_so_far()
        );
        let status = ok(&cli(&lab.b, &["status", "--iface", &lab.if_b]));
        assert!(
            status.contains(&format!("of {want} in the kernel table")),
            "{status}"
        );
        s.stop().unwrap();
    }
    for bad in ["100", "16777217"] {
        let o = cli(
            &lab.b,
            &["run", "--iface", &lab.if_b, "--kernel-pending-max", bad],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(
            err.contains(&format!(
                "--kernel-pending-max {bad} must be between 1024 and 16777216"
            )),
            "{err}"
        );
        assert!(!err.contains("attached"), "{err}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: PathBuf, size: &str) -> Self {
        fs::create_dir_all(&at).unwrap();
        sh(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            at.to_str().unwrap(),
        ]);
        Self(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0x55u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

fn metric(ns: &Netns, name: &str) -> Option<f64> {
    let out = ns.command("python3")
        .args([
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9464/metrics',timeout=5).read().decode())",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Polls the sensor's `name` metric until `ok` holds for it; its value.
fn wait_metric(s: &Sensor, ns: &Netns, name: &str, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let end = std::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = metric(ns, name).filter(|v| ok(*v)) {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "{name} never {what} (now {:?}):\n{}",
            metric(ns, name),
            s.log_so_far()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_full_disk_does_not_stop_detection() {
    let Some((lab, dir)) = setup(
        "a_full_disk_does_not_stop_detection",
        "ssdisk",
        &["python3"],
    ) else {
        return;
    };
    let disk = Tmpfs::new(dir.join("disk"), "256k");
    let state = disk.0.join("state");
    let alerts_path = disk.0.join("alerts.jsonl");
    // Full before the sensor starts: not one checkpoint can succeed.
    let filler = disk.0.join("filler");
    fill(&filler);
    let s = Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &[
            "run",
            "--iface",
            &lab.if_b,
            "--mirror",
            "--detector",
            "1h:3",
            "--handshake-timeout",
            "1",
            "--metrics",
            "127.0.0.1:9464",
            "--alerts",
            alerts_path.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--checkpoint-every",
            "1",
        ],
        alerts_path.clone(),
        dir.join("sensor.log"),
        "detecting on",
    )
    .expect("starting slowscan run");
    let started = s.log_so_far();
    assert!(
        started.contains("checkpointing the engine state fails")
            && !started.contains("checkpointed to"),
        "the start-up checkpoint should fail on the full disk:\n{started}"
    );
    let ckpt_failed = "checkpointing the engine state fails";
    let fd = injector(&lab);

    // Detection goes on: both alerts (4, then the doubled 8) are decided and
    // wait in memory.
    probe(&fd, 1..=4);
    let write_fails = format!("writing alerts to {} fails", alerts_path.display());
    s.wait_log(&write_fails, WAIT).unwrap();
    probe(&fd, 5..=8);
    wait_metric(&s, &lab.b, "slowscan_alerts_queued", "reached 2", |v| {
        v == 2.0
    });
    assert!(metric(&lab.b, "slowscan_alert_write_errors_total").unwrap_or(0.0) >= 1.0);
    assert!(
        lines(&alerts_path).is_empty(),
        "nothing fit on the full disk"
    );
    // Checkpoints are retried (failures counted), the failure logged once;
    // with none ever good, the age counts from the start.
    wait_metric(
        &s,
        &lab.b,
        "slowscan_checkpoint_failures_total",
        "reached 3",
        |v| v >= 3.0,
    );
    let failing_age = wait_metric(
        &s,
        &lab.b,
        "slowscan_checkpoint_age_seconds",
        "reached 3 s",
        |v| v >= 3.0,
    );
    let log = s.log_so_far();
    assert_eq!(log.matches(ckpt_failed).count(), 1, "{log}");
    assert_eq!(log.matches(&write_fails).count(), 1, "{log}");
    assert!(!state.exists(), "a state file on the full disk");

    // Space returns. Only what is logged from here on counts.
    let mark = s.mark();
    fs::remove_file(&filler).unwrap();
    s.wait_log_after(
        mark,
        &format!("writing alerts to {} again after", alerts_path.display()),
        WAIT,
    )
    .unwrap();
    let got = wait_lines(&alerts_path, 2);
    let counts: Vec<Option<u64>> = got
        .iter()
        .map(|a| a["slowscan"]["failed_pairs"].as_u64())
        .collect();
    assert_eq!(counts, [Some(4), Some(8)], "the queue, in order");
    s.wait_log_after(
        mark,
        &format!(
            "engine state checkpointed to {} again after",
            state.display()
        ),
        WAIT,
    )
    .unwrap();
    assert!(
        fs::metadata(&state).is_ok_and(|m| m.len() > 0),
        "no checkpoint in {}",
        state.display()
    );
    wait_metric(
        &s,
        &lab.b,
        "slowscan_checkpoint_age_seconds",
        &format!("fell below {failing_age}"),
        |v| v < failing_age,
    );
    // The gauge is published on the next tick after the queue drained.
    wait_metric(&s, &lab.b, "slowscan_alerts_queued", "fell to 0", |v| {
        v == 0.0
    });
    // A new alert (16) is written at once.
    probe(&fd, 9..=16);
    assert_eq!(
        wait_lines(&alerts_path, 3)[2]["slowscan"]["failed_pairs"],
        16
    );

    s.signal(libc::SIGTERM);
    let r = s.wait(WAIT).unwrap();
    assert!(r.status.success(), "{}", r.log);
    assert!(r.log.contains("engine state saved to"), "{}", r.log);
    assert!(r.summary().contains("alerts_dropped=0"), "{}", r.log);
    assert_eq!(r.log.matches(ckpt_failed).count(), 1, "{}", r.log);
    drop(disk);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sensors_in_two_network_namespaces_stay_apart() {
    let name = "sensors_in_two_network_namespaces_stay_apart";
    if !privileged(name) || !tools_present(name, &["nsenter"]) {
        return;
    }
    let iface = unique("ssdup");
    let peer = unique("ssdp");
    let dir = scratch("ssns");
    let (n1, n2) = (Netns::new("ssn1"), Netns::new("ssn2"));
    let mut sensors = Vec::new();
    for (i, ns) in [&n1, &n2].into_iter().enumerate() {
        ns.exec(&[
            "ip", "link", "add", &iface, "type", "veth", "peer", "name", &peer,
        ]);
        ns.exec(&["ip", "link", "set", &iface, "up"]);
        ns.exec(&["ip", "link", "set", &peer, "up"]);
        let wl = dir.join(format!("wl{i}.json"));
        fs::write(&wl, r#"{"version":1,"entries":[]}"#).unwrap();
        let s = Sensor::start_in(
            ns,
            &slowscan_bin(),
            &[
                "run",
                "--iface",
                &iface,
                "--mirror",
                "--metrics",
                "off",
                "--whitelist",
                wl.to_str().unwrap(),
            ],
            dir.join(format!("alerts{i}")),
            dir.join(format!("sensor{i}.log")),
            "detecting on",
        )
        .expect("starting slowscan run");
        sensors.push((s, wl));
    }
    assert_ne!(netns_key(&n1), netns_key(&n2));
    assert!(runtime_of(&n1, &iface).exists() && runtime_of(&n2, &iface).exists());

    ok(&cli(
        &n1,
        &["whitelist", "add", "198.51.100.7:80", "--iface", &iface],
    ));
    ok(&cli(
        &n2,
        &["ignore", "add", "203.0.113.0/24", "--iface", &iface],
    ));
    assert_eq!(
        ok(&cli(&n1, &["whitelist", "list", "--iface", &iface])).trim(),
        "198.51.100.7:80"
    );
    assert_eq!(
        ok(&cli(&n2, &["whitelist", "list", "--iface", &iface])).trim(),
        ""
    );
    assert_eq!(
        ok(&cli(&n1, &["ignore", "list", "--iface", &iface])).trim(),
        ""
    );
    assert!(
        fs::read_to_string(&sensors[0].1)
            .unwrap()
            .contains("198.51.100.7")
    );
    assert!(
        !fs::read_to_string(&sensors[1].1)
            .unwrap()
            .contains("198.51.100.7")
    );

    // A sensor killed without a clean stop: its pins are stale, and the
    // command says so instead of reporting success.
    let (s1, _) = sensors.remove(0);
    let killed = s1.kill().unwrap();
    assert!(!killed.status.success());
    let out = cli(
        &n1,
        &["whitelist", "add", "198.51.100.8:80", "--iface", &iface],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "added to a dead sensor: {err}");
    assert!(err.contains("has exited without a clean stop"), "{err}");
    // The other sensor is untouched.
    ok(&cli(
        &n2,
        &["whitelist", "add", "198.51.100.9:80", "--iface", &iface],
    ));

    let _ = fs::remove_dir_all(pins_of(&n1, &iface).parent().unwrap());
    let _ = fs::remove_dir_all(runtime_of(&n1, &iface).parent().unwrap());
    let (s2, _) = sensors.remove(0);
    s2.signal(libc::SIGTERM);
    assert!(s2.wait(WAIT).unwrap().status.success());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_vanished_interface_is_reported_and_reattached() {
    let Some((lab, dir)) = setup(
        "a_vanished_interface_is_reported_and_reattached",
        "ssgone",
        &[],
    ) else {
        return;
    };
    let s = start(&lab, &dir, &["--metrics", "off"]);
    lab.b.exec(&["ip", "link", "del", &lab.if_b]);
    s.wait_log("vanished", WAIT).unwrap();
    // The same names again, in the same namespaces.
    sh(&[
        "ip",
        "link",
        "add",
        &lab.if_a,
        "netns",
        &lab.a.name,
        "type",
        "veth",
        "peer",
        "name",
        &lab.if_b,
        "netns",
        &lab.b.name,
    ]);
    lab.a.exec(&["ip", "link", "set", &lab.if_a, "up"]);
    lab.b.exec(&["ip", "link", "set", &lab.if_b, "up"]);
    s.wait_log("is back", WAIT).unwrap();
    let fd = injector(&lab);
    probe(&fd, 1..=4);
    let got = wait_lines(&dir.join("alerts.jsonl"), 1);
    assert_eq!(got[0]["source"]["ip"], "198.51.100.66");
    s.signal(libc::SIGTERM);
    let r = s.wait(WAIT).unwrap();
    assert!(r.status.success(), "{}", r.log);
    assert!(r.summary().contains("interface_losses=1"), "{}", r.log);
    lab::sleep(Duration::from_millis(10)).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_and_explain_answer_from_a_live_sensor() {
    let Some((lab, dir)) = setup(
        "status_and_explain_answer_from_a_live_sensor",
        "ssstatus",
        &["ip"],
    ) else {
        return;
    };
    let s = start(
        &lab,
        &dir,
        &["--metrics", "off", "--sensor-name", "lab-sensor-7"],
    );
    let alerts = dir.join("alerts.jsonl");
    // --mirror on an interface with an address: the consequence is said.
    assert!(
        s.log_so_far().contains("which has addresses"),
        "{}",
        s.log_so_far()
    );
    let fd = injector(&lab);
    probe(&fd, 1..=4);
    let a = wait_lines(&alerts, 1);
    // Identity in every alert.
    assert_eq!(a[0]["observer"]["name"], "lab-sensor-7", "{}", a[0]);
    assert_eq!(
        a[0]["observer"]["ingress"]["interface"]["name"], lab.if_b,
        "{}",
        a[0]
    );

    let scanner = std::net::IpAddr::from(SCANNER).to_string();
    let v: serde_json::Value = serde_json::from_str(&ok(&cli(
        &lab.b,
        &["status", "--iface", &lab.if_b, "--json"],
    )))
    .unwrap();
    assert_eq!(v["sensor_name"], "lab-sensor-7", "{v}");
    assert_eq!(v["phase"], "detecting", "{v}");
    assert_eq!(v["detectors"][0]["name"], "1h:3", "{v}");
    let top = &v["detectors"][0]["top"][0];
    assert_eq!(top["ip"], scanner, "{v}");
    assert_eq!(top["failed_pairs"], 4, "{v}");
    assert_eq!(top["shape"], "vertical", "{v}");
    assert_eq!(v["records_lost"], 0, "{v}");
    assert_eq!(v["alerts_written"], 1, "{v}");
    assert!(
        v["kernel"].as_array().is_some_and(|k| k
            .iter()
            .any(|c| c[0] == "frames" && c[1].as_u64() > Some(0))),
        "{v}"
    );
    // The same through `ip netns exec`, which mounts its own /sys: the
    // socket lives in /run, keyed by the network namespace.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.b.name])
        .arg(slowscan_bin())
        .args(["status", "--iface", &lab.if_b])
        .output()
        .unwrap();
    let human = ok(&out);
    assert!(
        human.contains("detector 1h:3") && human.contains(&scanner),
        "{human}"
    );

    let x: serde_json::Value = serde_json::from_str(&ok(&cli(
        &lab.b,
        &["explain", &scanner, "--iface", &lab.if_b, "--json"],
    )))
    .unwrap();
    assert_eq!(x["tracked"], true, "{x}");
    let ports: std::collections::BTreeSet<u64> = x["failed_pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_u64().unwrap())
        .collect();
    assert_eq!(ports, (1..=4).collect(), "{x}");
    let human = ok(&cli(
        &lab.b,
        &["explain", "203.0.113.250", "--iface", &lab.if_b],
    ));
    assert!(human.contains("no counted failure"), "{human}");

    // Another network namespace has no sensor on that name: said so.
    let out = cli(&lab.a, &["status", "--iface", &lab.if_b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no sensor is running on"),
        "{err}"
    );
    let r = s.stop().expect("SIGTERM the sensor");
    assert!(r.status.success(), "{}", r.log);
    // The socket goes with the sensor.
    let out = cli(&lab.b, &["status", "--iface", &lab.if_b]);
    assert!(!out.status.success());
}

/// Whitelist rules over many destinations hold live traffic in the kernel
/// (R4.4): a prefix on a port range from the file at start, another added
/// and removed through `slowscan whitelist`, with the file kept in step.
/// The first alert counts only the probes no rule covered.
#[test]
fn whitelist_rules_hold_live_traffic() {
    let Some((lab, dir)) = setup("whitelist_rules_hold_live_traffic", "sswlrule", &[]) else {
        return;
    };
    let wl = dir.join("whitelist.json");
    fs::write(
        &wl,
        r#"{"version":1,"entries":[{"ip":"198.51.100.0/24","port":"1-20"}]}"#,
    )
    .unwrap();
    let s = start(
        &lab,
        &dir,
        &["--metrics", "off", "--whitelist", wl.to_str().unwrap()],
    );
    let alerts = dir.join("alerts.jsonl");
    let fd = injector(&lab);
    probe(&fd, 1..=20);

    let iface = lab.if_b.as_str();
    ok(&cli(
        &lab.b,
        &[
            "whitelist",
            "add",
            "198.51.100.0/28:21-40",
            "[2001:db8::/32]:*",
            "--iface",
            iface,
        ],
    ));
    let listed = ok(&cli(&lab.b, &["whitelist", "list", "--iface", iface]));
    assert_eq!(
        listed,
        "198.51.100.0/24:1-20\n198.51.100.0/28:21-40\n[2001:db8::/32]:*\n"
    );
    let file = fs::read_to_string(&wl).unwrap();
    assert!(
        file.contains(r#""port": "21-40""#) && file.contains(r#""ip": "2001:db8::/32""#),
        "{file}"
    );
    probe(&fd, 21..=40);

    ok(&cli(
        &lab.b,
        &[
            "whitelist",
            "remove",
            "198.51.100.0/28:21-40",
            "--iface",
            iface,
        ],
    ));
    assert!(!fs::read_to_string(&wl).unwrap().contains("21-40"));
    probe(&fd, 41..=44);
    let first = &wait_lines(&alerts, 1)[0];
    assert_eq!(first["slowscan"]["failed_pairs"], 4, "{first}");
    let ports: Vec<u64> = first["slowscan"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, vec![41, 42, 43, 44], "{first}");

    s.signal(libc::SIGTERM);
    let r = s.wait(WAIT).unwrap();
    assert!(r.status.success(), "{}", r.log);
    fs::remove_dir_all(&dir).unwrap();
}
