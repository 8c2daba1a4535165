//! What an operator's first week trips over, end to end (root; a failure
//! under `CI=true`): a veth pair, `slowscan run --mirror` on one end (in
//! that namespace's network namespace only), frames injected at the other.
//! * SIGHUP after editing the config file applies what can change live
//!   (detectors, handshake timeout, alerts path …), logs each change, and
//!   names the keys that need a restart;
//! * a state directory the sensor cannot write: it detects, retries, and
//!   checkpoints once the directory is fixed;
//! * `--mirror` on a SPAN port with only its automatic IPv6 link-local
//!   address: no warning about the host's addresses;
//! * a second sensor on the interface: refused first, naming the first's
//!   PID; failed starts leave no empty alerts file;
//! * the shipped logrotate snippet, run by the real logrotate: forced twice
//!   in a row, and by size the same day; the files it creates and the
//!   sensor creates have the same mode.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use slowscan_tests::{
    LAB_B, VethLab,
    lab::{Sensor, scratch, setup},
    mirrorlab::{WAIT, cli, injector, lines, probe, wait_lines},
    privileged, slowscan_bin, tools_present, unique,
};

/// `slowscan run args…` on the lab's sensor side, alerts to `alerts`.
fn start(lab: &VethLab, dir: &Path, alerts: &Path, args: &[&str]) -> Sensor {
    let log = dir.join(unique("sensor-") + ".log");
    let mut argv = vec!["run"];
    argv.extend_from_slice(args);
    Sensor::start_in(
        &lab.b,
        &slowscan_bin(),
        &argv,
        alerts.to_path_buf(),
        log,
        "detecting on",
    )
    .expect("starting slowscan run")
}

#[test]
fn sighup_applies_config_edits_and_names_what_needs_a_restart() {
    let Some((lab, dir)) = setup(
        "sighup_applies_config_edits_and_names_what_needs_a_restart",
        "ssreload",
        &[],
    ) else {
        return;
    };
    let (first, second) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    let config = dir.join("sensor.toml");
    let write_config = |detectors: &str, timeout: &str, alerts: &Path, ring: u32| {
        let text = format!(
            "iface = \"{}\"\nmirror = true\nmetrics = \"off\"\ndetector = [{detectors}]\n\
             handshake-timeout = \"{timeout}\"\nalerts = \"{}\"\nring-bytes = {ring}\n",
            lab.if_b,
            alerts.display()
        );
        fs::write(&config, text).unwrap();
    };
    write_config("\"1h:3\"", "1", &first, 1 << 24);
    let s = start(&lab, &dir, &first, &["--config", config.to_str().unwrap()]);
    let fd = injector(&lab);

    // Three failed pairs: under the threshold of 3.
    probe(&fd, 1..=3);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(lines(&first).is_empty(), "{:?}", lines(&first));

    // The ladder becomes 1h:2 beside 1d:16, the alerts go elsewhere, the
    // handshake timeout changes, and the ring (a restart) too.
    write_config("\"1h:2\", \"1d:16\"", "2", &second, 1 << 25);
    let mark = s.mark();
    s.signal(libc::SIGHUP);
    for said in [
        "detector: 1h:3 -> 1h:2, 1d:16",
        "handshake-timeout: 1 -> 2",
        &format!("alerts: {} -> {}", first.display(), second.display()),
        "restart needed for: ring-bytes (16777216 -> 33554432)",
        "the engine's state carried over",
        // What a new ladder cannot carry over exactly is said.
        "detector 1h:2 is new: it counts the failed pairs kept, as it would have",
        "detector 1d:16 is new: it counts the failed pairs of the last 1h only",
        "detector 1h:3 removed",
    ] {
        s.wait_log_after(mark, said, WAIT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let log = s.log_so_far();
    assert!(log.contains("detectors now 1h:2, 1d:16"), "{log}");

    // The three failures counted before the reload still count: a fourth
    // crosses the new 1h:2 (3 > 2 already; the next failure alerts), and
    // the alert goes to the new path, detector 1h:2.
    probe(&fd, 4..=4);
    let a = wait_lines(&second, 1);
    assert_eq!(a[0]["slowscan"]["detector"], "1h:2", "{}", a[0]);
    assert_eq!(a[0]["slowscan"]["failed_pairs"], 4, "{}", a[0]);
    assert!(lines(&first).is_empty(), "{:?}", lines(&first));

    // A config that no longer parses: nothing applied, said so; the
    // sensor goes on (and still reopens its alerts file).
    fs::write(&config, "iface = \"x\"\ncolour = \"blue\"\n").unwrap();
    let mark = s.mark();
    s.signal(libc::SIGHUP);
    s.wait_log_after(mark, "unknown key `colour`", WAIT)
        .unwrap();
    s.wait_log_after(mark, "reopened", WAIT).unwrap();

    // The restart-only key is still pending on a later reload, not forgotten.
    write_config("\"1h:2\", \"1d:16\"", "2", &second, 1 << 25);
    let mark = s.mark();
    s.signal(libc::SIGHUP);
    s.wait_log_after(mark, "restart needed for: ring-bytes", WAIT)
        .unwrap();
    let r = s.stop().unwrap();
    assert!(r.status.success(), "{}", r.log);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_state_directory_is_retried_while_detecting() {
    let Some((lab, dir)) = setup(
        "an_unwritable_state_directory_is_retried_while_detecting",
        "ssstatedir",
        &[],
    ) else {
        return;
    };
    // Root without CAP_DAC_OVERRIDE (the sensor drops it) cannot write a
    // directory that belongs to nobody.
    let state_dir = dir.join("state");
    fs::create_dir(&state_dir).unwrap();
    std::os::unix::fs::chown(&state_dir, Some(65534), Some(65534)).unwrap();
    let state = state_dir.join("eth.state");
    let alerts = dir.join("alerts.jsonl");
    let s = start(
        &lab,
        &dir,
        &alerts,
        &[
            "--iface",
            &lab.if_b,
            "--mirror",
            "--metrics",
            "off",
            "--detector",
            "1h:3",
            "--handshake-timeout",
            "1",
            "--alerts",
            alerts.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
    );
    s.wait_log("detection goes on, retried every 5 s", WAIT)
        .unwrap();
    // It detects: the message is true.
    let fd = injector(&lab);
    probe(&fd, 1..=4);
    assert_eq!(wait_lines(&alerts, 1).len(), 1);
    assert!(!state.exists());
    // The directory fixed: the next retry writes the state.
    std::os::unix::fs::chown(&state_dir, Some(0), Some(0)).unwrap();
    s.wait_log("checkpointed to", Duration::from_secs(10))
        .unwrap();
    assert!(state.exists(), "{}", s.log_so_far());
    let r = s.stop().unwrap();
    assert!(r.status.success(), "{}", r.log);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mirror_on_a_span_port_with_only_a_link_local_address_does_not_warn() {
    let Some((lab, dir)) = setup(
        "mirror_on_a_span_port_with_only_a_link_local_address_does_not_warn",
        "ssll",
        &["ip"],
    ) else {
        return;
    };
    // A SPAN port: no address of its own but the kernel's fe80::.
    lab.b.exec(&[
        "ip",
        "addr",
        "del",
        &format!("{LAB_B}/24"),
        "dev",
        &lab.if_b,
    ]);
    let end = Instant::now() + WAIT;
    loop {
        let out = lab.b.exec(&["ip", "-6", "addr", "show", "dev", &lab.if_b]);
        if String::from_utf8_lossy(&out.stdout).contains("fe80::") {
            break;
        }
        assert!(Instant::now() < end, "no IPv6 link-local address appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let alerts = dir.join("alerts.jsonl");
    let s = start(
        &lab,
        &dir,
        &alerts,
        &[
            "--iface",
            &lab.if_b,
            "--mirror",
            "--metrics",
            "off",
            "--alerts",
            alerts.to_str().unwrap(),
        ],
    );
    let r = s.stop().unwrap();
    assert!(r.status.success(), "{}", r.log);
    assert!(!r.log.contains("which has addresses"), "{}", r.log);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_sensor_is_told_who_holds_the_interface() {
    let Some((lab, dir)) = setup(
        "a_second_sensor_is_told_who_holds_the_interface",
        "sssecond",
        &[],
    ) else {
        return;
    };
    let alerts = dir.join("first.jsonl");
    let args = |alerts: &Path| -> Vec<String> {
        [
            "run",
            "--iface",
            &lab.if_b,
            "--mirror",
            "--metrics",
            "127.0.0.1:9464",
            "--alerts",
            alerts.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let first_args = args(&alerts);
    let argv: Vec<&str> = first_args[1..].iter().map(String::as_str).collect();
    let first = start(&lab, &dir, &alerts, &argv);
    // The file the sensor creates: 0640, as logrotate's `create` makes it.
    assert_eq!(fs::metadata(&alerts).unwrap().mode() & 0o777, 0o640);

    let second = dir.join("second.jsonl");
    let second_args = args(&second);
    let argv: Vec<&str> = second_args.iter().map(String::as_str).collect();
    let out = cli(&lab.b, &argv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "a slowscan sensor (PID {}) is already running on {}",
            first.pid(),
            lab.if_b
        )),
        "{err}"
    );
    assert!(!err.contains("in use?"), "{err}");
    assert!(!second.exists(), "an empty alerts file was left behind");
    let r = first.stop().unwrap();
    assert!(r.status.success(), "{}", r.log);

    // A start that fails later (the metrics port taken by another program)
    // leaves no empty alerts file either.
    let _taken = lab
        .b
        .run(|| std::net::TcpListener::bind("127.0.0.1:9464").expect("binding 9464"));
    let out = cli(&lab.b, &argv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("9464"), "{err}");
    assert!(!second.exists(), "an empty alerts file was left behind");
    fs::remove_dir_all(&dir).unwrap();
}

/// The shipped snippet with its paths moved into `dir` (and no reload:
/// the test's sensor is not a unit).
fn logrotate_config(dir: &Path, maxsize: &str) -> PathBuf {
    let shipped = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/debian/slowscan.logrotate"),
    )
    .unwrap();
    let text = shipped
        .replace("/var/log/slowscan/", &format!("{}/", dir.display()))
        .replace("maxsize 100M", &format!("maxsize {maxsize}"));
    assert!(text.contains(&format!("maxsize {maxsize}")), "{text}");
    let conf = dir.with_extension("logrotate.conf");
    fs::write(&conf, text).unwrap();
    conf
}

fn logrotate(conf: &Path, state: &Path, force: bool) -> std::process::Output {
    let mut c = Command::new("logrotate");
    if force {
        c.arg("-f");
    }
    c.arg("-s").arg(state).arg(conf).output().unwrap()
}

#[test]
fn the_shipped_logrotate_rotates_by_size_and_twice_a_day() {
    let test = "the_shipped_logrotate_rotates_by_size_and_twice_a_day";
    if !privileged(test) || !tools_present(test, &["logrotate"]) {
        return;
    }
    // The unit's LogsDirectory: 0750, group adm.
    let dir = scratch("sslogrot");
    let logs = dir.join("log");
    fs::create_dir(&logs).unwrap();
    std::os::unix::fs::chown(&logs, Some(0), Some(adm_gid())).unwrap();
    fs::set_permissions(&logs, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let alerts = logs.join("eth1.alerts.jsonl");
    fs::write(&alerts, "{\"a\":1}\n").unwrap();
    let state = dir.join("logrotate.state");
    let conf = logrotate_config(&logs, "1k");
    let rotated = || {
        let mut v: Vec<String> = fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "eth1.alerts.jsonl")
            .collect();
        v.sort();
        v
    };
    // Forced twice in a row: both rotate.
    for n in 1..=2 {
        let out = logrotate(&conf, &state, true);
        assert!(
            out.status.success(),
            "logrotate -f #{n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(rotated().len(), n, "{:?}", rotated());
        fs::write(&alerts, "{\"a\":2}\n").unwrap();
    }
    // The same day, unforced: a file over maxsize rotates, one under stays.
    let out = logrotate(&conf, &state, false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rotated().len(), 2, "rotated under maxsize: {:?}", rotated());
    fs::write(&alerts, "x".repeat(2048)).unwrap();
    let out = logrotate(&conf, &state, false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rotated().len(), 3, "not rotated by size: {:?}", rotated());
    // logrotate's new file: 0640 root:adm, as the sensor creates one.
    let m = fs::metadata(&alerts).unwrap();
    assert_eq!(
        (m.mode() & 0o777, m.uid(), m.gid()),
        (0o640, 0, adm_gid()),
        "logrotate's new file"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// Debian's `adm` group (log readers).
fn adm_gid() -> u32 {
    fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("adm:x:")?.split(':').next()?.parse().ok())
        .expect("the adm group (Debian's log readers) in /etc/group")
}
