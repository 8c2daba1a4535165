//! Tunnelled traffic through `slowscan replay`, run as the real binary over
//! a generated capture (R2.1): the innermost IP/TCP header counts, so the
//! whitelist (R4.4), the ignore list (R4.6) and the counting see the inner
//! addresses, never the tunnel endpoints'; and the report's frame counters
//! say what was opened (`decapsulated`), what was too deep, what was odd.
//! The kernel's side of the same rule is `tunnel_fixtures` in the tests
//! crate's fixture table.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use slowscan::{capture::PcapWriter, frame::LinkType};
use slowscan_common::wire::{
    ETH_P_8021AD, ETH_P_8021AH, ETH_P_8021Q, ETH_P_ERSPAN, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_UC,
    ETH_P_PPP_SES, ETH_P_TEB, UDP_PORT_GENEVE, UDP_PORT_GTPU, UDP_PORT_VXLAN,
};
use slowscan_testkit::{
    TempDir,
    frames::{self, Tcp},
};

mod replay_run;

use replay_run::{engine, ip, replay, s};

const S: u64 = 1_000_000_000;
/// 2014-06-25T09:00:00Z.
const T0: u64 = 1_403_686_800 * S;

/// Tunnel endpoints (outer addresses).
const OUTER_SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUTER_DST4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const OUTER_SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
const OUTER_DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);

/// Scanners (inner sources): A in VXLAN, B in GRE over IPv6, C in GRE.
const A: &str = "198.51.100.66";
const B: &str = "2001:db8:66::1";
const C: &str = "198.51.100.77";

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn syn(sport: u16, dport: u16) -> Vec<u8> {
    Tcp::syn(u32::from(sport) * 7).ports(sport, dport).bytes()
}

fn ip4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    frames::ipv4(src.octets(), dst.octets(), proto, &[], 0, payload)
}

fn ip6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    frames::ipv6(src.octets(), dst.octets(), &[], proto, payload)
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    frames::ethernet(&[], ethertype, payload)
}

fn vxlan(inner_ip4: &[u8]) -> Vec<u8> {
    let udp = frames::udp(
        UDP_PORT_VXLAN,
        &frames::vxlan(0x08, &eth(ETH_P_IP, inner_ip4)),
    );
    eth(ETH_P_IP, &ip4(OUTER_SRC4, OUTER_DST4, 17, &udp))
}

fn gre4(inner_ip4: &[u8]) -> Vec<u8> {
    let gre = frames::gre(0, ETH_P_IP, inner_ip4);
    eth(ETH_P_IP, &ip4(OUTER_SRC4, OUTER_DST4, 47, &gre))
}

fn gre6(inner_ip6: &[u8]) -> Vec<u8> {
    let gre = frames::gre(0, ETH_P_IPV6, inner_ip6);
    eth(ETH_P_IPV6, &ip6(OUTER_SRC6, OUTER_DST6, 47, &gre))
}

/// The three tunnelled scanners (12 probes 300 s apart each, to closed
/// ports of never-live hosts), then one frame of each other kind, and what
/// the report's frame counters must say of them.
fn tunnels_capture(dir: &Path) -> (PathBuf, BTreeMap<&'static str, u64>) {
    let mut f: Vec<Vec<u8>> = Vec::new();
    for i in 0..12u16 {
        let (a, b, c) = (v4(A), v6(B), v4(C));
        let seg = syn(41_000 + i, 445);
        f.push(vxlan(&ip4(
            a,
            Ipv4Addr::new(203, 0, 113, 100 + i as u8),
            6,
            &seg,
        )));
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100 + i);
        f.push(gre6(&ip6(b, dst, 6, &seg)));
        let dst = Ipv4Addr::new(203, 0, 113, 150 + i as u8);
        f.push(gre4(&ip4(c, dst, 6, &syn(42_000 + i, 22))));
    }
    // One SYN each from 198.51.100.(90 + k) to 203.0.113.5.
    let src = |k: u8| Ipv4Addr::new(198, 51, 100, 90 + k);
    let dst = v4("203.0.113.5");
    let one = |k: u8| ip4(src(k), dst, 6, &syn(43_000 + u16::from(k), 80));
    let inner_eth = |k: u8| eth(ETH_P_IP, &one(k));
    f.push(eth(ETH_P_MPLS_UC, &frames::mpls(2, true, &one(0))));
    f.push(eth(ETH_P_PPP_SES, &frames::pppoe(&[0x00, 0x21], &one(1))));
    f.push(frames::ethernet_tags(
        &[(ETH_P_8021AD, 100)],
        ETH_P_8021AH,
        &frames::pbb(&frames::ethernet_tags(
            &[(ETH_P_8021Q, 200)],
            ETH_P_IP,
            &one(2),
        )),
    ));
    let geneve = frames::udp(
        UDP_PORT_GENEVE,
        &frames::geneve(1, ETH_P_TEB, &inner_eth(3)),
    );
    f.push(eth(ETH_P_IP, &ip4(OUTER_SRC4, OUTER_DST4, 17, &geneve)));
    let gtpu = frames::udp(UDP_PORT_GTPU, &frames::gtpu(0x30, 0xFF, 0, &[], &one(4)));
    f.push(eth(ETH_P_IP, &ip4(OUTER_SRC4, OUTER_DST4, 17, &gtpu)));
    let inner6 = ip6(
        v6("2001:db8:90::5"),
        v6("2001:db8:1::5"),
        6,
        &syn(43_005, 80),
    );
    f.push(eth(ETH_P_IP, &ip4(OUTER_SRC4, OUTER_DST4, 41, &inner6)));
    let erspan = frames::gre(0x10, ETH_P_ERSPAN, &frames::erspan2(&inner_eth(6)));
    f.push(eth(ETH_P_IP, &ip4(OUTER_SRC4, OUTER_DST4, 47, &erspan)));
    // Four deep (IP in IP around MPLS, GRE bridging, VXLAN): past the bound.
    let vx = ip4(
        OUTER_SRC4,
        OUTER_DST4,
        17,
        &frames::udp(UDP_PORT_VXLAN, &frames::vxlan(0x08, &inner_eth(7))),
    );
    let bridged = frames::gre(0, ETH_P_TEB, &eth(ETH_P_IP, &vx));
    let deep = ip4(
        OUTER_SRC4,
        OUTER_DST4,
        4,
        &ip4(OUTER_SRC4, OUTER_DST4, 47, &bridged),
    );
    f.push(eth(ETH_P_MPLS_UC, &frames::mpls(1, true, &deep)));
    // A total length past the frame: read, an anomaly (R2.1).
    let mut odd = one(8);
    odd[2..4].copy_from_slice(&200u16.to_be_bytes());
    f.push(eth(ETH_P_IP, &odd));
    // A first fragment is read; a later one skipped.
    let seg = syn(43_009, 80);
    f.push(eth(
        ETH_P_IP,
        &frames::ipv4(src(9).octets(), dst.octets(), 6, &[], 0x2000, &seg),
    ));
    f.push(eth(
        ETH_P_IP,
        &frames::ipv4(src(9).octets(), dst.octets(), 6, &[], 185, &seg),
    ));

    let path = dir.join("tunnels.pcap");
    let mut w = PcapWriter::create(&path, LinkType::Ethernet).unwrap();
    for (k, frame) in f.iter().enumerate() {
        // The scanners' rounds 300 s apart, the rest a second apart after.
        let t = if k < 36 {
            T0 + (k as u64 / 3) * 300 * S + (k as u64 % 3) * S
        } else {
            T0 + 3600 * S + k as u64 * S
        };
        w.write_packet(t, frame, frame.len()).unwrap();
    }
    w.finish().unwrap();
    let want = BTreeMap::from([
        ("frames", 47),
        ("tcp", 45),
        ("too_deep", 1),
        ("header_anomalies", 1),
        ("first_fragments", 1),
        ("fragments_skipped", 1),
        ("ipv6", 13),
        ("vlan_tagged", 1),
        ("malformed", 0),
        ("non_ip", 0),
        ("non_tcp", 0),
    ]);
    (path, want)
}

/// The `decapsulated` counters the capture must give: the scanners' 36
/// tunnelled frames, one frame of each other kind, and the encapsulations
/// opened before the four-deep frame was found too deep.
fn decapsulated() -> BTreeMap<String, u64> {
    [
        ("decap_vxlan", 12),
        ("decap_gre", 12 + 12 + 1),
        ("decap_mpls", 1 + 1),
        ("decap_pppoe", 1),
        ("decap_pbb", 1),
        ("decap_geneve", 1),
        ("decap_gtpu", 1),
        ("decap_ip_in_ip", 1 + 1),
        ("decap_erspan", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn r2_1_report_counts_what_was_decapsulated() {
    let dir = TempDir::new("tunnels-counters");
    let (capture, want) = tunnels_capture(&dir);
    let (r, _) = replay(&dir, &capture, &[]);
    assert_eq!(r["complete"], true);
    let frames = &r["frames"];
    for (k, v) in want {
        assert_eq!(frames[k], v, "frames.{k}: {frames}");
    }
    let got: BTreeMap<String, u64> =
        serde_json::from_value(frames["decapsulated"].clone()).unwrap();
    assert_eq!(got, decapsulated(), "{frames}");
    // Every record is an attempt (no follow-ups): 36 + 9 one-offs.
    assert_eq!(r["attempts"], 45, "{r}");
}

#[test]
fn r2_1_whitelist_ignore_list_and_counting_use_the_inner_addresses() {
    let dir = TempDir::new("tunnels-inner");
    let (capture, _) = tunnels_capture(&dir);
    let scanners = BTreeSet::from([ip(A), ip(B), ip(C)]);

    // Counting: the scanners are the inner sources; no tunnel endpoint is
    // a source, and their failed pairs are the inner destinations.
    let (r, alerting) = replay(&dir, &capture, &[]);
    assert_eq!(alerting, scanners);
    let sources = r["sources"].as_object().expect("sources");
    for endpoint in [OUTER_SRC4.to_string(), OUTER_DST4.to_string()] {
        assert!(!sources.contains_key(&endpoint), "{endpoint}: {r}");
    }
    assert!(!sources.contains_key(&OUTER_SRC6.to_string()), "{r}");
    for x in [A, B, C] {
        assert_eq!(sources[&ip(x).to_string()]["failed_pairs"], 12, "{x}: {r}");
    }

    // The ignore list: inner prefixes silence A and B; the endpoints'
    // prefixes silence nobody.
    let (r, alerting) = replay(
        &dir,
        &capture,
        &["--ignore-sources", "198.51.100.66/32,2001:db8:66::/48"],
    );
    assert_eq!(alerting, BTreeSet::from([ip(C)]));
    assert_eq!(engine(&r, "ignored_records"), 24, "{r}");
    let (r, alerting) = replay(
        &dir,
        &capture,
        &["--ignore-sources", "192.0.2.0/24,2001:db8:ffff::/48"],
    );
    assert_eq!(alerting, scanners);
    assert_eq!(engine(&r, "ignored_records"), 0, "{r}");

    // The whitelist: a rule over A's inner destinations takes them out;
    // rules over the endpoints (every port, and VXLAN's) take nothing.
    let inner = dir.join("inner.json");
    fs::write(
        &inner,
        r#"{"version":1,"entries":[{"ip":"203.0.113.96/27","port":445}]}"#,
    )
    .unwrap();
    let (r, alerting) = replay(&dir, &capture, &["--whitelist", s(&inner)]);
    assert_eq!(alerting, BTreeSet::from([ip(B), ip(C)]));
    assert_eq!(engine(&r, "whitelisted_records"), 12, "{r}");
    let outer = dir.join("outer.json");
    fs::write(
        &outer,
        r#"{"version":1,"entries":[{"ip":"192.0.2.0/24","port":"*"},
            {"ip":"192.0.2.2","port":4789},{"ip":"2001:db8:ffff::/48","port":"*"}]}"#,
    )
    .unwrap();
    let (r, alerting) = replay(&dir, &capture, &["--whitelist", s(&outer)]);
    assert_eq!(alerting, scanners);
    assert_eq!(engine(&r, "whitelisted_records"), 0, "{r}");
}
