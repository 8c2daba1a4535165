//! The frame parser against every branch of docs/parsing.md.

mod catalogue;

use catalogue::*;
use slowscan::frame::{self, FrameCounters, FrameInfo, FrameOutcome, LinkType};
use slowscan_common::{AF_INET, AF_INET6, Counter, tcp, wire::fact};

/// The parser with the record's source MAC (R9) cleared: the catalogue's
/// expectations are about headers; the parse case table
/// (tests/tests/parse_cases.rs) checks the MAC against the kernel's.
fn parse_frame_info(
    link: LinkType,
    data: &[u8],
    wire_len: usize,
    ts_ns: u64,
) -> (FrameOutcome, FrameInfo) {
    let (mut outcome, info) = frame::parse_frame_info(link, data, wire_len, ts_ns);
    if let FrameOutcome::Record(r) = &mut outcome {
        r.src_mac = [0; 6];
    }
    (outcome, info)
}

fn parse_frame(link: LinkType, data: &[u8], wire_len: usize, ts_ns: u64) -> FrameOutcome {
    parse_frame_info(link, data, wire_len, ts_ns).0
}

fn parse(link: LinkType, frame: &[u8]) -> FrameOutcome {
    parse_frame(link, frame, frame.len(), 0)
}

fn record(outcome: FrameOutcome) -> slowscan_common::PacketRecord {
    match outcome {
        FrameOutcome::Record(r) => r,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn catalogue_gives_expected_outcomes() {
    for case in catalogue() {
        assert_eq!(parse(case.link, &case.frame), case.outcome, "{}", case.name);
    }
}

#[test]
fn syn_v4_fields_and_timestamp() {
    let frame = tcp4(&syn());
    let rec = record(parse_frame(
        LinkType::Ethernet,
        &frame,
        frame.len(),
        1_234_567_890_123,
    ));
    assert_eq!(rec, expected(AF_INET, tcp::SYN, 0, 1_234_567_890_123));
    assert_eq!(rec.status, 0);
    assert_eq!(
        &rec.src_addr[4..],
        &[0u8; 12],
        "IPv4 uses the first 4 bytes only"
    );
    assert!(rec.is_attempt());
}

#[test]
fn syn_v6_fields() {
    let frame = tcp6(&syn());
    let rec = record(parse(LinkType::Ethernet, &frame));
    assert_eq!(rec, expected(AF_INET6, tcp::SYN, 0, 0));
}

#[test]
fn ecn_syn_is_an_attempt_r1() {
    let frame = tcp4(&seg(tcp::SYN | tcp::ECE | tcp::CWR, 5, 0));
    let rec = record(parse(LinkType::Ethernet, &frame));
    assert_eq!(rec.tcp_flags, 0xC2, "the whole flags byte is kept");
    assert!(rec.is_attempt());
}

#[test]
fn vlan_tags_are_counted() {
    for (tags, n) in [
        (vec![TPID_8021Q], 1),
        (vec![TPID_8021AD], 1),
        (vec![TPID_8021AD, TPID_8021Q], 2),
    ] {
        let frame = ethernet_tpids(&tags, ETH_IPV4, &inner4(&syn()));
        let (outcome, info) = parse_frame_info(LinkType::Ethernet, &frame, frame.len(), 0);
        assert_eq!(record(outcome).vlan_tags, n);
        assert_eq!(info.vlan_tags, n);
    }
}

#[test]
fn vlan_stacks_up_to_the_bound() {
    let max = slowscan_common::wire::MAX_VLAN_TAGS;
    for n in 3..=max {
        let frame = ethernet_tpids(&vec![TPID_8021Q; usize::from(n)], ETH_IPV4, &inner4(&syn()));
        let (outcome, info) = parse_frame_info(LinkType::Ethernet, &frame, frame.len(), 0);
        assert_eq!(record(outcome).vlan_tags, n);
        assert_eq!(info.vlan_tags, n);
    }
    let frame = ethernet_tpids(
        &vec![TPID_8021Q; usize::from(max) + 1],
        ETH_IPV4,
        &inner4(&syn()),
    );
    let (outcome, info) = parse_frame_info(LinkType::Ethernet, &frame, frame.len(), 0);
    assert_eq!(outcome, FrameOutcome::TooDeep);
    assert_eq!(
        info,
        FrameInfo {
            vlan_tags: max,
            facts: fact::VLAN,
            tcp_header_cut: false,
        }
    );
    // The tag past the bound need not even be present.
    let frame = &ethernet_tpids(&vec![TPID_8021Q; usize::from(max)], TPID_8021Q, &[])[..];
    assert_eq!(parse(LinkType::Ethernet, frame), FrameOutcome::TooDeep);
}

#[test]
fn missing_vlan_tag_is_malformed() {
    let frame = ethernet_tpids(&[TPID_8021Q], ETH_IPV4, &[]);
    assert_eq!(
        parse(LinkType::Ethernet, &frame[..14]),
        FrameOutcome::Malformed
    );
    assert_eq!(
        parse(LinkType::Ethernet, &frame[..17]),
        FrameOutcome::Malformed
    );
    assert_eq!(
        parse(LinkType::Ethernet, &frame[..13]),
        FrameOutcome::Malformed
    );
    // Counted as tagged once the first EtherType is a TPID, even if the tag is cut.
    let (outcome, info) = parse_frame_info(LinkType::Ethernet, &frame[..16], 16, 0);
    assert_eq!(outcome, FrameOutcome::Malformed);
    assert!(info.vlan_tagged());
}

#[test]
fn ipv4_header_length_rules() {
    for ihl in 5..=15u8 {
        let frame = ethernet(
            &[],
            ETH_IPV4,
            &ipv4(SRC4, DST4, 6, &ipv4_nops(ihl), 0, &syn().bytes()),
        );
        assert_eq!(
            record(parse(LinkType::Ethernet, &frame)),
            expected(AF_INET, tcp::SYN, 0, 0)
        );
    }
    for ihl in 0..5u8 {
        let mut frame = tcp4(&syn());
        frame[14] = 0x40 | ihl;
        assert_eq!(
            parse(LinkType::Ethernet, &frame),
            FrameOutcome::Malformed,
            "IHL {ihl}"
        );
    }
    // IHL × 4 beyond the captured bytes.
    let mut frame = ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 6, &[], 0, &[]));
    frame[14] = 0x46;
    frame[16..18].copy_from_slice(&24u16.to_be_bytes());
    assert_eq!(
        parse_frame(LinkType::Ethernet, &frame, 100, 0),
        FrameOutcome::Malformed
    );
}

#[test]
fn ipv4_version_must_be_4() {
    let mut frame = tcp4(&syn());
    frame[14] = 0x65;
    assert_eq!(parse(LinkType::Ethernet, &frame), FrameOutcome::Malformed);
}

/// R2.1: the record counts whatever the total length claims; the
/// disagreement is counted as an anomaly.
#[test]
fn ipv4_total_length_rules() {
    let base = tcp4(&syn());
    let set_total = |total: u16| {
        let mut f = base.clone();
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f
    };
    let anomalous = |total: u16| {
        let f = set_total(total);
        let (outcome, info) = parse_frame_info(LinkType::Ethernet, &f, f.len(), 0);
        assert_eq!(outcome, record_of(tcp::SYN), "total {total}");
        assert_eq!(info.facts, fact::ANOMALY, "total {total}");
    };
    // Larger than the wire; smaller than the IP header (0: offload
    // captures); ends inside the TCP header (the data offset runs past it).
    for total in [41, 1500, 19, 0, 39] {
        anomalous(total);
    }
    // Ends before the TCP flags: Ethernet padding is never read as TCP.
    let mut padded = set_total(20 + 13);
    padded.extend_from_slice(&[0u8; 6]);
    assert_eq!(parse(LinkType::Ethernet, &padded), FrameOutcome::Malformed);
    // Ethernet padding after the datagram is fine.
    let mut padded = base.clone();
    padded.extend_from_slice(&[0u8; 6]);
    assert_eq!(
        record(parse(LinkType::Ethernet, &padded)),
        expected(AF_INET, tcp::SYN, 0, 0)
    );
    // A snap-length cut is judged against the wire length: no anomaly,
    // and the record needs only the ports, sequence number and flags.
    let cut = &base[..base.len() - 1];
    let (outcome, info) = parse_frame_info(LinkType::Ethernet, cut, base.len(), 0);
    assert_eq!(outcome, record_of(tcp::SYN));
    assert_eq!((info.facts, info.tcp_header_cut), (0, true));
    let with_payload = tcp4(&seg(tcp::ACK, 5, 1000));
    let rec = record(parse_frame(
        LinkType::Ethernet,
        &with_payload[..54],
        with_payload.len(),
        0,
    ));
    assert_eq!(rec.tcp_flags, tcp::ACK);
}

#[test]
fn ipv4_fragments() {
    let frag = |proto, frag_field| {
        let f = ethernet(
            &[],
            ETH_IPV4,
            &ipv4(SRC4, DST4, proto, &[], frag_field, &syn().bytes()),
        );
        parse(LinkType::Ethernet, &f)
    };
    assert_eq!(frag(6, 0x0001), FrameOutcome::Fragment);
    assert_eq!(frag(6, 0x1FFF), FrameOutcome::Fragment);
    assert_eq!(frag(6, 0x4000), record_of(tcp::SYN), "DF is not a fragment");
    assert_eq!(
        frag(6, 0x2000),
        record_of(tcp::SYN),
        "a first fragment is parsed"
    );
    assert_eq!(
        frag(17, 0x0001),
        FrameOutcome::NonTcp,
        "protocol is checked first"
    );
}

fn record_of(flags: u8) -> FrameOutcome {
    FrameOutcome::Record(expected(AF_INET, flags, 0, 0))
}

#[test]
fn ipv6_payload_length_rules() {
    let mut frame = tcp6(&syn());
    let v6 = FrameOutcome::Record(expected(AF_INET6, tcp::SYN, 0, 0));
    for (payload, why) in [(21u16, "beyond the wire"), (19, "cuts TCP"), (0, "none")] {
        frame[18..20].copy_from_slice(&payload.to_be_bytes());
        let (outcome, info) = parse_frame_info(LinkType::Ethernet, &frame, frame.len(), 0);
        assert_eq!(outcome, v6, "{why}");
        assert_eq!(info.facts, fact::IPV6 | fact::ANOMALY, "{why}");
    }
    frame[18..20].copy_from_slice(&13u16.to_be_bytes());
    assert_eq!(
        parse(LinkType::Ethernet, &frame),
        FrameOutcome::Malformed,
        "ends before the TCP flags"
    );
    frame[14] = 0x40;
    frame[18..20].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(
        parse(LinkType::Ethernet, &frame),
        FrameOutcome::Malformed,
        "version 4"
    );
}

#[test]
fn ipv6_extension_headers() {
    let chain = |exts: &[ExtHeader], proto| {
        let f = ethernet(
            &[],
            ETH_IPV6,
            &ipv6(SRC6, DST6, exts, proto, &syn().bytes()),
        );
        parse(LinkType::Ethernet, &f)
    };
    let v6 = FrameOutcome::Record(expected(AF_INET6, tcp::SYN, 0, 0));
    assert_eq!(chain(&[ext(0, 1)], 6), v6);
    assert_eq!(chain(&[ext(43, 3)], 6), v6);
    assert_eq!(chain(&[fragment(0, true)], 6), v6);
    assert_eq!(chain(&[fragment(1, false)], 6), FrameOutcome::Fragment);
    let four = [ext(0, 1), ext(60, 1), ext(60, 1), ext(43, 1)];
    assert_eq!(chain(&four, 6), v6, "four headers are walked");
    let five = [
        ext(0, 1),
        ext(60, 1),
        ext(60, 1),
        ext(60, 1),
        fragment(0, false),
    ];
    assert_eq!(
        chain(&five, 6),
        FrameOutcome::TooDeep,
        "a fifth is past the bound"
    );
    assert_eq!(chain(&[ext(60, 1)], 17), FrameOutcome::NonTcp);
    // An extension header that claims more than the datagram holds.
    let mut f = ethernet(
        &[],
        ETH_IPV6,
        &ipv6(SRC6, DST6, &[ext(60, 1)], 6, &syn().bytes()),
    );
    f[54 + 1] = 10;
    assert_eq!(parse(LinkType::Ethernet, &f), FrameOutcome::Malformed);
    // Fragment header cut short.
    let f = ethernet(&[], ETH_IPV6, &ipv6(SRC6, DST6, &[], 44, &[6, 0, 0, 0]));
    assert_eq!(parse(LinkType::Ethernet, &f), FrameOutcome::Malformed);
}

/// R2.1: the data offset is judged, never needed: below 5 or past the
/// datagram is an anomaly; past the captured bytes a snap-length cut.
#[test]
fn tcp_data_offset_rules() {
    let anomaly = |f: &[u8]| {
        let (outcome, info) = parse_frame_info(LinkType::Ethernet, f, f.len(), 0);
        (outcome, info.facts)
    };
    for doff in 0..5u8 {
        let mut f = tcp4(&seg(tcp::SYN, 5, 0));
        f[14 + 20 + 12] = doff << 4;
        let mut want = expected(AF_INET, tcp::SYN, 0, 0);
        want.tcp_flags = tcp::SYN;
        assert_eq!(
            anomaly(&f),
            (FrameOutcome::Record(want), fact::ANOMALY),
            "doff {doff}"
        );
    }
    // doff says 60 bytes but the datagram holds 40 of TCP.
    let mut f = tcp4(&seg(tcp::SYN, 5, 20));
    f[14 + 20 + 12] = 15 << 4;
    assert_eq!(anomaly(&f), (record_of(tcp::SYN), fact::ANOMALY));
    // doff inside the datagram but beyond the captured bytes: a cut, no anomaly.
    let full = tcp4(&seg(tcp::SYN, 8, 0));
    let cut = &full[..full.len() - 1];
    let (outcome, info) = parse_frame_info(LinkType::Ethernet, cut, full.len(), 0);
    assert_eq!(outcome, record_of(tcp::SYN));
    assert_eq!((info.facts, info.tcp_header_cut), (0, true));
    // Only 13 bytes of TCP captured: no flags, no record.
    let f = &tcp4(&syn())[..14 + 20 + 13];
    assert_eq!(
        parse_frame(LinkType::Ethernet, f, 74, 0),
        FrameOutcome::Malformed
    );
}

#[test]
fn other_link_types() {
    let v4 = inner4(&syn());
    let v6 = inner6(&syn());
    let rec4 = FrameOutcome::Record(expected(AF_INET, tcp::SYN, 0, 0));
    let rec6 = FrameOutcome::Record(expected(AF_INET6, tcp::SYN, 0, 0));
    assert_eq!(parse(LinkType::LinuxSll, &sll(ETH_IPV6, &v6)), rec6);
    assert_eq!(
        parse(LinkType::LinuxSll, &sll(TPID_8021Q, &v4)),
        FrameOutcome::NonIp,
        "no tags after SLL"
    );
    assert_eq!(
        parse(LinkType::LinuxSll, &sll(ETH_IPV4, &[])[..15]),
        FrameOutcome::Malformed
    );
    assert_eq!(parse(LinkType::LinuxSll2, &sll2(ETH_IPV4, &v4)), rec4);
    assert_eq!(
        parse(LinkType::LinuxSll2, &sll2(ETH_ARP, &[0; 28])),
        FrameOutcome::NonIp
    );
    assert_eq!(
        parse(LinkType::LinuxSll2, &sll2(ETH_IPV4, &[])[..19]),
        FrameOutcome::Malformed
    );
    assert_eq!(parse(LinkType::RawIp, &[]), FrameOutcome::Malformed);
    let mut v5 = v4.clone();
    v5[0] = 0x55;
    assert_eq!(parse(LinkType::RawIp, &v5), FrameOutcome::NonIp);
    assert_eq!(parse(LinkType::Ipv4, &v5), FrameOutcome::Malformed);
    assert_eq!(parse(LinkType::Ipv4, &v6), FrameOutcome::Malformed);
    assert_eq!(parse(LinkType::Ipv6, &v4), FrameOutcome::Malformed);
    assert_eq!(parse(LinkType::Ipv6, &v6), rec6);
    for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
        assert_eq!(
            parse(LinkType::Null, &null(family, &v4)),
            rec4,
            "{family:?}"
        );
    }
    for f in [24u8, 28, 30] {
        assert_eq!(parse(LinkType::Null, &null([f, 0, 0, 0], &v6)), rec6);
        assert_eq!(parse(LinkType::Null, &null([0, 0, 0, f], &v6)), rec6);
    }
    assert_eq!(parse(LinkType::Null, &[2, 0, 0]), FrameOutcome::Malformed);
    assert_eq!(
        parse(LinkType::Null, &null([0, 0, 0, 0], &v4)),
        FrameOutcome::NonIp
    );
}

#[test]
fn link_type_numbers() {
    let all = [
        (0, LinkType::Null),
        (1, LinkType::Ethernet),
        (12, LinkType::RawIp),
        (14, LinkType::RawIp),
        (101, LinkType::RawIp),
        (113, LinkType::LinuxSll),
        (228, LinkType::Ipv4),
        (229, LinkType::Ipv6),
        (276, LinkType::LinuxSll2),
        (9, LinkType::Ppp),
        (50, LinkType::Ppp),
        (104, LinkType::CiscoHdlc),
        (105, LinkType::Ieee80211),
        (127, LinkType::Radiotap),
        (239, LinkType::Nflog),
        (242, LinkType::IpOverIb),
    ];
    for (n, link) in all {
        assert_eq!(LinkType::from_pcap(n), Some(link), "{n}");
        assert_eq!(LinkType::from_pcap(link.to_pcap()), Some(link));
    }
    for n in [2, 147, 192, 65_535, u32::MAX] {
        assert_eq!(LinkType::from_pcap(n), None, "{n}");
    }
}

#[test]
fn wire_len_below_caplen_means_caplen() {
    let f = tcp4(&syn());
    assert_eq!(
        parse_frame(LinkType::Ethernet, &f, 0, 0),
        parse(LinkType::Ethernet, &f)
    );
}

/// Truncation at every length, both as a short frame (wire = captured) and
/// as a snap-length cut (wire = full): never a record with a wrong field,
/// otherwise `Malformed` (or `Fragment`, for a first fragment cut before
/// its TCP flags; `NonIp`, for NFLOG cut between TLVs) or the full frame's
/// own outcome.
#[test]
fn truncation_at_every_length() {
    for case in catalogue() {
        let full = &case.frame;
        let (_, full_info) = parse_frame_info(case.link, full, full.len(), 0);
        for n in 0..full.len() {
            for wire_len in [n, full.len()] {
                let got = parse_frame(case.link, &full[..n], wire_len, 0);
                let fragment =
                    full_info.facts & fact::FIRST_FRAGMENT != 0 && got == FrameOutcome::Fragment;
                // NFLOG has no overall length: a message cut at a TLV
                // boundary is a whole message without the packet.
                let tlvs = case.link == LinkType::Nflog && got == FrameOutcome::NonIp;
                let ok = got == case.outcome || got == FrameOutcome::Malformed || fragment || tlvs;
                assert!(ok, "{} cut to {n} (wire {wire_len}): {got:?}", case.name);
            }
        }
    }
}

/// A record from a snap-length cut needs the ports, sequence number and
/// flags (R2.1): the first 14 bytes of the TCP header, not its options.
#[test]
fn snaplen_cut_keeps_records_while_the_tcp_fields_are_captured() {
    let full = tcp4(&seg(tcp::SYN, 6, 100));
    let tcp_end = 14 + 20 + 14;
    for n in 0..=full.len() {
        let got = parse_frame(LinkType::Ethernet, &full[..n], full.len(), 0);
        assert_eq!(
            matches!(got, FrameOutcome::Record(_)),
            n >= tcp_end,
            "cut to {n}"
        );
    }
}

#[test]
fn counters_mirror_the_kernel() {
    let mut c = FrameCounters::default();
    let frames: [(LinkType, Vec<u8>); 6] = [
        (LinkType::Ethernet, tcp4(&syn())),
        (
            LinkType::Ethernet,
            ethernet_tpids(&[TPID_8021Q], ETH_IPV6, &inner6(&syn())[..30]),
        ),
        (LinkType::Ethernet, ethernet(&[], ETH_ARP, &[0; 28])),
        (
            LinkType::Ethernet,
            ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 17, &[], 0, &[0; 8])),
        ),
        (
            LinkType::Ethernet,
            ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 6, &[], 9, &syn().bytes())),
        ),
        (LinkType::RawIp, inner6(&syn())),
    ];
    for (link, f) in &frames {
        let (outcome, info) = parse_frame_info(*link, f, f.len(), 0);
        c.count(&outcome, info);
    }
    let want = FrameCounters {
        frames: 6,
        records: 2,
        non_ip: 1,
        non_tcp: 1,
        malformed: 1,
        fragments_skipped: 1,
        ipv6: 2,
        vlan_tagged: 1,
        ..FrameCounters::default()
    };
    assert_eq!(c, want);
    assert_eq!(c.get(Counter::Frames), Some(6));
    assert_eq!(c.get(Counter::FragmentsSkipped), Some(1));
    assert_eq!(c.get(Counter::Ipv6), Some(2));
    assert_eq!(c.get(Counter::VlanTagged), Some(1));
    assert_eq!(c.get(Counter::RingFull), None);
}
