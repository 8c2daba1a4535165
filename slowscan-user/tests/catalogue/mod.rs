//! Hand-built frames for the parser and capture tests: each layer is a plain
//! function over bytes so a test can patch any field afterwards.
#![allow(dead_code)]

use slowscan::frame::{FrameOutcome, LinkType};
use slowscan_common::{AF_INET, AF_INET6, PacketRecord, tcp};

pub const SRC4: [u8; 4] = [10, 0, 0, 1];
pub const DST4: [u8; 4] = [192, 168, 7, 9];
pub const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef,
];
pub const SPORT: u16 = 40_000;
pub const DPORT: u16 = 22;
pub const SEQ: u32 = 0xDEAD_BEEF;

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86DD;
pub const ETH_ARP: u16 = 0x0806;
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88A8;

/// A TCP header of `doff` 32-bit words (options are NOPs) plus `payload` bytes.
pub fn tcp_segment(flags: u8, doff: u8, payload: usize) -> Vec<u8> {
    let hdr = usize::from(doff.max(5)) * 4;
    let mut t = vec![1u8; hdr + payload]; // 1 = NOP option
    t[0..2].copy_from_slice(&SPORT.to_be_bytes());
    t[2..4].copy_from_slice(&DPORT.to_be_bytes());
    t[4..8].copy_from_slice(&SEQ.to_be_bytes());
    t[8..12].copy_from_slice(&7u32.to_be_bytes());
    t[12] = doff << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    t[16..20].fill(0);
    t
}

pub fn syn() -> Vec<u8> {
    tcp_segment(tcp::SYN, 5, 0)
}

/// IPv4 with `ihl` words of header (options are NOPs) around `payload`.
pub fn ipv4_with(proto: u8, ihl: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let hdr = usize::from(ihl.max(5)) * 4;
    let mut ip = vec![1u8; hdr];
    ip[0] = 0x40 | ihl;
    ip[1] = 0;
    ip[2..4].copy_from_slice(&((hdr + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[10..12].fill(0);
    ip[12..16].copy_from_slice(&SRC4);
    ip[16..20].copy_from_slice(&DST4);
    ip.extend_from_slice(payload);
    ip
}

pub fn ipv4(payload: &[u8]) -> Vec<u8> {
    ipv4_with(6, 5, 0, payload)
}

/// IPv6 whose chain is `exts` (each `(next_header_value_of_this_header, bytes)`).
pub fn ipv6_with(first_next: u8, exts: &[Vec<u8>], payload: &[u8]) -> Vec<u8> {
    let body: Vec<u8> = exts.iter().flatten().chain(payload).copied().collect();
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
    ip[6] = first_next;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&SRC6);
    ip[24..40].copy_from_slice(&DST6);
    ip.extend_from_slice(&body);
    ip
}

pub fn ipv6(payload: &[u8]) -> Vec<u8> {
    ipv6_with(6, &[], payload)
}

/// A hop-by-hop, routing or destination-options header of `words` × 8 bytes.
pub fn ext_opts(next: u8, words: u8) -> Vec<u8> {
    let mut h = vec![0u8; usize::from(words) * 8];
    h[0] = next;
    h[1] = words - 1;
    h
}

/// An IPv6 fragment header; `offset` in 8-byte units.
pub fn ext_frag(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[0] = next;
    h[2..4].copy_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h[4..8].copy_from_slice(&0xABCDu32.to_be_bytes());
    h
}

/// Ethernet with the given tags (TPIDs) before `ether_type`.
pub fn eth_tagged(tags: &[u16], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for (i, tpid) in tags.iter().enumerate() {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(100 + i as u16).to_be_bytes()); // TCI: VLAN id
    }
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    eth_tagged(&[], ether_type, payload)
}

pub fn sll(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn sll2(protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = protocol.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(payload);
    f
}

pub fn null(family: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut f = family.to_vec();
    f.extend_from_slice(payload);
    f
}

/// An outer IPv4 header (other addresses than the inner ones) around `payload`.
pub fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = ipv4_with(proto, 5, 0, payload);
    ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
    ip
}

/// GRE version 0 with a key, around `payload` of protocol `proto`.
pub fn gre(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut g = vec![0x20, 0];
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(&[0, 0, 0, 7]);
    g.extend_from_slice(payload);
    g
}

/// UDP to `dport` around `payload`.
pub fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0xC3, 0x50];
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub fn vxlan(inner_eth: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    v.extend_from_slice(inner_eth);
    v
}

/// GTP-U T-PDU with a sequence number and one extension header.
pub fn gtpu(inner_ip: &[u8]) -> Vec<u8> {
    let mut g = vec![0x36, 0xFF];
    g.extend_from_slice(&((inner_ip.len() + 8) as u16).to_be_bytes());
    g.extend_from_slice(&[0, 0, 0, 9]); // TEID
    g.extend_from_slice(&[0, 1, 0, 0x85]); // sequence, N-PDU, next: PDU session container
    g.extend_from_slice(&[1, 0x10, 9, 0]); // 4 bytes, QFI, no next
    g.extend_from_slice(inner_ip);
    g
}

/// `labels` MPLS label stack entries, the last with bottom-of-stack.
pub fn mpls(labels: usize, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for i in 0..labels {
        let bos = u8::from(i + 1 == labels);
        m.extend_from_slice(&[0, 0x1d, 0xd0 | bos, 64]);
    }
    m.extend_from_slice(payload);
    m
}

/// A PPPoE session header and PPP protocol field (`ppp_proto`: 1 or 2 bytes).
pub fn pppoe(ppp_proto: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0, 0, 0x2d];
    p.extend_from_slice(&((ppp_proto.len() + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(ppp_proto);
    p.extend_from_slice(payload);
    p
}

/// NFLOG: header, a packet-header TLV, a prefix TLV (5 bytes, padded), the
/// payload TLV; lengths and types little-endian.
pub fn nflog(family: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![family, 0, 0, 0x2a];
    f.extend_from_slice(&[8, 0, 1, 0, 0x08, 0, 3, 0]);
    f.extend_from_slice(&[9, 0, 10, 0, b'a', b'b', b'c', b'd', 0, 0, 0, 0]);
    f.extend_from_slice(&((payload.len() + 4) as u16).to_le_bytes());
    f.extend_from_slice(&9u16.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// IP over InfiniBand: the 40-byte pseudo-header, EtherType, reserved.
pub fn ipoib(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 40];
    f[20..24].copy_from_slice(&[0x80, 0, 0x05, 0x50]);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An 802.11 QoS data frame from the distribution system, LLC/SNAP, EtherType.
pub fn wlan(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x88, 0x02, 0, 0];
    f.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 3,
    ]);
    f.extend_from_slice(&[0x10, 0]); // sequence control
    f.extend_from_slice(&[0, 0]); // QoS control
    f.extend_from_slice(&[0xAA, 0xAA, 0x03, 0, 0, 0]);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A radiotap header with TSFT and flags (no data padding), then `wlan`.
pub fn radiotap(wlan_frame: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 24, 0, 0x03, 0, 0, 0];
    f.extend_from_slice(&[0u8; 8]); // TSFT
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // flags, padding
    f.extend_from_slice(wlan_frame);
    f
}

/// The record a SYN from [`SRC4`]/[`SRC6`] built here must give.
pub fn expected(family: u8, flags: u8, vlan_tags: u8, ts_ns: u64) -> PacketRecord {
    let mut rec = PacketRecord {
        ts_ns,
        seq: SEQ,
        src_port: SPORT,
        dst_port: DPORT,
        family,
        tcp_flags: flags,
        vlan_tags,
        ..PacketRecord::default()
    };
    if family == AF_INET {
        rec.src_addr[..4].copy_from_slice(&SRC4);
        rec.dst_addr[..4].copy_from_slice(&DST4);
    } else {
        assert_eq!(family, AF_INET6);
        rec.src_addr = SRC6;
        rec.dst_addr = DST6;
    }
    rec
}

/// A named frame, its link type and the outcome it must give (ts 0).
pub struct Case {
    pub name: &'static str,
    pub link: LinkType,
    pub frame: Vec<u8>,
    pub outcome: FrameOutcome,
}

/// One frame per branch of docs/parsing.md, used by the branch tests, the
/// truncation sweep and the fuzzers' seeds.
pub fn catalogue() -> Vec<Case> {
    use FrameOutcome::*;
    use LinkType::*;
    let rec4 = |flags, tags| Record(expected(AF_INET, flags, tags, 0));
    let rec6 = |flags, tags| Record(expected(AF_INET6, flags, tags, 0));
    let syn_ecn = tcp_segment(tcp::SYN | tcp::ECE | tcp::CWR, 5, 0);
    let v6_exts = vec![
        ext_opts(43, 1),
        ext_opts(60, 2),
        ext_opts(44, 1),
        ext_frag(6, 0, true),
    ];
    let case = |name, link, frame, outcome| Case {
        name,
        link,
        frame,
        outcome,
    };
    vec![
        case(
            "syn v4",
            Ethernet,
            eth(ETH_IPV4, &ipv4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "syn v6",
            Ethernet,
            eth(ETH_IPV6, &ipv6(&syn())),
            rec6(tcp::SYN, 0),
        ),
        case(
            "ecn syn v4",
            Ethernet,
            eth(ETH_IPV4, &ipv4(&syn_ecn)),
            rec4(0xC2, 0),
        ),
        case(
            "syn-ack with payload v4",
            Ethernet,
            eth(ETH_IPV4, &ipv4(&tcp_segment(tcp::SYN | tcp::ACK, 5, 30))),
            rec4(tcp::SYN | tcp::ACK, 0),
        ),
        case(
            "one 802.1Q tag",
            Ethernet,
            eth_tagged(&[TPID_8021Q], ETH_IPV4, &ipv4(&syn())),
            rec4(tcp::SYN, 1),
        ),
        case(
            "802.1ad + 802.1Q tags, v6",
            Ethernet,
            eth_tagged(&[TPID_8021AD, TPID_8021Q], ETH_IPV6, &ipv6(&syn())),
            rec6(tcp::SYN, 2),
        ),
        case(
            "three tags",
            Ethernet,
            eth_tagged(
                &[TPID_8021AD, TPID_8021Q, TPID_8021Q],
                ETH_IPV4,
                &ipv4(&syn()),
            ),
            rec4(tcp::SYN, 3),
        ),
        case(
            "five tags",
            Ethernet,
            eth_tagged(&[TPID_8021Q; 5], ETH_IPV4, &ipv4(&syn())),
            TooDeep,
        ),
        case("arp", Ethernet, eth(ETH_ARP, &[0u8; 28]), NonIp),
        case(
            "ipv4 options",
            Ethernet,
            eth(ETH_IPV4, &ipv4_with(6, 15, 0, &syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "ipv4 udp",
            Ethernet,
            eth(ETH_IPV4, &ipv4_with(17, 5, 0, &[0u8; 8])),
            NonTcp,
        ),
        case(
            "ipv4 first fragment (MF)",
            Ethernet,
            eth(ETH_IPV4, &ipv4_with(6, 5, 0x2000, &syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "ipv4 non-first fragment",
            Ethernet,
            eth(ETH_IPV4, &ipv4_with(6, 5, 0x2000 | 3, &syn())),
            Fragment,
        ),
        case(
            "ipv4 udp non-first fragment",
            Ethernet,
            eth(ETH_IPV4, &ipv4_with(17, 5, 3, &[0u8; 24])),
            NonTcp,
        ),
        case(
            "ipv6 udp",
            Ethernet,
            eth(ETH_IPV6, &ipv6_with(17, &[], &[0u8; 8])),
            NonTcp,
        ),
        case(
            "ipv6 hbh+routing+destopts+fragment",
            Ethernet,
            eth(ETH_IPV6, &ipv6_with(0, &v6_exts, &syn())),
            rec6(tcp::SYN, 0),
        ),
        case(
            "ipv6 non-first fragment",
            Ethernet,
            eth(
                ETH_IPV6,
                &ipv6_with(60, &[ext_opts(44, 1), ext_frag(6, 185, false)], &syn()),
            ),
            Fragment,
        ),
        case(
            "ipv6 five extension headers",
            Ethernet,
            eth(
                ETH_IPV6,
                &ipv6_with(
                    0,
                    &[
                        ext_opts(60, 1),
                        ext_opts(60, 1),
                        ext_opts(60, 1),
                        ext_opts(60, 1),
                        ext_opts(6, 1),
                    ],
                    &syn(),
                ),
            ),
            TooDeep,
        ),
        case(
            "ipv6 no next header",
            Ethernet,
            eth(ETH_IPV6, &ipv6_with(60, &[ext_opts(59, 1)], &[])),
            NonTcp,
        ),
        case(
            "tcp options (doff 15)",
            Ethernet,
            eth(ETH_IPV4, &ipv4(&tcp_segment(tcp::SYN, 15, 0))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "tcp doff 4 (an anomaly, read)",
            Ethernet,
            eth(ETH_IPV4, &ipv4(&tcp_segment(tcp::SYN, 4, 0))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "sll v4",
            LinuxSll,
            sll(ETH_IPV4, &ipv4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case("sll arp", LinuxSll, sll(ETH_ARP, &[0u8; 28]), NonIp),
        case(
            "sll2 v6",
            LinuxSll2,
            sll2(ETH_IPV6, &ipv6(&syn())),
            rec6(tcp::SYN, 0),
        ),
        case("raw v4", RawIp, ipv4(&syn()), rec4(tcp::SYN, 0)),
        case("raw v6", RawIp, ipv6(&syn()), rec6(tcp::SYN, 0)),
        case("ipv4 link", Ipv4, ipv4(&syn()), rec4(tcp::SYN, 0)),
        case("ipv6 link", Ipv6, ipv6(&syn()), rec6(tcp::SYN, 0)),
        case(
            "null v4 (LE)",
            Null,
            null([2, 0, 0, 0], &ipv4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "null v6 (BE 30)",
            Null,
            null([0, 0, 0, 30], &ipv6(&syn())),
            rec6(tcp::SYN, 0),
        ),
        case(
            "null other family",
            Null,
            null([7, 0, 0, 0], &ipv4(&syn())),
            NonIp,
        ),
        case(
            "gre ipv4",
            Ethernet,
            eth(ETH_IPV4, &outer4(47, &gre(ETH_IPV4, &ipv4(&syn())))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "gre ethernet, tagged",
            Ethernet,
            eth(
                ETH_IPV4,
                &outer4(
                    47,
                    &gre(0x6558, &eth_tagged(&[TPID_8021Q], ETH_IPV6, &ipv6(&syn()))),
                ),
            ),
            rec6(tcp::SYN, 1),
        ),
        case(
            "vxlan",
            Ethernet,
            eth(
                ETH_IPV4,
                &outer4(17, &udp(4789, &vxlan(&eth(ETH_IPV4, &ipv4(&syn()))))),
            ),
            rec4(tcp::SYN, 0),
        ),
        case(
            "gtp-u with an extension header",
            Ethernet,
            eth(ETH_IPV4, &outer4(17, &udp(2152, &gtpu(&ipv4(&syn()))))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "mpls, two labels",
            Ethernet,
            eth(0x8847, &mpls(2, &ipv4(&syn()))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "pppoe, compressed protocol",
            Ethernet,
            eth(0x8864, &pppoe(&[0x21], &ipv4(&syn()))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "6in4",
            Ethernet,
            eth(ETH_IPV4, &outer4(41, &ipv6(&syn()))),
            rec6(tcp::SYN, 0),
        ),
        case(
            "ppp (ff 03)",
            Ppp,
            [&[0xFF, 0x03, 0x00, 0x21][..], &ipv4(&syn())].concat(),
            rec4(tcp::SYN, 0),
        ),
        case(
            "cisco hdlc v6",
            CiscoHdlc,
            [&[0x0F, 0x00, 0x86, 0xDD][..], &ipv6(&syn())].concat(),
            rec6(tcp::SYN, 0),
        ),
        case(
            "nflog v4",
            Nflog,
            nflog(2, &ipv4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "ip over infiniband",
            IpOverIb,
            ipoib(ETH_IPV4, &ipv4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "802.11 qos data",
            Ieee80211,
            wlan(ETH_IPV4, &ipv4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "radiotap",
            Radiotap,
            radiotap(&wlan(ETH_IPV6, &ipv6(&syn()))),
            rec6(tcp::SYN, 0),
        ),
    ]
}
