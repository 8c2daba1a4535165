//! `slowscan status` and `slowscan explain` ask a running `slowscan
//! collect` through its control socket (named `collect-PORT` or `--name`):
//! per-exporter records, sequence gaps (lost export datagrams) and the
//! sampled flag, the detectors' top sources, and one source's failed pairs.
//! Needs root (the control socket lives in /run/slowscan).
use std::{
    net::{Ipv4Addr, UdpSocket},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use slowscan_testkit::{
    TempDir,
    exports::{Flow, Ipfix, V9},
    gate, unique,
};

const BIN: &str = env!("CARGO_BIN_EXE_slowscan");
const SCANNER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

/// A NetFlow v5 datagram announcing sampling 1 in `interval`, one record.
fn v5_sampled(interval: u16, seq: u32, f: &Flow) -> Vec<u8> {
    let now = (f.start_ms / 1000) as u32;
    let mut m = vec![0, 5, 0, 1];
    m.extend_from_slice(&10_000u32.to_be_bytes()); // up 10 s
    m.extend_from_slice(&now.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&[0, 3]);
    m.extend_from_slice(&(0x4000 | interval).to_be_bytes());
    m.extend_from_slice(&f.src.octets());
    m.extend_from_slice(&f.dst.octets());
    m.extend_from_slice(&[0; 4 + 2 + 2]);
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(&60u32.to_be_bytes());
    m.extend_from_slice(&9_000u32.to_be_bytes());
    m.extend_from_slice(&9_000u32.to_be_bytes());
    m.extend_from_slice(&f.src_port.to_be_bytes());
    m.extend_from_slice(&f.dst_port.to_be_bytes());
    m.extend_from_slice(&[0, f.flags, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    m
}

fn ask(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "slowscan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stop(mut c: Child) {
    // SAFETY: signalling a child we started and have not reaped.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
    let st = c.wait().unwrap();
    assert!(st.success(), "collect exited {st}");
}

#[test]
fn status_and_explain_answer_for_a_collector() {
    let name = "status_and_explain_answer_for_a_collector";
    if !gate::privileged(name) {
        return;
    }
    let dir = TempDir::new("ss-collect-status");
    let alerts = dir.join("alerts.jsonl");
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = unique("sscol");
    let log = dir.join("collect.log");
    let child = Command::new(BIN)
        .args(["collect", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--name", &key, "--max-lateness", "1s"])
        .args(["--window", "300", "--threshold", "3", "--alerts"])
        .arg(&alerts)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("collecting NetFlow/IPFIX")
    {
        assert!(
            Instant::now() < end,
            "collect did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(50));
    }

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let export_s = (now_ms / 1000) as u32;
    let probe = |i: u16| Flow {
        src: SCANNER,
        dst: SERVER,
        src_port: 50_000,
        dst_port: 1 + i,
        flags: 0x02,
        start_ms: now_ms - 3_000 + u64::from(i) * 10,
    };
    let conn = |i: u16| Flow {
        src: CLIENT,
        dst: SERVER,
        src_port: 40_000 + i,
        dst_port: 443,
        flags: 0x1b,
        start_ms: now_ms - 2_000 + u64::from(i),
    };
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", port);
    // IPFIX, domain 1: five probes, ten records lost, two more probes.
    let mut ipfix = Ipfix::new(1);
    let probes: Vec<Flow> = (0..7).map(probe).collect();
    tx.send_to(&ipfix.datagram(export_s, true, &probes[..5]), to)
        .unwrap();
    ipfix.sequence += 10;
    tx.send_to(&ipfix.datagram(export_s, false, &probes[5..]), to)
        .unwrap();
    // NetFlow v9, source 7: a client's connections, nothing lost.
    let mut v9 = V9::new(7, now_ms - 3_600_000);
    let conns: Vec<Flow> = (0..6).map(conn).collect();
    tx.send_to(&v9.datagram(export_s, true, &conns[..3]), to)
        .unwrap();
    tx.send_to(&v9.datagram(export_s, false, &conns[3..]), to)
        .unwrap();
    // NetFlow v5 sampling 1 in 100.
    tx.send_to(&v5_sampled(100, 0, &conn(9)), to).unwrap();

    // Poll until everything is in and the scanner has alerted.
    let mut st: Value;
    loop {
        st = serde_json::from_str(&ask(&["status", "--name", &key, "--json"])).unwrap();
        let done = st["flows"]["records"] == 7 + 6 + 1 && st["alerts_written"] == 1;
        if done {
            break;
        }
        assert!(
            Instant::now() < end + Duration::from_secs(10),
            "status never complete: {st:#}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let f = &st["flows"];
    assert_eq!(st["iface"], key.as_str());
    assert_eq!(st["phase"], "collecting");
    assert_eq!(f["listen"], format!("127.0.0.1:{port}"));
    assert_eq!(f["datagrams"], 5);
    assert_eq!(f["sequence_gaps"], 1, "{f:#}");
    assert_eq!(f["sequence_lost"], 10, "{f:#}");
    assert_eq!(f["sampled_exporters"], 1, "{f:#}");
    let exp = |proto: &str| {
        f["exporters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["protocol"] == proto)
            .unwrap_or_else(|| panic!("no {proto} exporter: {f:#}"))
            .clone()
    };
    let (x10, x9, x5) = (exp("IPFIX"), exp("NetFlow v9"), exp("NetFlow v5"));
    assert_eq!(
        (
            &x10["domain"],
            &x10["records"],
            &x10["sequence_gaps"],
            &x10["sequence_lost"],
            &x10["sampled"]
        ),
        (&1.into(), &7.into(), &1.into(), &10.into(), &false.into()),
        "{x10:#}"
    );
    assert_eq!(
        (
            &x9["domain"],
            &x9["records"],
            &x9["sequence_gaps"],
            &x9["sampled"]
        ),
        (&7.into(), &6.into(), &0.into(), &false.into()),
        "{x9:#}"
    );
    assert_eq!(
        (&x5["records"], &x5["sampling"], &x5["sampled"]),
        (&1.into(), &100.into(), &true.into()),
        "{x5:#}"
    );
    let top = &st["detectors"][0]["top"];
    assert_eq!(top[0]["ip"], SCANNER.to_string(), "{st:#}");
    assert_eq!(top[0]["failed_pairs"], 7, "{st:#}");
    assert_eq!(
        top.as_array().unwrap().len(),
        1,
        "only the scanner failed: {st:#}"
    );

    // The text form says the same for an operator.
    let text = ask(&["status", "--iface", &key]);
    for want in [
        format!("slowscan collect {key} on 127.0.0.1:{port}"),
        "exporter 127.0.0.1 (IPFIX, domain 1): 2 datagrams, 7 records, 1 sequence gap (10 lost)".into(),
        "exporter 127.0.0.1 (NetFlow v9, domain 7): 2 datagrams, 6 records, 0 sequence gaps (0 lost)".into(),
        "SAMPLED 1 in 100: UNUSABLE".into(),
        "198.51.100.66".into(),
    ] {
        assert!(text.contains(&want), "no `{want}` in:\n{text}");
    }
    let x: Value = serde_json::from_str(&ask(&[
        "explain",
        "198.51.100.66",
        "--name",
        &key,
        "--json",
    ]))
    .unwrap();
    assert_eq!(x["tracked"], true, "{x:#}");
    assert_eq!(x["failed_pairs"].as_array().unwrap().len(), 7, "{x:#}");
    let x: Value = serde_json::from_str(&ask(&[
        "explain",
        "198.51.100.20",
        "--name",
        &key,
        "--json",
    ]))
    .unwrap();
    assert_eq!(x["tracked"], false, "the client only succeeded: {x:#}");

    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("collector stopped"), "{text}");
    // Gone with it: asking again is a clear error.
    let out = Command::new(BIN)
        .args(["status", "--name", &key])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no control socket"),
        "{out:?}"
    );
}
