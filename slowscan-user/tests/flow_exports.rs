//! NetFlow v5, v9 and IPFIX exports written by Debian's softflowd from a
//! generated capture, replayed with `slowscan replay --flow-exports`: the
//! same per-source failed pairs and alerts as the packet replay of the same
//! capture (R5.3); nfdump's nfcapd reads the same exports as a second
//! reader; a sampling exporter is reported as unusable.
mod replay_gen;
#[allow(dead_code)]
mod replay_run;

use std::{
    collections::BTreeMap,
    fs,
    net::{IpAddr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use replay_run::{SLOWSCAN, replay, s};
use serde_json::Value;
use slowscan::{
    capture::PcapWriter,
    flows::netflow::{Decoder, FlowRecord},
    frame::LinkType,
};
use slowscan_testkit::{TempDir, gate};

const TOOLS: &[&str] = &["softflowd", "nfcapd", "nfdump"];

/// A receiving socket with a buffer for softflowd's end-of-file burst.
fn receiver() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let size: libc::c_int = 64 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket and an int option.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    sock
}

/// The datagrams softflowd exports when reading `capture` with `args`.
fn softflowd(capture: &Path, args: &[&str]) -> Vec<(SocketAddr, Vec<u8>)> {
    let sock = receiver();
    let port = sock.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            let mut quiet = 0;
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        quiet = 0;
                        got.push((from, buf[..n].to_vec()));
                    }
                    Err(_) if done.load(Ordering::Relaxed) => {
                        quiet += 1;
                        if quiet > 5 {
                            return got;
                        }
                    }
                    Err(_) => {}
                }
            }
        })
    };
    let dest = format!("127.0.0.1:{port}");
    let out = Command::new("softflowd")
        .args(["-d", "-r", s(capture), "-n", &dest, "-m", "65536"])
        .args(args)
        .output()
        .expect("softflowd runs");
    done.store(true, Ordering::Relaxed);
    assert!(out.status.success(), "softflowd {args:?}: {out:?}");
    let got = reader.join().unwrap();
    assert!(!got.is_empty(), "softflowd {args:?} exported nothing");
    got
}

/// The datagrams as a raw-IP capture, as a tap in front of the collector
/// would have written them.
fn write_exports(path: &Path, datagrams: &[(SocketAddr, Vec<u8>)]) {
    let mut w = PcapWriter::create(path, LinkType::RawIp).unwrap();
    for (i, (from, payload)) in datagrams.iter().enumerate() {
        let IpAddr::V4(src) = from.ip() else {
            panic!("IPv4 exporter")
        };
        let udp_len = 8 + payload.len();
        let mut f = Vec::with_capacity(20 + udp_len);
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&[127, 0, 0, 1]);
        f.extend_from_slice(&from.port().to_be_bytes());
        f.extend_from_slice(&2055u16.to_be_bytes());
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        w.write_packet(1_700_000_000_000_000_000 + i as u64 * 1000, &f, f.len())
            .unwrap();
    }
    w.finish().unwrap();
}

/// Per source: distinct failed pairs over the run (the report's).
fn failed_pairs(report: &Value) -> BTreeMap<String, u64> {
    report["sources"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(ip, v)| (ip.clone(), v["failed_pairs"].as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn capture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("net.pcap");
    replay_gen::write_capture(
        &path,
        &replay_gen::Traffic {
            packets: 40_000,
            duration_s: 3600,
            scan_every_s: 120,
            ..Default::default()
        },
    )
    .unwrap();
    path
}

#[test]
fn r5_3_softflowd_exports_give_the_packet_replays_failed_pairs() {
    if !gate::tools_present(
        "r5_3_softflowd_exports_give_the_packet_replays_failed_pairs",
        TOOLS,
    ) {
        return;
    }
    let dir = TempDir::new("flow-exports");
    let cap = capture(&dir);
    let (packets, packet_alerts) = replay(&dir, &cap, &[]);
    let want = failed_pairs(&packets);
    assert!(
        packet_alerts.contains(&replay_gen::SCANNER.into()),
        "{packet_alerts:?}"
    );
    for (name, args) in [
        ("v5", &["-v", "5", "-a"][..]),
        ("v9", &["-v", "9", "-a"]),
        ("ipfix", &["-v", "10", "-a", "-A", "milli"]),
        ("ipfix-uptime", &["-v", "10", "-a"]),
        ("ipfix-biflow", &["-v", "10", "-a", "-A", "milli", "-b"]),
    ] {
        let exports = dir.join(format!("{name}.pcap"));
        write_exports(&exports, &softflowd(&cap, args));
        let (flows, flow_alerts) = replay(&dir, &exports, &["--flow-exports"]);
        let fe = &flows["flow_exports"];
        assert_eq!(fe["decode"]["malformed"], 0, "{name}: {fe}");
        assert_eq!(fe["decode"]["sampled_exporters"], 0, "{name}: {fe}");
        // Nothing is lost on loopback: no sequence gap (softflowd's IPFIX
        // numbering, off by one message, is not one).
        assert_eq!(fe["decode"]["sequence_gaps"], 0, "{name}: {fe}");
        assert_eq!(
            failed_pairs(&flows),
            want,
            "{name}: per-source failed pairs"
        );
        assert_eq!(flow_alerts, packet_alerts, "{name}: alerting sources");
        // Every connection of the capture is one attempt, client-side only.
        assert_eq!(flows["established"], packets["established"], "{name}: {fe}");
    }
}

/// Our decoder's TCP records from `datagrams`.
fn decode(datagrams: &[(SocketAddr, Vec<u8>)]) -> Vec<FlowRecord> {
    let mut d = Decoder::new(None);
    let mut out = Vec::new();
    for (from, data) in datagrams {
        d.datagram(*from, data, &mut out);
    }
    out
}

#[test]
fn nfcapd_reads_the_same_tcp_flows_from_the_same_exports() {
    if !gate::tools_present(
        "nfcapd_reads_the_same_tcp_flows_from_the_same_exports",
        TOOLS,
    ) {
        return;
    }
    let dir = TempDir::new("flow-nfcapd");
    let cap = capture(&dir);
    for (name, args) in [
        ("v9", &["-v", "9", "-a"][..]),
        ("ipfix", &["-v", "10", "-a", "-A", "milli"]),
    ] {
        let datagrams = softflowd(&cap, args);
        let ours: Vec<(String, u16, String, u16)> = {
            let mut v: Vec<_> = decode(&datagrams)
                .iter()
                .map(|r| (r.src.to_string(), r.src_port, r.dst.to_string(), r.dst_port))
                .collect();
            v.sort();
            v
        };
        // nfcapd on a free port, fed the same datagrams.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = dir.join(format!("nfcapd-{name}"));
        fs::create_dir_all(&store).unwrap();
        let mut nfcapd = Command::new("nfcapd")
            .args([
                "-w",
                s(&store),
                "-p",
                &port.to_string(),
                "-b",
                "127.0.0.1",
                "-B",
                "8388608",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(700));
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for (_, d) in &datagrams {
            tx.send_to(d, ("127.0.0.1", port)).unwrap();
            thread::sleep(Duration::from_micros(200));
        }
        thread::sleep(Duration::from_millis(500));
        // SAFETY: our own child, by pid: SIGTERM makes nfcapd flush.
        unsafe { libc::kill(nfcapd.id() as i32, libc::SIGTERM) };
        nfcapd.wait().unwrap();
        let out = Command::new("nfdump")
            .args([
                "-R",
                s(&store),
                "-q",
                "-o",
                "fmt:%pr,%sa,%sp,%da,%dp",
                "proto tcp",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "nfdump: {out:?}");
        let mut theirs: Vec<(String, u16, String, u16)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').map(str::trim).collect();
                (f.len() == 5).then(|| {
                    (
                        f[1].into(),
                        f[2].parse().unwrap(),
                        f[3].into(),
                        f[4].parse().unwrap(),
                    )
                })
            })
            .collect();
        theirs.sort();
        assert!(!ours.is_empty());
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: TCP flows, ours and nfcapd's"
        );
        assert_eq!(ours, theirs, "{name}: 5-tuples");
    }
}

#[test]
fn a_sampling_exporter_is_reported_as_unusable() {
    if !gate::tools_present("a_sampling_exporter_is_reported_as_unusable", TOOLS) {
        return;
    }
    let dir = TempDir::new("flow-sampled");
    let cap = capture(&dir);
    for (name, args) in [
        ("v5", &["-v", "5", "-a", "-s", "10"][..]),
        ("v9", &["-v", "9", "-a", "-s", "10"]),
        ("ipfix", &["-v", "10", "-a", "-s", "10"]),
    ] {
        let exports = dir.join(format!("{name}-sampled.pcap"));
        write_exports(&exports, &softflowd(&cap, args));
        let out = SLOWSCAN.ok([
            "replay",
            "--flow-exports",
            s(&exports),
            "--alerts",
            "/dev/null",
            "--report",
            s(&dir.join("r.json")),
        ]);
        let r: Value =
            serde_json::from_str(&fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
        assert_eq!(
            r["flow_exports"]["decode"]["sampled_exporters"], 1,
            "{name}: {r}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.matches("UNUSABLE").count(),
            1,
            "{name}: once: {stderr}"
        );
    }
}
