use std::io::Write;

use super::*;
use crate::engine::{DecidedAttempt, DetectorConfig, EngineConfig, EngineState, SECOND_NS, Window};

const T0: u64 = 1_401_667_200 * SECOND_NS;
const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2014-06-02-00-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\thistory\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tstring\n";

fn line(ts_ns: u64, src: &str, sport: u16, dst: &str, dport: u16, history: &str) -> String {
    format!(
        "{}.{:06}\tC\t{src}\t{sport}\t{dst}\t{dport}\ttcp\t-\t-\t{history}\n",
        ts_ns / SECOND_NS,
        (ts_ns % SECOND_NS) / 1000
    )
}

fn one_hour(threshold: u32) -> EngineConfig {
    EngineConfig {
        detectors: vec![DetectorConfig {
            window: Window::Sliding(3600 * SECOND_NS),
            threshold,
        }],
        services: None,
        report: true,
        ..EngineConfig::default()
    }
}

fn write(dir: &Path, name: &str, text: &str, gz: bool) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    if gz {
        let mut g = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        g.write_all(text.as_bytes()).unwrap();
        g.finish().unwrap();
    } else {
        let mut f = f;
        f.write_all(text.as_bytes()).unwrap();
    }
    p
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slowscan-zeek-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Replays `files` with `cfg`: the engine, its alerts and the reading's stats.
fn replay(
    files: &[PathBuf],
    cfg: EngineConfig,
    lateness_ns: u64,
) -> (Engine, Vec<Alert>, ZeekStats) {
    let timeout = cfg.handshake_timeout_ns;
    let mut engine = Engine::new(cfg);
    let mut o = Orderer::new(lateness_ns, timeout);
    let mut alerts = Vec::new();
    let files = open_in_order(files).unwrap();
    let damage = feed_engine(&files, &mut engine, &mut o, |a| {
        alerts.extend_from_slice(a);
        Ok(())
    })
    .unwrap();
    assert!(damage.is_none(), "{damage:?}");
    (engine, alerts, o.stats)
}

/// Ten probes 300 s apart from 203.0.113.9, each an unanswered SYN (Zeek
/// logs it ~5 s later), among established connections of a client logged
/// when they end, minutes later.
fn scan_lines(probes: u32) -> Vec<(u64, String)> {
    let mut v = Vec::new();
    for i in 0..probes as u64 {
        let t = T0 + i * 300 * SECOND_NS;
        v.push((
            t + 5 * SECOND_NS,
            line(
                t,
                "203.0.113.9",
                40000,
                "198.51.100.10",
                100 + i as u16,
                "S",
            ),
        ));
        let c = t + 7 * SECOND_NS;
        v.push((
            c + 400 * SECOND_NS,
            line(
                c,
                "198.51.100.64",
                50000 + i as u16,
                "198.51.100.11",
                80,
                "ShADadFf",
            ),
        ));
    }
    v
}

fn end_ordered(mut v: Vec<(u64, String)>) -> String {
    v.sort_by_key(|(end, _)| *end);
    HEADER.to_owned() + &v.into_iter().map(|(_, l)| l).collect::<String>()
}

#[test]
fn r5_4_lines_in_end_order_count_as_in_start_order() {
    let d = tmpdir("order");
    let lines = scan_lines(10);
    let start_ordered = {
        let mut v = lines.clone();
        v.sort_by_key(|(_, l)| l.clone());
        HEADER.to_owned() + &v.into_iter().map(|(_, l)| l).collect::<String>()
    };
    let a = write(&d, "end.log", &end_ordered(lines), false);
    let b = write(&d, "start.log", &start_ordered, true);
    let (ea, alerts_a, st) = replay(&[a], one_hour(9), REPLAY_MAX_LATENESS_NS);
    let (eb, alerts_b, _) = replay(&[b], one_hour(9), REPLAY_MAX_LATENESS_NS);
    assert_eq!(st.late, 0);
    assert_eq!((st.attempts, st.established, st.failed), (20, 10, 10));
    assert_eq!(alerts_a.len(), 1);
    assert_eq!(alerts_a[0].failed_pairs, 10);
    let key = |a: &Alert| {
        (
            a.source,
            a.failed_pairs,
            a.first_failure_ns,
            a.last_failure_ns,
            a.timestamp_ns,
        )
    };
    assert_eq!(
        alerts_a.iter().map(key).collect::<Vec<_>>(),
        alerts_b.iter().map(key).collect::<Vec<_>>()
    );
    // The alert is decided at the tenth probe's deadline, as for packets.
    assert_eq!(
        alerts_a[0].timestamp_ns as u64,
        T0 + 9 * 300 * SECOND_NS + 60 * SECOND_NS
    );
    assert_eq!(ea.report(), eb.report());
}

#[test]
fn r5_4_beyond_the_lateness_lines_are_late_and_still_counted() {
    let d = tmpdir("late");
    let mut text = HEADER.to_owned();
    for i in 0..5u64 {
        text += &line(
            T0 + (i + 10) * 3600 * SECOND_NS,
            "198.51.100.64",
            1000 + i as u16,
            "198.51.100.11",
            80,
            "ShAF",
        );
    }
    // Logged hours after it started (a long connection), then a failure.
    text += &line(T0, "198.51.100.65", 2000, "198.51.100.12", 22, "ShADF");
    text += &line(
        T0 + 60 * SECOND_NS,
        "198.51.100.66",
        2001,
        "198.51.100.40",
        22,
        "S",
    );
    let p = write(&d, "late.log", &text, false);
    let (_, _, st) = replay(std::slice::from_ref(&p), one_hour(9), 3600 * SECOND_NS);
    assert_eq!(st.late, 2);
    assert!(st.max_late_seconds > 13.0 * 3600.0, "{st:?}");
    assert_eq!((st.attempts, st.established, st.failed), (7, 6, 1));
    let (_, _, st) = replay(&[p], one_hour(9), REPLAY_MAX_LATENESS_NS * 4);
    assert_eq!(st.late, 0);
}

#[test]
fn r5_4_split_lines_are_joined_as_the_packet_rule_judges_them() {
    let d = tmpdir("join");
    let mut text = HEADER.to_owned();
    // modbus: ShR, then data with S + 1 15.7 s later in a new line.
    text += &line(T0, "198.74.56.135", 60293, "192.168.10.111", 502, "ShR");
    text += &line(
        T0 + 15_700_000_000,
        "198.74.56.135",
        60293,
        "192.168.10.111",
        502,
        "Dr",
    );
    // pop3: the same SYN retried after each RST, one line each.
    for k in 0..3 {
        text += &line(
            T0 + k * SECOND_NS,
            "192.168.0.4",
            26242,
            "212.227.15.188",
            110,
            "Sr",
        );
    }
    // A follow-up after the handshake timeout establishes nothing.
    text += &line(T0, "192.168.0.5", 1, "192.168.10.111", 443, "S");
    text += &line(
        T0 + 61 * SECOND_NS,
        "192.168.0.5",
        1,
        "192.168.10.111",
        443,
        "D",
    );
    // Flipped: the responder as logged sent the SYN.
    text += &line(
        T0 + 2 * SECOND_NS,
        "192.168.0.9",
        80,
        "192.168.0.6",
        5555,
        "S^h",
    );
    let p = write(&d, "join.log", &text, false);
    let (e, _, st) = replay(&[p], one_hour(9), REPLAY_MAX_LATENESS_NS);
    assert_eq!(st.joined, 1);
    assert_eq!(st.retransmissions, 2);
    assert_eq!((st.attempts, st.established, st.failed), (4, 1, 3));
    let r = e.report();
    let src = |s: &str| r.sources[&s.parse::<std::net::IpAddr>().unwrap()];
    assert_eq!(src("198.74.56.135").failed, 0);
    assert_eq!(src("192.168.0.4").failed_pairs, 1);
    assert_eq!(src("192.168.0.5").failed_pairs, 1);
    assert_eq!(src("192.168.0.6").failed_pairs, 1);
    assert!(!r.sources.contains_key(&"192.168.0.9".parse().unwrap()));
}

#[test]
fn bad_lines_are_counted_never_fatal() {
    let d = tmpdir("bad");
    let mut text = HEADER.to_owned();
    text += "XXXXXXXXXX.XXXXXX\tC\t1.1.1.1\t1\t2.2.2.2\t2\ttcp\t-\t-\tS\n";
    text += "-\tC\t1.1.1.1\t1\t2.2.2.2\t2\ttcp\t-\t-\tS\n";
    text += "99999999999999.0\tC\t1.1.1.1\t1\t2.2.2.2\t2\ttcp\t-\t-\tS\n";
    text += "1.0\tC\t1.1.1.1\t-\t2.2.2.2\t2\ttcp\t-\t-\tS\n";
    text += "1.0\tC\tnot-an-ip\t1\t2.2.2.2\t2\ttcp\t-\t-\tS\n";
    text += "1.0\tC\t1.1.1.1\n";
    text += "1.0\tC\t1.1.1.1\t1\t2.2.2.2\t2\tudp\t-\t-\tD\n";
    text += "\u{0}\u{ff}garbage\n";
    text += &line(T0, "1.1.1.1", 1, "2.2.2.2", 2, "S");
    text += "#close\t2014-06-02-01-00-00\n";
    let p = write(&d, "bad.log", &text, false);
    let (_, _, st) = replay(&[p], one_hour(9), REPLAY_MAX_LATENESS_NS);
    assert_eq!(
        (
            st.masked_ts,
            st.missing_ts,
            st.bad_ts,
            st.missing_fields,
            st.malformed,
            st.not_tcp
        ),
        (1, 1, 1, 1, 3, 1)
    );
    assert_eq!(st.lines, 9);
    assert_eq!(st.failed, 1);
    // JSON, absurd and broken.
    let json = [
        r#"{"ts":1e308,"id.orig_h":"1.1.1.1","id.orig_p":1,"id.resp_h":"2.2.2.2","id.resp_p":2,"proto":"tcp","history":"S"}"#,
        r#"{"ts":"yesterday","id.orig_h":"1.1.1.1","id.orig_p":1,"id.resp_h":"2.2.2.2","id.resp_p":2,"proto":"tcp","history":"S"}"#,
        r#"{"ts":1401667200.5,"id.orig_h":"1.1.1.1","id.orig_p":1,"id.resp_h":"2.2.2.2","id.resp_p":2,"proto":"tcp","history":"S"}"#,
        r#"{"ts":1401667200.5,"id.orig_h":"1.1.1.1","id.orig_p":1,"id.resp_h":"2.2.2.2","id.resp_p":2,"proto":"tcp","his"#,
        "[1,2,3]",
    ]
    .join("\n");
    let p = write(&d, "bad.json.gz", &json, true);
    let (_, _, st) = replay(&[p], one_hour(9), REPLAY_MAX_LATENESS_NS);
    assert_eq!((st.bad_ts, st.malformed, st.failed), (2, 2, 1));
}

#[test]
fn files_that_are_not_conn_logs_are_errors_naming_what_is_missing() {
    let d = tmpdir("notconn");
    let p = write(
        &d,
        "dns.log",
        "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.resp_h\thistory\n1.0\tC\t1.1.1.1\t2.2.2.2\tS\n",
        false,
    );
    let e = ConnLogFile::open(&p).err().unwrap().to_string();
    assert!(e.ends_with("missing id.orig_p, id.resp_p, proto"), "{e}");
    let p = write(
        &d,
        "noheader.log",
        "### a comment\n1.0\tC\t1.1.1.1\t2.2.2.2\tS\tdns\n",
        false,
    );
    let e = ConnLogFile::open(&p).err().unwrap().to_string();
    assert!(
        e.contains("no `#fields` header") && e.contains("id.orig_p"),
        "{e}"
    );
    let p = write(&d, "x.bin", "\u{1}\u{2}binary", true);
    assert!(matches!(
        ConnLogFile::open(&p),
        Err(ConnLogError::NotConnLog { .. })
    ));
    let p = write(
        &d,
        "x.json",
        r#"{"ts":1.0,"proto":"tcp","history":"S"}"#,
        false,
    );
    let mut f = ConnLogFile::open(&p).unwrap();
    assert_eq!(f.next_line().unwrap(), Some(Err(Problem::MissingField)));
    let e = f.next_line().unwrap_err().to_string();
    assert!(
        e.ends_with("missing id.orig_h, id.orig_p, id.resp_h, id.resp_p"),
        "{e}"
    );
}

#[test]
fn a_truncated_gzip_delivers_what_came_before_then_names_the_file() {
    let d = tmpdir("trunc");
    let text = end_ordered(scan_lines(200));
    let p = write(&d, "t.log.gz", &text, true);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut engine = Engine::new(one_hour(9));
    let mut o = Orderer::new(REPLAY_MAX_LATENESS_NS, 60 * SECOND_NS);
    let damage = feed_engine(std::slice::from_ref(&p), &mut engine, &mut o, |_| Ok(())).unwrap();
    let e = damage.expect("damage").to_string();
    assert!(e.contains("t.log.gz"), "{e}");
    assert!(o.stats.attempts > 100, "{:?}", o.stats);
}

#[test]
fn inputs_directories_globs_and_any_order() {
    let d = tmpdir("dirs");
    let lines = scan_lines(12);
    let mut end = lines.clone();
    end.sort_by_key(|(e, _)| *e);
    // Rotated hourly into a day's directory, gzipped; given backwards.
    let day = d.join("2014-06-02");
    std::fs::create_dir_all(&day).unwrap();
    let (first, second): (Vec<_>, Vec<_>) = end
        .into_iter()
        .partition(|(e, _)| *e < T0 + 3600 * SECOND_NS);
    let body = |v: &[(u64, String)]| {
        HEADER.to_owned() + &v.iter().map(|(_, l)| l.as_str()).collect::<String>()
    };
    write(&day, "conn.00:00:00-01:00:00.log.gz", &body(&first), true);
    write(&day, "conn.01:00:00-02:00:00.log.gz", &body(&second), true);
    write(&day, "dns.00:00:00-01:00:00.log.gz", "#fields\tts\n", true);
    let files = expand_inputs(std::slice::from_ref(&day)).unwrap();
    assert_eq!(files.len(), 2);
    let glob = d.join("2014-*").join("conn.*.log.gz");
    assert_eq!(expand_inputs(&[glob]).unwrap(), files);
    assert!(expand_inputs(&[d.join("nothing-*")]).is_err());
    let backwards: Vec<PathBuf> = files.iter().rev().cloned().collect();
    let (_, alerts, st) = replay(&backwards, one_hour(9), REPLAY_MAX_LATENESS_NS);
    assert_eq!((st.files, st.late, st.failed), (2, 0, 12));
    assert_eq!(alerts.len(), 1);
    assert!(looks_like_conn_log(&files[0]) && looks_like_conn_log(&day));
}

#[test]
fn a_state_from_conn_log_history_alerts_on_the_first_new_probe() {
    let d = tmpdir("state");
    // Nine probes a day apart, only in the history: under 30d:9's threshold.
    let cfg = || EngineConfig {
        detectors: vec![DetectorConfig {
            window: Window::Sliding(30 * 86_400 * SECOND_NS),
            threshold: 9,
        }],
        ..EngineConfig::default()
    };
    let mut text = HEADER.to_owned();
    for i in 0..9u64 {
        text += &line(
            T0 + i * 86_400 * SECOND_NS,
            "203.0.113.9",
            40000,
            "198.51.100.50",
            100 + i as u16,
            "S",
        );
    }
    let p = write(&d, "history.log", &text, false);
    let (engine, alerts, _) = replay(&[p], cfg(), REPLAY_MAX_LATENESS_NS);
    assert!(alerts.is_empty());
    let bytes = engine.checkpoint().to_bytes();
    let state = EngineState::from_bytes(&bytes).unwrap();
    // The sensor starts a day after the history ends (engine time = Unix
    // time here: offset 0).
    let now = T0 + 9 * 86_400 * SECOND_NS;
    let (mut live, _) = Engine::restore(cfg(), state, now);
    let mut out = Vec::new();
    let mut probe = |port: u16, t: u64, out: &mut Vec<Alert>| {
        let (family, src) = crate::addr::addr_of("203.0.113.9".parse().unwrap());
        let (_, dst) = crate::addr::addr_of("198.51.100.50".parse().unwrap());
        live.decided_attempt(
            &DecidedAttempt {
                flow: slowscan_common::FlowKey {
                    src_addr: src,
                    dst_addr: dst,
                    src_port: 40000,
                    dst_port: port,
                    family,
                    _pad0: 0,
                    _pad1: 0,
                },
                syn_ts_ns: t,
                established: false,
                src_mac: [0; 6],
            },
            out,
        );
    };
    probe(200, now + SECOND_NS, &mut out);
    assert_eq!(out.len(), 1, "the first new probe crosses 9");
    assert_eq!(out[0].failed_pairs, 10);
    // Without the history the same probe raises nothing.
    let mut fresh = Engine::new(cfg());
    let mut none = Vec::new();
    let (family, src) = crate::addr::addr_of("203.0.113.9".parse().unwrap());
    fresh.decided_attempt(
        &DecidedAttempt {
            flow: slowscan_common::FlowKey {
                src_addr: src,
                dst_addr: src,
                src_port: 1,
                dst_port: 200,
                family,
                _pad0: 0,
                _pad1: 0,
            },
            syn_ts_ns: now,
            established: false,
            src_mac: [0; 6],
        },
        &mut none,
    );
    assert!(none.is_empty());
}

/// Fuzz: a valid log damaged at random — bytes overwritten, lines cut,
/// random lines inserted — is read without a panic, and every record line
/// is accounted for: TCP (its ts usable or not), not TCP, missing a field or
/// malformed (a damaged header may make the file no conn.log at all: then a
/// clear error, never a crash).
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn valid_log() -> String {
        let mut text = HEADER.to_owned();
        for (i, h) in ["S", "ShAD", "Sr", "ShADadFf", "S^h", "D"]
            .iter()
            .enumerate()
        {
            text += &line(
                T0 + i as u64 * SECOND_NS,
                "10.1.1.5",
                40000 + i as u16,
                "10.1.2.9",
                22,
                h,
            );
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn damaged_conn_logs_never_crash_and_every_line_is_counted(
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..24),
            cut in proptest::option::of(any::<u16>()),
            junk in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..4),
            gz in any::<bool>(),
            case in any::<u32>(),
        ) {
            let mut bytes = valid_log().into_bytes();
            for (at, b) in edits {
                let i = usize::from(at) % bytes.len();
                bytes[i] = b;
            }
            for j in junk {
                let at = bytes.len() / 2;
                let mut l = j;
                l.retain(|&b| b != b'\n');
                l.push(b'\n');
                bytes.splice(at..at, l);
            }
            if let Some(c) = cut {
                bytes.truncate(usize::from(c) % (bytes.len() + 1));
            }
            let d = tmpdir(&format!("fuzz{case}"));
            let p = d.join(if gz { "c.log.gz" } else { "c.log" });
            {
                let f = std::fs::File::create(&p).unwrap();
                if gz {
                    let mut g = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
                    g.write_all(&bytes).unwrap();
                    g.finish().unwrap();
                } else {
                    let mut f = f;
                    f.write_all(&bytes).unwrap();
                }
            }
            let mut engine = Engine::new(one_hour(2));
            let mut o = Orderer::new(REPLAY_MAX_LATENESS_NS, 60 * SECOND_NS);
            if let Ok(files) = open_in_order(std::slice::from_ref(&p)) {
                let _ = feed_engine(&files, &mut engine, &mut o, |_| Ok(()));
                let st = &o.stats;
                // A TCP line whose ts is unusable counts as TCP too.
                prop_assert_eq!(
                    st.lines,
                    st.tcp_lines + st.not_tcp + st.missing_fields + st.malformed
                );
                prop_assert!(st.unusable() + st.not_tcp <= st.lines);
            }
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}
