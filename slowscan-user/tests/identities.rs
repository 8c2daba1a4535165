//! Who a source is (R9), with the defaults: on a month-long network whose
//! hosts change address — daily IPv6 temporary addresses (RFC 8981), DHCP
//! moves, an outside scanner with a fresh address of its /64 per probe —
//! `slowscan replay` with no detection or identity flags alerts on every
//! scanner, under its MAC (internal) or its /64 (outside), and on no benign
//! host, LAN, router or monitoring host. Counted per address (the paper's
//! rule, `--count-by addresses`) the address-changing scanners escape and
//! only the control, an outside scanner with one stable address, alerts.
//! And a flood from random addresses of one outside /64 is one identity.
//!
//! Captures come from `identnet` (built on `longnet`'s frames and pcap
//! writer). Its figures:
//!
//! ```sh
//! cargo test -p slowscan-user --test identities -- --nocapture
//! ```

mod identnet;
mod longnet;

use std::{collections::BTreeSet, ffi::OsStr, fs, net::IpAddr, path::Path};

use identnet::{
    CONTROL_ADDR, Config, Network, OUTSIDE_SCANNER_NET, ROUTER_MAC, Role, ScannerKind, generate,
};
use serde_json::Value;
use slowscan::engine::{Engine, EngineConfig, IdentityConfig, SECOND_NS};
use slowscan_common::{AF_INET6, PacketRecord, tcp::SYN};
use slowscan_testkit::{Cli, TempDir};

/// `slowscan replay FILES… ARGS`: the report and the alerts.
fn replay(dir: &Path, net: &Network, extra: &[&str]) -> (Value, Vec<Value>) {
    let report = dir.join("report.json");
    let alerts = dir.join("alerts.jsonl");
    let mut args: Vec<&OsStr> = vec!["replay".as_ref()];
    args.extend(net.files.iter().map(|f| f.as_os_str()));
    args.extend(["--report".as_ref(), report.as_os_str()]);
    args.extend(["--alerts".as_ref(), alerts.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    Cli(env!("CARGO_BIN_EXE_slowscan")).ok(args);
    let r: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let a = fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("alert {l:?}: {e}")))
        .collect();
    (r, a)
}

fn source_ip(alert: &Value) -> IpAddr {
    alert["source"]["ip"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("source.ip: {alert}"))
}

fn identity(alert: &Value) -> &str {
    alert["slowscan"]["source"]["identity"]
        .as_str()
        .unwrap_or_else(|| panic!("slowscan.source.identity: {alert}"))
}

fn detector(alert: &Value) -> String {
    alert["slowscan"]["detector"].to_string()
}

/// One line per alert, for messages.
fn describe(net: &Network, alerts: &[&Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{}: {} failed pairs, detector {}, source.ip {}",
                net.who(identity(a), Some(source_ip(a))),
                a["slowscan"]["failed_pairs"],
                detector(a),
                source_ip(a)
            )
        })
        .collect()
}

#[test]
fn r9_month_of_changing_addresses_alerts_every_scanner_and_no_benign_host() {
    let mut dir = TempDir::new("identities-month");
    let net = generate(&dir, &Config::month()).unwrap();
    let t0 = std::time::Instant::now();
    let (report, alerts) = replay(&dir, &net, &[]);
    let took = t0.elapsed();
    println!(
        "identity month: {} packets in {} files ({:.1} MB), {} attempts, {} Established, \
         {} hosts, {} DHCP moves, {} random-IID IPv6 source addresses; replayed in {:.1?}; {} alerts",
        net.packets,
        net.files.len(),
        net.bytes as f64 / 1e6,
        net.attempts,
        net.established,
        net.hosts.len(),
        net.dhcp_moves,
        net.temporary_addresses,
        took,
        alerts.len()
    );
    for a in &alerts {
        println!(
            "  {} [{}] {} pairs by {}, {} addresses ({} listed)",
            net.who(identity(a), Some(source_ip(a))),
            a["slowscan"]["source"]["kind"],
            a["slowscan"]["failed_pairs"],
            detector(a),
            a["slowscan"]["source"]["addresses_count"],
            a["slowscan"]["source"]["addresses"]
                .as_array()
                .map_or(0, |v| v.len()),
        );
    }

    // The capture holds what the generator says.
    assert_eq!(report["complete"], true);
    assert_eq!(report["packets"], net.packets, "packets");
    assert_eq!(report["attempts"], net.attempts, "attempts (R1)");
    assert_eq!(report["established"], net.established, "Established (R5)");
    // Addresses really change: a DHCP move or more per host on the segment,
    // a temporary address a day.
    assert!(net.dhcp_moves >= 3 * 18, "{} DHCP moves", net.dhcp_moves);
    assert!(net.temporary_addresses > 500, "{}", net.temporary_addresses);

    let mut problems = Vec::new();
    // Every scanner alerts, under the identity R9 gives it.
    for kind in ScannerKind::ALL {
        let s = net.scanner(kind);
        let mine: Vec<&Value> = alerts
            .iter()
            .filter(|a| identity(a) == s.identity)
            .collect();
        if mine.is_empty() {
            problems.push(format!("{} ({}): no alert", s.name, s.identity));
            continue;
        }
        for a in &mine {
            let src = &a["slowscan"]["source"];
            assert_eq!(src["kind"], s.kind, "{}: {a}", s.name);
            assert!(
                s.addresses.contains(&source_ip(a)),
                "{}: source.ip {} is not one of its addresses",
                s.name,
                source_ip(a)
            );
            let listed: Vec<IpAddr> = src["addresses"]
                .as_array()
                .expect("slowscan.source.addresses")
                .iter()
                .map(|v| v.as_str().unwrap().parse().unwrap())
                .collect();
            assert!(
                listed.iter().all(|ip| s.addresses.contains(ip)),
                "{}: addresses {listed:?} not all its own",
                s.name
            );
            match s.kind {
                "mac" => {
                    assert_eq!(a["source"]["mac"], s.identity.as_str(), "{a}");
                    assert!(s.identity.starts_with("02-10-00-0"), "{}", s.identity);
                    assert_eq!(src.get("prefix"), None, "{a}");
                }
                "prefix" => {
                    assert_eq!(a["source"].get("mac"), None, "{a}");
                    assert_eq!(src["prefix"], s.identity.as_str(), "{a}");
                }
                k => panic!("{}: kind {k}", s.name),
            }
            if kind.changes_address() {
                // Even the first alert (19 pairs of the 2-hourly scanner:
                // 38 hours) spans a change of address.
                assert!(
                    listed.len() >= 2 && src["addresses_count"].as_u64() >= Some(2),
                    "{}: several addresses listed: {src}",
                    s.name
                );
            } else {
                assert_eq!(listed, vec![CONTROL_ADDR.parse::<IpAddr>().unwrap()]);
            }
        }
        let listed: BTreeSet<&str> = mine
            .iter()
            .flat_map(|a| a["slowscan"]["source"]["addresses"].as_array().unwrap())
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            !kind.changes_address() || listed.len() >= 3,
            "{}: its alerts list {listed:?}",
            s.name
        );
    }
    let rotating = net.scanner(ScannerKind::OutsideRotating);
    assert_eq!(rotating.identity, OUTSIDE_SCANNER_NET);
    assert_eq!(rotating.addresses.len(), 144, "a fresh address per probe");
    assert!(alerts.iter().any(|a| {
        a["slowscan"]["source"]["prefix"] == OUTSIDE_SCANNER_NET
            && a["slowscan"]["source"]["addresses"]
                .as_array()
                .is_some_and(|v| v.len() >= 10)
    }));

    // Nothing else alerts: no benign host, LAN, router or monitoring host.
    let scanners: BTreeSet<&str> = net
        .hosts
        .iter()
        .filter(|h| h.role.is_scanner())
        .map(|h| h.identity.as_str())
        .collect();
    let router = slowscan::engine::Identity::Mac(ROUTER_MAC).to_string();
    let others: Vec<&Value> = alerts
        .iter()
        .filter(|a| !scanners.contains(identity(a)))
        .collect();
    problems.extend(
        describe(&net, &others)
            .into_iter()
            .map(|p| format!("benign alert: {p}")),
    );
    assert!(
        alerts
            .iter()
            .all(|a| identity(a) != router && a["source"]["mac"] != router.as_str()),
        "the router's MAC alerted"
    );
    // Every kind of benign source is there, and the benign hosts on the
    // segment did fail (outages, retries, stale bookmarks) without alerting.
    for role in [
        Role::Client,
        Role::Monitor,
        Role::Retrier,
        Role::StaleBookmarks,
        Role::Routed,
        Role::Outside,
    ] {
        assert!(
            net.hosts
                .iter()
                .any(|h| h.role == role && !h.addresses.is_empty()),
            "{role:?}"
        );
    }
    // The benign hosts that fail did fail, from several addresses each
    // (the report's per-address totals).
    for h in net
        .hosts
        .iter()
        .filter(|h| matches!(h.role, Role::Retrier | Role::StaleBookmarks | Role::Monitor))
    {
        let failed: u64 = h
            .addresses
            .iter()
            .map(|a| {
                report["sources"][a.to_string()]["failed"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum();
        println!(
            "  {} ({:?}): {} addresses, {failed} failed attempts",
            h.name,
            h.role,
            h.addresses.len()
        );
        assert!(failed > 0, "{}: no failure", h.name);
    }
    assert!(
        report["engine"]["outage_failures"].as_u64() > Some(0),
        "outages: {}",
        report["engine"]
    );
    if !problems.is_empty() {
        dir.keep();
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn r9_counted_per_address_the_changing_scanners_escape_and_the_control_does_not() {
    let mut dir = TempDir::new("identities-addresses");
    let net = generate(&dir, &Config::month()).unwrap();
    let (_, alerts) = replay(&dir, &net, &["--count-by", "addresses"]);
    let control: IpAddr = CONTROL_ADDR.parse().unwrap();
    let mut problems = Vec::new();
    if !alerts.iter().any(|a| source_ip(a) == control) {
        problems.push("the control did not alert per address".to_string());
    }
    for kind in ScannerKind::ALL.into_iter().filter(|k| k.changes_address()) {
        let s = net.scanner(kind);
        let caught: Vec<&Value> = alerts
            .iter()
            .filter(|a| s.addresses.contains(&source_ip(a)))
            .collect();
        problems.extend(
            describe(&net, &caught)
                .into_iter()
                .map(|p| format!("{} alerted per address: {p}", s.name)),
        );
    }
    for a in &alerts {
        assert_eq!(a["slowscan"]["source"]["kind"], "address", "{a}");
    }
    let others: Vec<&Value> = alerts.iter().filter(|a| source_ip(a) != control).collect();
    println!(
        "per address: {} alerts, {} from the control, others: {:#?}",
        alerts.len(),
        alerts.len() - others.len(),
        describe(&net, &others)
    );
    if !problems.is_empty() {
        dir.keep();
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A flood of SYNs from 100,000 random addresses of one outside /64 (through
/// the router's MAC) is one identity: the engine tracks one source and keeps
/// a bounded address list; counted per address it tracks every one.
#[test]
fn r9_a_flood_from_one_outside_64_is_one_identity() {
    const FLOOD: u64 = 100_000;
    let run = |identity: IdentityConfig| {
        let mut e = Engine::new(EngineConfig {
            identity,
            ..Default::default()
        });
        let mut out = Vec::new();
        let mut rng = longnet::Rng::new(64);
        let t0 = 1_403_686_800 * SECOND_NS;
        for i in 0..FLOOD {
            let r = rng.next();
            let mut src = [0u8; 16];
            src[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 1]);
            src[8..].copy_from_slice(&r.to_be_bytes());
            let mut dst = [0u8; 16];
            dst[..8].copy_from_slice(&[0xfd, 0, 0, 0x10, 0, 1, 0, 0]);
            dst[14..].copy_from_slice(&((r >> 20) as u16).to_be_bytes());
            e.process(
                &PacketRecord {
                    ts_ns: t0 + i * 100_000,
                    src_addr: src,
                    dst_addr: dst,
                    seq: (r >> 32) as u32,
                    src_port: 40_000 + (r % 20_000) as u16,
                    dst_port: [22, 80, 443, 445][(r >> 40) as usize % 4],
                    family: AF_INET6,
                    tcp_flags: SYN,
                    src_mac: ROUTER_MAC,
                    ..Default::default()
                },
                &mut out,
            );
        }
        // Every attempt decided (the timeout passed), then measured.
        e.advance_to(t0 + FLOOD * 100_000 + 120 * SECOND_NS, &mut out);
        (e.stats(), e.memory_usage(), out)
    };

    let (st, mem, alerts) = run(IdentityConfig::default());
    println!(
        "flood of {FLOOD} addresses of one /64, counted by hosts: {} sources, \
         identity {} B, sources {} B, pending {} B; {} alerts",
        st.sources,
        mem.identity_bytes,
        mem.source_bytes,
        mem.pending_bytes,
        alerts.len()
    );
    assert_eq!(st.attempts, FLOOD);
    assert_eq!(st.failed, FLOOD, "{st:?}");
    assert_eq!(st.sources, 1, "{st:?}");
    assert_eq!(st.evicted_sources, 0, "{st:?}");
    assert!(mem.identity_bytes < 4096, "{mem:?}");
    assert!(mem.source_bytes < 64 * 1024, "{mem:?}");
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert_eq!(a.identity.to_string(), OUTSIDE_SCANNER_NET);
        assert!(a.addresses.len() <= slowscan::engine::identity::ADDRESSES_KEPT);
    }
    let last = alerts.last().unwrap();
    assert!(
        u64::from(last.addresses_total) > FLOOD / 2,
        "{}",
        last.addresses_total
    );

    let (st, mem, _) = run(IdentityConfig::addresses_only());
    println!(
        "the same flood counted by addresses: {} sources ({} evicted), identity {} B, sources {} B",
        st.sources, st.evicted_sources, mem.identity_bytes, mem.source_bytes
    );
    assert!(st.sources + st.evicted_sources >= FLOOD / 2, "{st:?}");
}
