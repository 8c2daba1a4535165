//! The frame catalogue of the parser and capture tests: one frame per branch
//! of docs/parsing.md, built with the test kit's frame builder, with the
//! outcome each must give.
#![allow(dead_code)]

use slowscan::frame::{FrameOutcome, LinkType};
use slowscan_common::{AF_INET, AF_INET6, PacketRecord, tcp};
pub use slowscan_testkit::frames::*;

pub const SEQ: u32 = 0xDEAD_BEEF;

/// A segment of the documentation hosts' connection: `flags`, a header of
/// `doff` words, `payload` bytes.
pub fn seg(flags: u8, doff: u8, payload: usize) -> Tcp {
    Tcp {
        doff,
        payload,
        ..Tcp::new(flags, SEQ)
    }
}

pub fn syn() -> Tcp {
    seg(tcp::SYN, 5, 0)
}

/// The record a SYN from [`SRC4`]/[`SRC6`] built here must give.
pub fn expected(family: u8, flags: u8, vlan_tags: u8, ts_ns: u64) -> PacketRecord {
    let t = syn();
    let mut rec = PacketRecord {
        ts_ns,
        seq: SEQ,
        src_port: t.src_port,
        dst_port: t.dst_port,
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
    let syn_ecn = seg(tcp::SYN | tcp::ECE | tcp::CWR, 5, 0).bytes();
    let v6_exts = [ext(0, 1), ext(43, 1), ext(60, 2), fragment(0, true)];
    // An Ethernet frame: IPv6 with `exts`, then the SYN.
    let syn6_behind =
        |exts: &[ExtHeader]| ethernet(&[], ETH_IPV6, &ipv6(SRC6, DST6, exts, 6, &syn().bytes()));
    let case = |name, link, frame, outcome| Case {
        name,
        link,
        frame,
        outcome,
    };
    vec![
        case("syn v4", Ethernet, tcp4(&syn()), rec4(tcp::SYN, 0)),
        case("syn v6", Ethernet, tcp6(&syn()), rec6(tcp::SYN, 0)),
        case(
            "ecn syn v4",
            Ethernet,
            ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 6, &[], 0, &syn_ecn)),
            rec4(0xC2, 0),
        ),
        case(
            "syn-ack with payload v4",
            Ethernet,
            tcp4(&seg(tcp::SYN | tcp::ACK, 5, 30)),
            rec4(tcp::SYN | tcp::ACK, 0),
        ),
        case(
            "one 802.1Q tag",
            Ethernet,
            ethernet_tpids(&[TPID_8021Q], ETH_IPV4, &inner4(&syn())),
            rec4(tcp::SYN, 1),
        ),
        case(
            "802.1ad + 802.1Q tags, v6",
            Ethernet,
            ethernet_tpids(&[TPID_8021AD, TPID_8021Q], ETH_IPV6, &inner6(&syn())),
            rec6(tcp::SYN, 2),
        ),
        case(
            "three tags",
            Ethernet,
            ethernet_tpids(
                &[TPID_8021AD, TPID_8021Q, TPID_8021Q],
                ETH_IPV4,
                &inner4(&syn()),
            ),
            rec4(tcp::SYN, 3),
        ),
        case(
            "five tags",
            Ethernet,
            ethernet_tpids(&[TPID_8021Q; 5], ETH_IPV4, &inner4(&syn())),
            TooDeep,
        ),
        case("arp", Ethernet, ethernet(&[], ETH_ARP, &[0u8; 28]), NonIp),
        case(
            "ipv4 options",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &ipv4(SRC4, DST4, 6, &ipv4_nops(15), 0, &syn().bytes()),
            ),
            rec4(tcp::SYN, 0),
        ),
        case(
            "ipv4 udp",
            Ethernet,
            ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 17, &[], 0, &[0u8; 8])),
            NonTcp,
        ),
        case(
            "ipv4 first fragment (MF)",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &ipv4(SRC4, DST4, 6, &[], 0x2000, &syn().bytes()),
            ),
            rec4(tcp::SYN, 0),
        ),
        case(
            "ipv4 non-first fragment",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &ipv4(SRC4, DST4, 6, &[], 0x2000 | 3, &syn().bytes()),
            ),
            Fragment,
        ),
        case(
            "ipv4 udp non-first fragment",
            Ethernet,
            ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 17, &[], 3, &[0u8; 24])),
            NonTcp,
        ),
        case(
            "ipv6 udp",
            Ethernet,
            ethernet(&[], ETH_IPV6, &ipv6(SRC6, DST6, &[], 17, &[0u8; 8])),
            NonTcp,
        ),
        case(
            "ipv6 hbh+routing+destopts+fragment",
            Ethernet,
            syn6_behind(&v6_exts),
            rec6(tcp::SYN, 0),
        ),
        case(
            "ipv6 non-first fragment",
            Ethernet,
            syn6_behind(&[ext(60, 1), fragment(185, false)]),
            Fragment,
        ),
        case(
            "ipv6 five extension headers",
            Ethernet,
            syn6_behind(&[ext(0, 1), ext(60, 1), ext(60, 1), ext(60, 1), ext(60, 1)]),
            TooDeep,
        ),
        case(
            "ipv6 no next header",
            Ethernet,
            ethernet(&[], ETH_IPV6, &ipv6(SRC6, DST6, &[ext(60, 1)], 59, &[])),
            NonTcp,
        ),
        case(
            "tcp options (doff 15)",
            Ethernet,
            tcp4(&seg(tcp::SYN, 15, 0)),
            rec4(tcp::SYN, 0),
        ),
        case(
            "tcp doff 4 (an anomaly, read)",
            Ethernet,
            tcp4(&seg(tcp::SYN, 4, 0)),
            rec4(tcp::SYN, 0),
        ),
        case(
            "sll v4",
            LinuxSll,
            sll(ETH_IPV4, &inner4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case("sll arp", LinuxSll, sll(ETH_ARP, &[0u8; 28]), NonIp),
        case(
            "sll2 v6",
            LinuxSll2,
            sll2(ETH_IPV6, &inner6(&syn())),
            rec6(tcp::SYN, 0),
        ),
        case("raw v4", RawIp, inner4(&syn()), rec4(tcp::SYN, 0)),
        case("raw v6", RawIp, inner6(&syn()), rec6(tcp::SYN, 0)),
        case("ipv4 link", Ipv4, inner4(&syn()), rec4(tcp::SYN, 0)),
        case("ipv6 link", Ipv6, inner6(&syn()), rec6(tcp::SYN, 0)),
        case(
            "null v4 (LE)",
            Null,
            null([2, 0, 0, 0], &inner4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "null v6 (BE 30)",
            Null,
            null([0, 0, 0, 30], &inner6(&syn())),
            rec6(tcp::SYN, 0),
        ),
        case(
            "null other family",
            Null,
            null([7, 0, 0, 0], &inner4(&syn())),
            NonIp,
        ),
        case(
            "gre ipv4",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &outer4(47, &gre(0x20, ETH_IPV4, &inner4(&syn()))),
            ),
            rec4(tcp::SYN, 0),
        ),
        case(
            "gre ethernet, tagged",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &outer4(
                    47,
                    &gre(
                        0x20,
                        0x6558,
                        &ethernet_tpids(&[TPID_8021Q], ETH_IPV6, &inner6(&syn())),
                    ),
                ),
            ),
            rec6(tcp::SYN, 1),
        ),
        case(
            "vxlan",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &outer4(17, &udp(4789, &vxlan(0x08, &tcp4(&syn())))),
            ),
            rec4(tcp::SYN, 0),
        ),
        case(
            "gtp-u with an extension header",
            Ethernet,
            ethernet(
                &[],
                ETH_IPV4,
                &outer4(
                    17,
                    &udp(
                        2152,
                        &gtpu(0x36, 0xFF, 0x85, &[(0, [0x10, 9])], &inner4(&syn())),
                    ),
                ),
            ),
            rec4(tcp::SYN, 0),
        ),
        case(
            "mpls, two labels",
            Ethernet,
            ethernet(&[], 0x8847, &mpls(2, true, &inner4(&syn()))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "pppoe, compressed protocol",
            Ethernet,
            ethernet(&[], 0x8864, &pppoe(&[0x21], &inner4(&syn()))),
            rec4(tcp::SYN, 0),
        ),
        case(
            "6in4",
            Ethernet,
            ethernet(&[], ETH_IPV4, &outer4(41, &inner6(&syn()))),
            rec6(tcp::SYN, 0),
        ),
        case(
            "ppp (ff 03)",
            Ppp,
            [&[0xFF, 0x03, 0x00, 0x21][..], &inner4(&syn())].concat(),
            rec4(tcp::SYN, 0),
        ),
        case(
            "cisco hdlc v6",
            CiscoHdlc,
            [&[0x0F, 0x00, 0x86, 0xDD][..], &inner6(&syn())].concat(),
            rec6(tcp::SYN, 0),
        ),
        case(
            "nflog v4",
            Nflog,
            nflog(2, false, &inner4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "ip over infiniband",
            IpOverIb,
            ipoib(ETH_IPV4, &inner4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "802.11 qos data",
            Ieee80211,
            wlan(0x88, 0x02, ETH_IPV4, &inner4(&syn())),
            rec4(tcp::SYN, 0),
        ),
        case(
            "radiotap",
            Radiotap,
            radiotap(0, &wlan(0x88, 0x02, ETH_IPV6, &inner6(&syn()))),
            rec6(tcp::SYN, 0),
        ),
    ]
}
