//! `slowscan follow-zeek`: the real binary follows a live conn.log that is
//! written line by line and rotated the way Zeek rotates it (renamed, a new
//! file with a fresh header), and carries its state across a restart;
//! `slowscan status` and `explain` answer while it runs (as root: the
//! control socket lives in /run/slowscan).

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use slowscan_testkit::{TempDir, unique};

const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n\
#unset_field\t-\n#path\tconn\n#open\t2026-01-01-10-00-00\n#fields\tts\tuid\tid.orig_h\t\
id.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\tconn_state\thistory\n#types\ttime\t\
string\taddr\tport\taddr\tport\tenum\tstring\tinterval\tstring\tstring\n";

/// A line written now: `history` `S` (a failed attempt) or `ShADadFf`.
fn line(src: &str, sport: u16, dst: &str, dport: u16, failed: bool) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (state, history) = if failed {
        ("S0", "S")
    } else {
        ("SF", "ShADadFf")
    };
    format!(
        "{}.{:06}\tC{sport}\t{src}\t{sport}\t{dst}\t{dport}\ttcp\t-\t0.1\t{state}\t{history}\n",
        now.as_secs(),
        now.subsec_micros()
    )
}

fn append(p: &Path, s: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
    sleep(Duration::from_millis(200));
}

fn alerts(p: &Path) -> Vec<Value> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn from(alerts: &[Value], src: &str) -> usize {
    alerts.iter().filter(|a| a["source"]["ip"] == src).count()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(100));
    }
}

fn follower(dir: &Path, run: &str, extra: &[&str]) -> Child {
    let stderr = fs::File::create(dir.join(format!("{run}.stderr"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_slowscan"))
        .args(["follow-zeek", "--log"])
        .arg(dir.join("conn.log"))
        .args(["--detector", "10m:3", "--handshake-timeout", "1s"])
        .args(["--max-lateness", "2s", "--checkpoint-every", "1s"])
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .args(["--sensor-name", "zeek-test"])
        .args(extra)
        .env("SLOWSCAN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn ask(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_slowscan"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slowscan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn stop(child: &mut Child) {
    // SAFETY: our own child, by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the follower exited with {status}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the follower did not stop"
        );
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn r5_4_a_live_conn_log_is_followed_across_a_rotation_and_a_restart() {
    let dir = TempDir::new("zeek-follow");
    let (log, out) = (dir.join("conn.log"), dir.join("alerts.jsonl"));
    let (scanner, slow, benign, server) = (
        "203.0.113.5",
        "203.0.113.9",
        "198.51.100.20",
        "198.51.100.1",
    );
    let stderr = |run: &str| fs::read_to_string(dir.join(format!("{run}.stderr"))).unwrap();
    fs::write(&log, HEADER).unwrap();
    let name = unique("zeek-test");
    let mut child = follower(&dir, "first", &["--from-start", "--name", &name]);
    wait_for("the first file to be opened", || {
        stderr("first").contains("reading from byte")
    });

    // The scanner's first failures, and a benign client's connections with
    // one failure, in the first file.
    append(&log, &line(scanner, 40001, server, 1, true));
    append(&log, &line(benign, 50001, server, 80, false));
    append(&log, &line(scanner, 40002, server, 2, true));
    append(&log, &line(benign, 50002, server, 81, true));
    append(&log, &line(slow, 41001, server, 10, true));

    // Zeek's rotation: the file is renamed, then a new one is created with
    // its own header.
    fs::rename(&log, dir.join("conn.10:00:00-11:00:00.log")).unwrap();
    sleep(Duration::from_millis(600));
    fs::write(&log, HEADER).unwrap();
    append(&log, &line(scanner, 40003, server, 3, true));
    append(&log, &line(benign, 50003, server, 80, false));
    append(&log, &line(slow, 41002, server, 11, true));
    append(&log, &line(scanner, 40004, server, 4, true));
    append(&log, &line(benign, 50004, server, 443, false));
    append(&log, &line(slow, 41003, server, 12, true));

    wait_for("the scanner's alert", || from(&alerts(&out), scanner) > 0);
    // Time for anything else to be decided.
    sleep(Duration::from_secs(4));
    let a = alerts(&out);
    assert_eq!(from(&a, scanner), 1, "{a:#?}");
    assert_eq!(from(&a, benign), 0, "{a:#?}");
    assert_eq!(from(&a, slow), 0, "3 failures are not above 10m:3: {a:#?}");
    assert_eq!(a[0]["observer"]["name"], "zeek-test");

    // `slowscan status` answers with the follower's own section.
    if root() {
        let st = ask(&["status", "--iface", &name, "--json"]);
        let z = &st["zeek"];
        assert_eq!(st["iface"], name.as_str(), "{st:#}");
        assert_eq!(st["phase"], "following", "{st:#}");
        assert_eq!(st["sensor_name"], "zeek-test", "{st:#}");
        assert_eq!(st["alerts_written"], 1, "{st:#}");
        assert!(st.get("flows").is_none(), "{st:#}");
        assert_eq!(z["file"], log.display().to_string(), "{z:#}");
        assert_eq!(z["lines"], 11, "{z:#}");
        assert_eq!(z["late"], 0, "{z:#}");
        assert_eq!(z["rotations"], 1, "{z:#}");
        assert!(
            z["bytes"].as_u64().unwrap() > 2 * HEADER.len() as u64,
            "{z:#}"
        );
        assert_eq!(st["detectors"][0]["top"][0]["ip"], scanner, "{st:#}");
        let text = Command::new(env!("CARGO_BIN_EXE_slowscan"))
            .args(["status", "--iface", &name])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        for want in [
            format!("slowscan follow-zeek {name} on {}", log.display()),
            "11 lines (0 late), 1 rotation,".into(),
            scanner.into(),
        ] {
            assert!(text.contains(&want), "no `{want}` in:\n{text}");
        }
        let x = ask(&["explain", scanner, "--iface", &name, "--json"]);
        assert_eq!(x["tracked"], true, "{x:#}");
        assert_eq!(x["failed_pairs"].as_array().unwrap().len(), 4, "{x:#}");
    } else {
        eprintln!("status check skipped: needs root (the control socket lives in /run/slowscan)");
    }
    stop(&mut child);
    let first = stderr("first");
    assert!(first.contains("1 rotations"), "{first}");
    assert!(dir.join("state").exists(), "no state file written");

    // Restarted from its state, at the end of the file: the slow scanner's
    // fourth failure crosses the threshold at once.
    let mut child = follower(&dir, "second", &["--name", &unique("zeek-test")]);
    wait_for("the file to be opened again", || {
        stderr("second").contains("reading from byte")
    });
    append(&log, &line(slow, 41004, server, 13, true));
    wait_for("the slow scanner's alert", || from(&alerts(&out), slow) > 0);
    stop(&mut child);
    let a = alerts(&out);
    assert_eq!(from(&a, slow), 1, "{a:#?}");
    assert_eq!(
        from(&a, scanner),
        1,
        "lines before the end were read again: {a:#?}"
    );
}
