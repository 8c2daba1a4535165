//! What a new operator trips over in the first week, run as the real binary
//! (no sensor, no privileges): empty inputs, errors that name their cause
//! once, missing output directories, IPv6 destinations without brackets.

use std::{fs, io::Write, path::Path};

use slowscan_testkit::{Cli, TempDir};

const SLOWSCAN: Cli = Cli(env!("CARGO_BIN_EXE_slowscan"));

fn stderr_ok(args: &[&str]) -> String {
    String::from_utf8_lossy(&SLOWSCAN.ok(args).stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 0-byte file, gzip of nothing, and a classic pcap header with no record.
fn empty_inputs(dir: &Path) -> [(std::path::PathBuf, &'static str); 3] {
    let zero = dir.join("zero.pcap");
    fs::write(&zero, b"").unwrap();
    let gz = dir.join("empty.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"").unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    let header = dir.join("header.pcap");
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    fs::write(&header, h).unwrap();
    [
        (zero, "an empty file"),
        (gz, "gzip of an empty file"),
        (header, "a capture header only"),
    ]
}

#[test]
fn an_empty_replay_input_is_warned_about() {
    let dir = TempDir::new("op-empty-replay");
    for (file, what) in empty_inputs(&dir) {
        let err = stderr_ok(&["replay", s(&file)]);
        let want = format!("{} holds no packets ({what})", file.display());
        assert!(err.contains(&want), "{}: {err}", file.display());
    }
}

#[test]
fn learning_from_an_empty_input_is_an_error_and_writes_nothing() {
    let dir = TempDir::new("op-empty-learn");
    for (file, _) in empty_inputs(&dir) {
        let out = dir.join("wl.json");
        let err = SLOWSCAN.failing(["learn", s(&file), "--out", s(&out)]);
        assert!(
            err.contains(&format!("no packets in {}", file.display()))
                && err.contains("nothing to learn from")
                && err.contains("was not written"),
            "{}: {err}",
            file.display()
        );
        assert!(!out.exists(), "{} was written", out.display());
    }
}

/// `slowscan: error: …` holds `cause` exactly once.
fn once(err: &str, cause: &str) {
    assert_eq!(
        err.matches(cause).count(),
        1,
        "{cause:?} not once in: {err}"
    );
}

#[test]
fn errors_name_their_cause_once() {
    let dir = TempDir::new("op-cause-once");
    let missing = dir.join("missing.pcap");
    let enoent = "No such file or directory";
    once(&SLOWSCAN.failing(["replay", s(&missing)]), enoent);
    once(
        &SLOWSCAN.failing(["learn", s(&missing), "--out", s(&dir.join("wl.json"))]),
        enoent,
    );
    once(
        &SLOWSCAN.failing([
            "replay",
            "--whitelist",
            s(&dir.join("missing.json")),
            s(&missing),
        ]),
        enoent,
    );
    // A gzip stream cut short.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&[7u8; 4096]).unwrap();
    let gz = enc.finish().unwrap();
    let cut = dir.join("cut.pcap.gz");
    fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let err = SLOWSCAN.failing(["replay", s(&cut)]);
    assert!(err.contains("corrupt or truncated gzip data"), "{err}");
    once(&err, "deflate");
    // A whitelist that is not JSON.
    let bad = dir.join("bad.json");
    fs::write(&bad, "{\"version\": 1, \"entries\": [").unwrap();
    let err = SLOWSCAN.failing(["replay", "--whitelist", s(&bad), s(&missing)]);
    once(&err, "EOF while parsing");
}

#[test]
fn a_missing_output_directory_is_named_with_the_fix() {
    let dir = TempDir::new("op-dirs");
    let gone = dir.join("not-yet");
    for (option, file) in [("--alerts", "eth1.alerts.jsonl"), ("--state", "eth1.state")] {
        let path = gone.join(file);
        let err = SLOWSCAN.failing([
            "run",
            "--iface",
            "ssnosuchif0",
            "--metrics",
            "off",
            option,
            s(&path),
        ]);
        assert!(
            err.contains(&format!(
                "{option} {}: its directory {} does not exist",
                path.display(),
                gone.display()
            )) && err.contains(&format!("mkdir -p {}", gone.display())),
            "{option}: {err}"
        );
    }
    let (file, _) = &empty_inputs(&dir)[0];
    let err = SLOWSCAN.failing(["replay", s(file), "--alerts", s(&gone.join("a.jsonl"))]);
    assert!(
        err.contains(&format!("mkdir -p {}", gone.display())),
        "{err}"
    );
    assert!(!gone.exists());
}

#[test]
fn ipv6_destinations_need_brackets_and_are_never_guessed() {
    for (arg, hint) in [
        ("2001:db8::1", "write [2001:db8::1]:PORT"),
        (
            "2001:db8::/32:443",
            "if 443 is the port, write [2001:db8::/32]:443",
        ),
    ] {
        for verb in ["add", "remove"] {
            let err = SLOWSCAN.failing(["whitelist", verb, arg, "--iface", "ssnosuchif0"]);
            assert!(
                err.contains("an IPv6 destination is written in brackets") && err.contains(hint),
                "{verb} {arg}: {err}"
            );
            assert!(
                !err.contains("no slowscan sensor"),
                "parsed before the sensor is looked for: {err}"
            );
        }
    }
}
