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
    assert_eq!(delta.get(Counter::PendingInsertFailed), 0);
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

/// R4.6: `slowscan ignore add|list|remove` from a second process change a
/// sensor's kernel ignore list through its pinned maps, effective on the next
/// frame, and keep the sensor's ignore file in step. The program runs
/// through BPF_PROG_TEST_RUN (no interface needed).
#[test]
fn ignore_push_through_pinned_maps_takes_effect_at_once() {
    if !privileged("ignore_push_through_pinned_maps_takes_effect_at_once") {
        return;
    }
    use slowscan_tests::{
        fixtures::port,
        frames::{self, Tcp},
    };
    let iface = slowscan_tests::unique("ssign");
    let dir = std::env::temp_dir().join(format!("slowscan-ign-{iface}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ignore.txt");
    std::fs::write(&file, "# kept by slowscan ignore\n203.0.113.0/24\n").unwrap();

    let mut dp = DataPlane::load(ProgramOptions::default()).expect("load");
    let mut reader = dp.take_records().unwrap();
    dp.pin(&iface).expect("pin maps");
    slowscan::daemon::runtime::write(&iface, None, Some(&file)).unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(slowscan_bin())
            .args(args)
            .args(["--iface", &iface])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slowscan {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let v4 = frames::tcp4(&port(Tcp::syn(1), 71));
    let v6 = frames::tcp6(&port(Tcp::syn(1), 72));
    let mut got = Vec::new();
    let mut records = |dp: &mut DataPlane, f: &[u8]| {
        dp.test_run(f, 1).unwrap();
        got.clear();
        reader.drain(&mut got)
    };
    assert_eq!(records(&mut dp, &v4), 1);

    cli(&["ignore", "add", "198.51.100.0/24", "2001:db8::/32"]);
    let before = dp.counters().unwrap();
    assert_eq!(records(&mut dp, &v4), 0, "ignored IPv4 source");
    assert_eq!(records(&mut dp, &v6), 0, "ignored IPv6 source");
    assert_eq!(
        dp.counters().unwrap().since(&before).get(Counter::Ignored),
        2
    );
    let list = cli(&["ignore", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&list.stdout),
        "198.51.100.0/24\n2001:db8::/32\n"
    );
    let kept = slowscan::ignore::IgnoreList::load(&file).unwrap();
    assert_eq!(
        kept.to_string(),
        "198.51.100.0/24,203.0.113.0/24,2001:db8::/32",
        "the sensor's ignore file follows"
    );

    cli(&["ignore", "remove", "198.51.100.0/24"]);
    assert_eq!(records(&mut dp, &v4), 1, "counted again at once");
    assert_eq!(records(&mut dp, &v6), 0, "the IPv6 prefix stays");
    let again = cli(&["ignore", "remove", "198.51.100.0/24"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("was not on the ignore list"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    cli(&["ignore", "remove", "2001:db8::/32"]);
    assert_eq!(records(&mut dp, &v6), 1);
    assert_eq!(
        slowscan::ignore::IgnoreList::load(&file)
            .unwrap()
            .to_string(),
        "203.0.113.0/24"
    );

    slowscan::daemon::runtime::remove(&iface);
    slowscan::kernel::remove_pins(&iface).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
