//! The program attached in native mode to a veth in a network namespace, with
//! a real `nmap -sS` from a second namespace: exactly one attempt record per
//! probed port, nothing lost; then a whitelist entry added by a second process
//! (`slowscan whitelist add`) through the pinned map takes effect at once.

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

use slowscan::kernel::{AttachMode, DataPlane, ProgramOptions, RecordReader};
use slowscan_common::{AF_INET, Counter, PacketRecord};
use slowscan_tests::{LAB_A, LAB_B, VethLab, privileged, slowscan_bin};

fn v4(a: &str) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&a.parse::<Ipv4Addr>().unwrap().octets());
    v
}

/// Attempt records from the scanner to the target, counted per port.
fn attempts_per_port(reader: &mut RecordReader) -> BTreeMap<u16, usize> {
    let mut recs: Vec<PacketRecord> = Vec::new();
    // XDP runs in the receive path, so the records are in the ring by the time
    // nmap has its answers; drain twice to be sure nothing is in flight.
    for _ in 0..2 {
        reader.drain(&mut recs);
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut per_port = BTreeMap::new();
    for r in recs.iter().filter(|r| r.is_attempt()) {
        assert_eq!(r.family, AF_INET);
        assert_eq!(
            r.src_addr,
            v4(LAB_A),
            "attempt from an unexpected source: {r:?}"
        );
        assert_eq!(
            r.dst_addr,
            v4(LAB_B),
            "attempt to an unexpected destination: {r:?}"
        );
        *per_port.entry(r.dst_port).or_insert(0) += 1;
    }
    per_port
}

fn nmap(lab: &VethLab, ports: &str) {
    nmap_to(lab, &[], ports, LAB_B);
}

/// `nmap -sS` from host a; --max-retries 0: one probe per port, so "exactly
/// one record" is exact.
fn nmap_to(lab: &VethLab, extra: &[&str], ports: &str, target: &str) {
    let mut args = vec!["nmap"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-sS",
        "-n",
        "-Pn",
        "--max-retries",
        "0",
        "-T4",
        "-p",
        ports,
        target,
    ]);
    lab.a.exec(&args);
}

#[test]
fn nmap_syn_scan_then_live_whitelist_push() {
    if !privileged("nmap_syn_scan_then_live_whitelist_push") {
        return;
    }
    let lab = VethLab::new();
    let iface = lab.if_b.clone();
    let mut dp = lab.b.run({
        let iface = iface.clone();
        move || {
            let mut dp = DataPlane::load(ProgramOptions::default()).expect("load");
            dp.attach(&iface, AttachMode::Native)
                .expect("native XDP attach on veth");
            dp.pin(&iface).expect("pin maps");
            dp
        }
    });
    let link = String::from_utf8(lab.b.exec(&["ip", "link", "show", &iface]).stdout).unwrap();
    assert!(
        link.contains("xdp ") || link.contains("xdp\n") || link.contains("prog/xdp"),
        "not native XDP: {link}"
    );
    assert!(!link.contains("xdpgeneric"), "generic, not native: {link}");
    let mut reader = dp.take_records().unwrap();

    let before = dp.counters().unwrap();
    nmap(&lab, "1-1000");
    let per_port = attempts_per_port(&mut reader);
    let delta = dp.counters().unwrap().since(&before);
    assert_eq!(
        per_port.len(),
        1000,
        "ports with an attempt record: {}",
        per_port.len()
    );
    assert!(
        per_port.keys().copied().eq(1..=1000),
        "ports outside 1-1000 seen"
    );
    assert!(
        per_port.values().all(|n| *n == 1),
        "a port had several records"
    );
    assert_eq!(delta.get(Counter::RingFull), 0, "records lost");
    assert_eq!(delta.get(Counter::PendingFull), 0);
    assert_eq!(delta.get(Counter::AttemptsEmitted), 1000);

    // A second process edits the whitelist through the pinned map.
    let out = std::process::Command::new(slowscan_bin())
        .args([
            "whitelist",
            "add",
            &format!("{LAB_B}:22"),
            "--iface",
            &iface,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "whitelist add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = std::process::Command::new(slowscan_bin())
        .args(["whitelist", "list", "--iface", &iface])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        format!("{LAB_B}:22")
    );

    let before = dp.counters().unwrap();
    nmap(&lab, "20-25");
    let per_port = attempts_per_port(&mut reader);
    let delta = dp.counters().unwrap().since(&before);
    assert_eq!(
        per_port.keys().copied().collect::<Vec<_>>(),
        vec![20, 21, 23, 24, 25]
    );
    assert_eq!(
        delta.get(Counter::Whitelisted),
        1,
        "the probe to port 22 is counted as whitelisted"
    );
    assert_eq!(delta.get(Counter::RingFull), 0);

    // A sensor that is not running is a clear error, not a crash.
    let out = std::process::Command::new(slowscan_bin())
        .args(["whitelist", "list", "--iface", "ssnosuchif0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no slowscan sensor is running on ssnosuchif0")
    );

    dp.detach().unwrap();
    slowscan::kernel::remove_pins(&iface).unwrap();
}

/// Pins left by a build with another map format are refused with a message
/// that says so, rather than misread.
#[test]
fn stale_pins_from_another_format_are_refused() {
    if !privileged("stale_pins_from_another_format_are_refused") {
        return;
    }
    slowscan::kernel::ensure_bpffs().unwrap();
    let iface = slowscan_tests::unique("ssstale");
    let stale = std::path::Path::new("/sys/fs/bpf/slowscan")
        .join(&iface)
        .join("v0");
    std::fs::create_dir_all(&stale).unwrap();
    let err = match slowscan::kernel::PinnedMaps::open(&iface) {
        Ok(_) => panic!("a v0 pin directory must not open"),
        Err(e) => format!("{e:#}"),
    };
    slowscan::kernel::remove_pins(&iface).unwrap();
    assert!(err.contains("format v0"), "{err}");
    assert!(
        err.contains(&format!("v{}", slowscan_common::FORMAT_VERSION)),
        "{err}"
    );
}

/// The same over IPv6 (documentation prefix 2001:db8::/32): one attempt
/// record per probed port, every field from the IPv6 header.
#[test]
fn nmap_ipv6_syn_scan_one_record_per_port() {
    if !privileged("nmap_ipv6_syn_scan_one_record_per_port") {
        return;
    }
    let lab = VethLab::new();
    let (a6, b6) = ("2001:db8:5:5::1", "2001:db8:5:5::2");
    lab.a.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        &format!("{a6}/64"),
        "dev",
        &lab.if_a,
        "nodad",
    ]);
    lab.b.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        &format!("{b6}/64"),
        "dev",
        &lab.if_b,
        "nodad",
    ]);
    let iface = lab.if_b.clone();
    let mut dp = lab.b.run(move || {
        let mut dp = DataPlane::load(ProgramOptions::default()).expect("load");
        dp.attach(&iface, AttachMode::Native)
            .expect("native XDP attach on veth");
        dp
    });
    let mut reader = dp.take_records().unwrap();
    nmap_to(&lab, &["-6"], "1-200", b6);
    let mut recs: Vec<PacketRecord> = Vec::new();
    for _ in 0..2 {
        reader.drain(&mut recs);
        std::thread::sleep(Duration::from_millis(200));
    }
    let src: std::net::Ipv6Addr = a6.parse().unwrap();
    let dst: std::net::Ipv6Addr = b6.parse().unwrap();
    let mut per_port = BTreeMap::new();
    for r in recs.iter().filter(|r| r.is_attempt()) {
        assert_eq!(r.family, slowscan_common::AF_INET6);
        assert_eq!(
            (r.src_addr, r.dst_addr),
            (src.octets(), dst.octets()),
            "{r:?}"
        );
        *per_port.entry(r.dst_port).or_insert(0) += 1;
    }
    assert!(
        per_port.keys().copied().eq(1..=200),
        "ports: {:?}",
        per_port.keys().collect::<Vec<_>>()
    );
    assert!(per_port.values().all(|n| *n == 1));
    let c = dp.counters().unwrap();
    assert_eq!(c.get(Counter::RingFull), 0);
    assert!(c.get(Counter::Ipv6) >= 200);
}
