//! The parse case table: frames and what both parsers must make of them
//! (docs/parsing.md), one row per rule. `tests/tests/parse_cases.rs` runs
//! every row through the userspace parser in every plain `cargo test`, and
//! the Ethernet rows through the XDP program (BPF_PROG_TEST_RUN) in the
//! privileged tests; `xdp_truncation.rs` cuts every Ethernet row at every
//! length through both. One table, so the two parsers cannot drift.

use slowscan::frame::LinkType;
use slowscan_common::{
    AF_INET, AF_INET6, Counter, PacketRecord, tcp,
    wire::{
        ETH_P_8021AD, ETH_P_8021AH, ETH_P_8021Q, ETH_P_ERSPAN, ETH_P_ERSPAN3, ETH_P_IP, ETH_P_IPV6,
        ETH_P_MPLS_UC, ETH_P_PPP_SES, ETH_P_QINQ_9100, ETH_P_TEB, MAX_ENCAPS, MAX_VLAN_TAGS,
        UDP_PORT_GENEVE, UDP_PORT_GTPU, UDP_PORT_VXLAN, fact,
    },
};

use crate::frames::{self, DST4, DST6, SRC4, SRC6, Tcp};

/// What must come of a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// This record (`ts_ns` and `status` 0).
    Record(PacketRecord),
    /// No record; this counter says why (`NonIp`, `NonTcp`, `Malformed`,
    /// `FragmentsSkipped`, `TooDeep`).
    Skipped(Counter),
}

/// One row: a frame, and its outcome and facts (`wire::fact` bits as
/// counted: the anomaly bit only with a record).
pub struct Case {
    pub name: &'static str,
    pub link: LinkType,
    pub frame: Vec<u8>,
    /// The length on the wire when a capture's snap length cut the frame
    /// (userspace only: XDP sees whole frames).
    pub wire_len: Option<usize>,
    pub outcome: Outcome,
    pub facts: u32,
}

impl Case {
    /// Rows the XDP program can be given: Ethernet, whole, at least a header.
    pub fn for_kernel(&self) -> bool {
        self.link == LinkType::Ethernet && self.wire_len.is_none() && self.frame.len() >= 14
    }
}

/// The record of segment `t` between the inner IPv4 documentation hosts.
pub fn rec4(t: &Tcp, vlan_tags: u8) -> PacketRecord {
    let mut r = seg(t, AF_INET, vlan_tags);
    r.src_addr[..4].copy_from_slice(&SRC4);
    r.dst_addr[..4].copy_from_slice(&DST4);
    r
}

pub fn rec6(t: &Tcp, vlan_tags: u8) -> PacketRecord {
    let mut r = seg(t, AF_INET6, vlan_tags);
    r.src_addr = SRC6;
    r.dst_addr = DST6;
    r
}

fn seg(t: &Tcp, family: u8, vlan_tags: u8) -> PacketRecord {
    PacketRecord {
        seq: t.seq,
        src_port: t.src_port,
        dst_port: t.dst_port,
        family,
        tcp_flags: t.flags,
        vlan_tags,
        ..PacketRecord::default()
    }
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    frames::ethernet(&[], ethertype, payload)
}

/// A SYN with a sequence number of its own (rows are told apart by it).
fn syn(seq: u32) -> Tcp {
    Tcp::syn(seq)
}

/// Every row; an attempt in an Ethernet frame carries its outer source MAC
/// (R9); other segments and link types have none.
pub fn cases() -> Vec<Case> {
    let mut v = case_rows();
    for c in &mut v {
        if let (LinkType::Ethernet, Outcome::Record(r), Some(mac)) =
            (c.link, &mut c.outcome, c.frame.get(6..12))
            && tcp::is_attempt(r.tcp_flags)
        {
            r.src_mac.copy_from_slice(mac);
        }
    }
    v
}

fn case_rows() -> Vec<Case> {
    use Counter::{FragmentsSkipped, Malformed, NonIp, NonTcp, TooDeep};
    use LinkType::*;
    let mut v = Vec::new();
    let mut rec = |name, link, frame: Vec<u8>, r: PacketRecord, facts: u32| {
        v.push(Case {
            name,
            link,
            frame,
            wire_len: None,
            outcome: Outcome::Record(r),
            facts,
        })
    };
    // ---- plain frames (the fast path)
    let t = syn(1);
    rec(
        "IPv4 SYN",
        Ethernet,
        eth(ETH_P_IP, &frames::inner4(&t)),
        rec4(&t, 0),
        0,
    );
    let t = syn(2);
    rec(
        "IPv6 SYN",
        Ethernet,
        eth(ETH_P_IPV6, &frames::inner6(&t)),
        rec6(&t, 0),
        fact::IPV6,
    );
    let mut t = Tcp::new(0x12, 3);
    t.payload = 30;
    rec(
        "IPv4 SYN-ACK with data",
        Ethernet,
        frames::tcp4(&t),
        rec4(&t, 0),
        0,
    );
    let t = syn(4);
    let opts = [0x94, 0x04, 0, 0, 1, 1, 1, 0];
    rec(
        "IPv4 options (IHL 7)",
        Ethernet,
        eth(ETH_P_IP, &frames::ipv4(SRC4, DST4, 6, &opts, 0, &t.bytes())),
        rec4(&t, 0),
        0,
    );
    // Source routes (RFC 791): the option lists hops, the last being the
    // final destination; the record's addresses are the header's (R2.1).
    for (name, kind, seq) in [
        (
            "IPv4 loose source route (LSRR): the header's addresses",
            0x83,
            7,
        ),
        (
            "IPv4 strict source route (SSRR): the header's addresses",
            0x89,
            8,
        ),
    ] {
        let t = syn(seq);
        // type, length 11, pointer 4 (first hop next), two hops, EOL.
        let mut opts = vec![kind, 11, 4, 198, 51, 100, 200, 203, 0, 113, 99];
        opts.push(0);
        rec(
            name,
            Ethernet,
            eth(ETH_P_IP, &frames::ipv4(SRC4, DST4, 6, &opts, 0, &t.bytes())),
            rec4(&t, 0),
            0,
        );
    }
    let mut t = syn(5);
    t.doff = 15;
    rec(
        "TCP options (data offset 15)",
        Ethernet,
        frames::tcp4(&t),
        rec4(&t, 0),
        0,
    );
    let t = syn(6);
    let mut f = frames::tcp4(&t);
    f.extend_from_slice(&[0; 6]);
    rec("Ethernet padding is not read", Ethernet, f, rec4(&t, 0), 0);
    // ---- VLAN stacks (R2.1: up to MAX_VLAN_TAGS per Ethernet header)
    for (name, tags) in [
        ("one 802.1Q tag", vec![(ETH_P_8021Q, 10)]),
        (
            "QinQ: 802.1ad + 802.1Q",
            vec![(ETH_P_8021AD, 10), (ETH_P_8021Q, 20)],
        ),
        (
            "three stacked 802.1Q tags",
            vec![(ETH_P_8021Q, 10), (ETH_P_8021Q, 20), (ETH_P_8021Q, 30)],
        ),
        (
            "four tags, 0x9100 outermost",
            vec![
                (ETH_P_QINQ_9100, 1),
                (ETH_P_8021AD, 2),
                (ETH_P_8021Q, 3),
                (ETH_P_8021Q, 4),
            ],
        ),
    ] {
        let t = syn(10 + tags.len() as u32);
        let n = tags.len() as u8;
        rec(
            name,
            Ethernet,
            frames::ethernet_tags(&tags, ETH_P_IP, &frames::inner4(&t)),
            rec4(&t, n),
            fact::VLAN,
        );
    }
    let t = syn(15);
    rec(
        "VLAN-tagged IPv6",
        Ethernet,
        frames::ethernet_tags(&[(ETH_P_8021Q, 7)], ETH_P_IPV6, &frames::inner6(&t)),
        rec6(&t, 1),
        fact::VLAN | fact::IPV6,
    );
    // ---- R2.1: a segment counts when its ports, sequence and flags are there
    let mut t = syn(20);
    t.doff = 10;
    {
        // A SYN with 20 bytes of options cut by a 68-byte snap length.
        let full = frames::tcp4(&t);
        let wire = full.len();
        v.push(Case {
            name: "snap length 68 cuts the SYN's options (userspace)",
            link: Ethernet,
            frame: full[..68].to_vec(),
            wire_len: Some(wire),
            outcome: Outcome::Record(rec4(&t, 0)),
            facts: 0,
        });
        // The same bytes as a whole frame: its lengths claim more than it holds.
        let mut rec = |name, link, frame: Vec<u8>, r: PacketRecord, facts: u32| {
            v.push(Case {
                name,
                link,
                frame,
                wire_len: None,
                outcome: Outcome::Record(r),
                facts,
            })
        };
        rec(
            "a 68-byte SYN whose lengths claim 74 bytes: an anomaly",
            Ethernet,
            full[..68].to_vec(),
            rec4(&t, 0),
            fact::ANOMALY,
        );
    }
    let mut rec = |name, link, frame: Vec<u8>, r: PacketRecord, facts: u32| {
        v.push(Case {
            name,
            link,
            frame,
            wire_len: None,
            outcome: Outcome::Record(r),
            facts,
        })
    };
    {
        // Mirai-style probe: sequence = destination address, data offset 6
        // but the datagram holds 20 bytes of TCP.
        let mut t = syn(u32::from_be_bytes(DST4));
        t.dst_port = 23;
        let mut ip = frames::inner4(&t);
        ip[32] = 6 << 4;
        rec(
            "data offset past the datagram (Mirai telnet probe)",
            Ethernet,
            eth(ETH_P_IP, &ip),
            rec4(&t, 0),
            fact::ANOMALY,
        );
    }
    let mut t = syn(21);
    t.doff = 4;
    rec(
        "data offset 4",
        Ethernet,
        frames::tcp4(&t),
        rec4(&t, 0),
        fact::ANOMALY,
    );
    let mut t = syn(22);
    t.doff = 0;
    rec(
        "data offset 0",
        Ethernet,
        frames::tcp4(&t),
        rec4(&t, 0),
        fact::ANOMALY,
    );
    for (name, total) in [
        ("IPv4 total length past the frame", 122u16),
        ("IPv4 total length 0 (offload capture)", 0),
        ("IPv4 total length short of its header", 12),
    ] {
        let t = syn(23 + u32::from(total));
        let mut f = frames::tcp4(&t);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        rec(name, Ethernet, f, rec4(&t, 0), fact::ANOMALY);
    }
    {
        let t = syn(30);
        let mut ip = frames::inner6(&t);
        ip[4..6].copy_from_slice(&200u16.to_be_bytes());
        rec(
            "IPv6 payload length past the frame",
            Ethernet,
            eth(ETH_P_IPV6, &ip),
            rec6(&t, 0),
            fact::IPV6 | fact::ANOMALY,
        );
        ip[4..6].copy_from_slice(&0u16.to_be_bytes());
        rec(
            "IPv6 payload length 0",
            Ethernet,
            eth(ETH_P_IPV6, &ip),
            rec6(&t, 0),
            fact::IPV6 | fact::ANOMALY,
        );
    }
    // ---- fragments: the first is read, later ones skipped
    let t = syn(40);
    rec(
        "IPv4 first fragment holding the whole TCP header",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::ipv4(SRC4, DST4, 6, &[], 0x2000, &t.bytes()),
        ),
        rec4(&t, 0),
        fact::FIRST_FRAGMENT,
    );
    {
        // The options continue in the next fragment: 16 of 40 bytes here.
        let mut t = syn(41);
        t.doff = 10;
        let seg = t.bytes();
        rec(
            "IPv4 first fragment cutting the SYN's options",
            Ethernet,
            eth(
                ETH_P_IP,
                &frames::ipv4(SRC4, DST4, 6, &[], 0x2000, &seg[..16]),
            ),
            rec4(&t, 0),
            fact::FIRST_FRAGMENT,
        );
    }
    let t = syn(42);
    rec(
        "IPv6 first fragment",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::ipv6(SRC6, DST6, &[frames::fragment(0, true)], 6, &t.bytes()),
        ),
        rec6(&t, 0),
        fact::IPV6 | fact::FIRST_FRAGMENT,
    );
    let t = syn(43);
    rec(
        "IPv6 atomic fragment (offset 0, no more)",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::ipv6(SRC6, DST6, &[frames::fragment(0, false)], 6, &t.bytes()),
        ),
        rec6(&t, 0),
        fact::IPV6,
    );
    let t = syn(44);
    rec(
        "IPv6 hop-by-hop, routing, destination options",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::ipv6(
                SRC6,
                DST6,
                &[frames::hop_by_hop(), frames::routing(), frames::dest_opts()],
                6,
                &t.bytes(),
            ),
        ),
        rec6(&t, 0),
        fact::IPV6,
    );
    // ---- tunnels: the innermost IP/TCP header counts
    let t = syn(50);
    rec(
        "GRE: IPv4 in IPv4",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(47, &frames::gre(0, ETH_P_IP, &frames::inner4(&t))),
        ),
        rec4(&t, 0),
        fact::GRE,
    );
    let t = syn(51);
    rec(
        "GRE with checksum, key and sequence: IPv6 in IPv6",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::outer6(47, &frames::gre(0xB0, ETH_P_IPV6, &frames::inner6(&t))),
        ),
        rec6(&t, 0),
        fact::IPV6 | fact::GRE,
    );
    let t = syn(52);
    rec(
        "GRE transparent Ethernet bridging, a tagged frame inside",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                47,
                &frames::gre(
                    0x20,
                    ETH_P_TEB,
                    &frames::ethernet_tags(&[(ETH_P_8021Q, 5)], ETH_P_IP, &frames::inner4(&t)),
                ),
            ),
        ),
        rec4(&t, 1),
        fact::GRE | fact::VLAN,
    );
    let t = syn(53);
    rec(
        "ERSPAN type I (no sequence number, no header)",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                47,
                &frames::gre(0, ETH_P_ERSPAN, &eth(ETH_P_IP, &frames::inner4(&t))),
            ),
        ),
        rec4(&t, 0),
        fact::ERSPAN,
    );
    let t = syn(54);
    rec(
        "ERSPAN type II",
        Ethernet,
        frames::ethernet_tags(
            &[(ETH_P_8021Q, 99)],
            ETH_P_IP,
            &frames::outer4(
                47,
                &frames::gre(
                    0x10,
                    ETH_P_ERSPAN,
                    &frames::erspan2(&eth(ETH_P_IP, &frames::inner4(&t))),
                ),
            ),
        ),
        rec4(&t, 1),
        fact::ERSPAN | fact::VLAN,
    );
    for (name, o) in [
        ("ERSPAN type III", false),
        ("ERSPAN type III with a platform subheader", true),
    ] {
        let t = syn(55 + u32::from(o));
        rec(
            name,
            Ethernet,
            eth(
                ETH_P_IP,
                &frames::outer4(
                    47,
                    &frames::gre(
                        0x10,
                        ETH_P_ERSPAN3,
                        &frames::erspan3(o, &eth(ETH_P_IPV6, &frames::inner6(&t))),
                    ),
                ),
            ),
            rec6(&t, 0),
            fact::ERSPAN | fact::IPV6,
        );
    }
    let t = syn(57);
    rec(
        "VXLAN",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(
                    UDP_PORT_VXLAN,
                    &frames::vxlan(0x08, &eth(ETH_P_IP, &frames::inner4(&t))),
                ),
            ),
        ),
        rec4(&t, 0),
        fact::VXLAN,
    );
    let t = syn(58);
    rec(
        "Geneve with options, Ethernet inside",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(
                    UDP_PORT_GENEVE,
                    &frames::geneve(3, ETH_P_TEB, &eth(ETH_P_IP, &frames::inner4(&t))),
                ),
            ),
        ),
        rec4(&t, 0),
        fact::GENEVE,
    );
    let t = syn(59);
    rec(
        "Geneve, IPv6 inside",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::outer6(
                17,
                &frames::udp(
                    UDP_PORT_GENEVE,
                    &frames::geneve(0, ETH_P_IPV6, &frames::inner6(&t)),
                ),
            ),
        ),
        rec6(&t, 0),
        fact::GENEVE | fact::IPV6,
    );
    let t = syn(60);
    rec(
        "GTP-U T-PDU",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(
                    UDP_PORT_GTPU,
                    &frames::gtpu(0x30, 0xFF, 0, &[], &frames::inner4(&t)),
                ),
            ),
        ),
        rec4(&t, 0),
        fact::GTPU,
    );
    let t = syn(61);
    rec(
        "GTP-U with a sequence number and two extension headers",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(
                    UDP_PORT_GTPU,
                    &frames::gtpu(
                        0x36,
                        0xFF,
                        0x85,
                        &[(0x40, [0x10, 9]), (0, [0, 0])],
                        &frames::inner6(&t),
                    ),
                ),
            ),
        ),
        rec6(&t, 0),
        fact::GTPU | fact::IPV6,
    );
    let t = syn(62);
    rec(
        "MPLS, one label",
        Ethernet,
        eth(ETH_P_MPLS_UC, &frames::mpls(1, true, &frames::inner4(&t))),
        rec4(&t, 0),
        fact::MPLS,
    );
    let t = syn(63);
    rec(
        "MPLS, four labels, IPv6",
        Ethernet,
        eth(ETH_P_MPLS_UC, &frames::mpls(4, true, &frames::inner6(&t))),
        rec6(&t, 0),
        fact::MPLS | fact::IPV6,
    );
    let t = syn(64);
    rec(
        "MPLS Ethernet pseudowire behind a control word",
        Ethernet,
        eth(
            ETH_P_MPLS_UC,
            &frames::mpls(
                2,
                true,
                &[&[0u8, 0, 0, 1][..], &eth(ETH_P_IP, &frames::inner4(&t))].concat(),
            ),
        ),
        rec4(&t, 0),
        fact::MPLS,
    );
    let t = syn(65);
    rec(
        "PPPoE session, IPv4",
        Ethernet,
        eth(
            ETH_P_PPP_SES,
            &frames::pppoe(&[0x00, 0x21], &frames::inner4(&t)),
        ),
        rec4(&t, 0),
        fact::PPPOE,
    );
    let t = syn(66);
    rec(
        "PPPoE session, compressed protocol field, in a VLAN",
        Ethernet,
        frames::ethernet_tags(
            &[(ETH_P_8021Q, 3)],
            ETH_P_PPP_SES,
            &frames::pppoe(&[0x21], &frames::inner4(&t)),
        ),
        rec4(&t, 1),
        fact::PPPOE | fact::VLAN,
    );
    let t = syn(67);
    rec(
        "PPPoE session, IPv6",
        Ethernet,
        eth(
            ETH_P_PPP_SES,
            &frames::pppoe(&[0x00, 0x57], &frames::inner6(&t)),
        ),
        rec6(&t, 0),
        fact::PPPOE | fact::IPV6,
    );
    let t = syn(68);
    rec(
        "802.1ah: a tagged customer frame inside",
        Ethernet,
        frames::ethernet_tags(
            &[(ETH_P_8021AD, 100)],
            ETH_P_8021AH,
            &frames::pbb(&frames::ethernet_tags(
                &[(ETH_P_8021Q, 200)],
                ETH_P_IP,
                &frames::inner4(&t),
            )),
        ),
        rec4(&t, 2),
        fact::PBB | fact::VLAN,
    );
    let t = syn(69);
    rec(
        "6in4",
        Ethernet,
        eth(ETH_P_IP, &frames::outer4(41, &frames::inner6(&t))),
        rec6(&t, 0),
        fact::IP_IN_IP | fact::IPV6,
    );
    let t = syn(70);
    rec(
        "IPv4 in IPv4",
        Ethernet,
        eth(ETH_P_IP, &frames::outer4(4, &frames::inner4(&t))),
        rec4(&t, 0),
        fact::IP_IN_IP,
    );
    let t = syn(71);
    rec(
        "4in6",
        Ethernet,
        eth(ETH_P_IPV6, &frames::outer6(4, &frames::inner4(&t))),
        rec4(&t, 0),
        fact::IP_IN_IP | fact::IPV6,
    );
    {
        // MAX_ENCAPS deep: MPLS, GRE (Ethernet), VXLAN.
        assert_eq!(MAX_ENCAPS, 3, "the depth rows assume three encapsulations");
        let t = syn(72);
        let vx = frames::outer4(
            17,
            &frames::udp(
                UDP_PORT_VXLAN,
                &frames::vxlan(0x08, &eth(ETH_P_IP, &frames::inner4(&t))),
            ),
        );
        let gre = frames::outer4(47, &frames::gre(0, ETH_P_TEB, &eth(ETH_P_IP, &vx)));
        rec(
            "three deep: MPLS, GRE bridging, VXLAN",
            Ethernet,
            eth(ETH_P_MPLS_UC, &frames::mpls(1, true, &gre)),
            rec4(&t, 0),
            fact::MPLS | fact::GRE | fact::VXLAN,
        );
    }
    {
        // A tunnel's inner lengths are judged against the outer datagram.
        let t = syn(73);
        let mut inner = frames::inner4(&t);
        inner[2..4].copy_from_slice(&300u16.to_be_bytes());
        rec(
            "inner IPv4 length past the outer datagram",
            Ethernet,
            eth(
                ETH_P_IP,
                &frames::outer4(47, &frames::gre(0, ETH_P_IP, &inner)),
            ),
            rec4(&t, 0),
            fact::GRE | fact::ANOMALY,
        );
    }
    {
        // An outer first fragment: the inner SYN's fields are in it.
        let t = syn(74);
        let payload = frames::gre(0, ETH_P_IP, &frames::inner4(&t));
        rec(
            "GRE in an outer first fragment",
            Ethernet,
            eth(
                ETH_P_IP,
                &frames::ipv4(
                    frames::OUTER_SRC4,
                    frames::OUTER_DST4,
                    47,
                    &[],
                    0x2000,
                    &payload,
                ),
            ),
            rec4(&t, 0),
            fact::GRE | fact::FIRST_FRAGMENT,
        );
    }
    // ---- link types only captures have (userspace)
    let t = syn(80);
    rec(
        "Linux cooked v1",
        LinuxSll,
        frames::sll(ETH_P_IP, &frames::inner4(&t)),
        rec4(&t, 0),
        0,
    );
    let t = syn(81);
    rec(
        "Linux cooked v2, IPv6",
        LinuxSll2,
        frames::sll2(ETH_P_IPV6, &frames::inner6(&t)),
        rec6(&t, 0),
        fact::IPV6,
    );
    let t = syn(82);
    rec("raw IP, IPv4", RawIp, frames::inner4(&t), rec4(&t, 0), 0);
    let t = syn(83);
    rec(
        "raw IP, IPv6",
        RawIp,
        frames::inner6(&t),
        rec6(&t, 0),
        fact::IPV6,
    );
    let t = syn(84);
    rec(
        "BSD loopback, big-endian family",
        Null,
        [&[0u8, 0, 0, 2][..], &frames::inner4(&t)].concat(),
        rec4(&t, 0),
        0,
    );
    let t = syn(85);
    rec(
        "PPP with address and control",
        Ppp,
        [&[0xFFu8, 0x03, 0x00, 0x21][..], &frames::inner4(&t)].concat(),
        rec4(&t, 0),
        0,
    );
    let t = syn(86);
    rec(
        "PPP, compressed fields, IPv6",
        Ppp,
        [&[0x00u8, 0x57][..], &frames::inner6(&t)].concat(),
        rec6(&t, 0),
        fact::IPV6,
    );
    let t = syn(87);
    rec(
        "Cisco HDLC framing in a PPP capture",
        Ppp,
        [&[0x0Fu8, 0x00, 0x08, 0x00][..], &frames::inner4(&t)].concat(),
        rec4(&t, 0),
        0,
    );
    let t = syn(88);
    rec(
        "PPP carrying MPLS",
        Ppp,
        [
            &[0xFFu8, 0x03, 0x02, 0x81][..],
            &frames::mpls(1, true, &frames::inner4(&t)),
        ]
        .concat(),
        rec4(&t, 0),
        fact::MPLS,
    );
    let t = syn(89);
    rec(
        "Cisco HDLC",
        CiscoHdlc,
        [&[0x0Fu8, 0x00, 0x08, 0x00][..], &frames::inner4(&t)].concat(),
        rec4(&t, 0),
        0,
    );
    let t = syn(90);
    rec(
        "NFLOG, little-endian TLVs",
        Nflog,
        frames::nflog(2, false, &frames::inner4(&t)),
        rec4(&t, 0),
        0,
    );
    let t = syn(91);
    rec(
        "NFLOG, big-endian TLVs, IPv6",
        Nflog,
        frames::nflog(10, true, &frames::inner6(&t)),
        rec6(&t, 0),
        fact::IPV6,
    );
    let t = syn(92);
    rec(
        "IP over InfiniBand",
        IpOverIb,
        frames::ipoib(ETH_P_IP, &frames::inner4(&t)),
        rec4(&t, 0),
        0,
    );
    let t = syn(93);
    rec(
        "802.11 data frame",
        Ieee80211,
        frames::wlan(0x08, 0x01, ETH_P_IP, &frames::inner4(&t)),
        rec4(&t, 0),
        0,
    );
    let t = syn(94);
    rec(
        "802.11 QoS data, four addresses, IPv6",
        Ieee80211,
        frames::wlan(0x88, 0x03, ETH_P_IPV6, &frames::inner6(&t)),
        rec6(&t, 0),
        fact::IPV6,
    );
    let t = syn(95);
    rec(
        "radiotap, 802.11 QoS data",
        Radiotap,
        frames::radiotap(0, &frames::wlan(0x88, 0x02, ETH_P_IP, &frames::inner4(&t))),
        rec4(&t, 0),
        0,
    );
    {
        // Data padding: the 26-byte QoS header padded to 28.
        let t = syn(96);
        let mut w = frames::wlan(0x88, 0x02, ETH_P_IP, &frames::inner4(&t));
        w.splice(26..26, [0, 0]);
        rec(
            "radiotap, 802.11 header padded (DATAPAD)",
            Radiotap,
            frames::radiotap(0x20, &w),
            rec4(&t, 0),
            0,
        );
    }

    // ---- no record, and why
    let mut skip = |name, link, frame: Vec<u8>, why: Counter, facts: u32| {
        v.push(Case {
            name,
            link,
            frame,
            wire_len: None,
            outcome: Outcome::Skipped(why),
            facts,
        })
    };
    skip("ARP", Ethernet, frames::arp(), NonIp, 0);
    skip("UDP to DNS", Ethernet, frames::udp4(), NonTcp, 0);
    skip(
        "ICMP",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::ipv4(SRC4, DST4, 1, &[], 0, &[8, 0, 0, 0, 0, 0, 0, 0]),
        ),
        NonTcp,
        0,
    );
    skip(
        "an Ethernet runt (13 bytes)",
        Ethernet,
        frames::tcp4(&syn(100))[..13].to_vec(),
        Malformed,
        0,
    );
    skip(
        "the TCP flags not captured (13 bytes of TCP)",
        Ethernet,
        frames::tcp4(&syn(101))[..14 + 20 + 13].to_vec(),
        Malformed,
        0,
    );
    {
        let mut f = frames::tcp4(&syn(102));
        f[14] = 0x44;
        skip("IPv4 IHL 4", Ethernet, f, Malformed, 0);
        let mut f = frames::tcp4(&syn(103));
        f[14] = 0x55;
        skip("IPv4 version 5", Ethernet, f, Malformed, 0);
        // A datagram ending before the TCP flags, padded: never read as TCP.
        let mut f = frames::tcp4(&syn(104));
        f[16..18].copy_from_slice(&30u16.to_be_bytes());
        skip(
            "IPv4 total length short of the TCP flags",
            Ethernet,
            f,
            Malformed,
            0,
        );
    }
    {
        let tags: Vec<(u16, u16)> = (0..=MAX_VLAN_TAGS)
            .map(|i| (ETH_P_8021Q, u16::from(i)))
            .collect();
        skip(
            "VLAN tags past the bound",
            Ethernet,
            frames::ethernet_tags(&tags, ETH_P_IP, &frames::inner4(&syn(105))),
            TooDeep,
            fact::VLAN,
        );
        skip(
            "a VLAN tag cut short",
            Ethernet,
            frames::ethernet_tags(&[(ETH_P_8021Q, 1)], ETH_P_IP, &[])[..16].to_vec(),
            Malformed,
            fact::VLAN,
        );
    }
    skip(
        "IPv6 extension headers past the bound",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::ipv6(
                SRC6,
                DST6,
                &[
                    frames::hop_by_hop(),
                    frames::routing(),
                    frames::dest_opts(),
                    frames::dest_opts(),
                    frames::routing(),
                ],
                6,
                &syn(106).bytes(),
            ),
        ),
        TooDeep,
        fact::IPV6,
    );
    {
        // A destination-options header of 2048 bytes: TCP would start past
        // MAX_HEADER_OFFSET.
        let mut opts = vec![0u8; 2048];
        opts[2] = 1;
        opts[3] = 250;
        skip(
            "a header past MAX_HEADER_OFFSET",
            Ethernet,
            eth(
                ETH_P_IPV6,
                &frames::ipv6(SRC6, DST6, &[(60, opts)], 6, &syn(107).bytes()),
            ),
            TooDeep,
            fact::IPV6,
        );
    }
    skip(
        "IPv4 later fragment",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::ipv4(SRC4, DST4, 6, &[], 185, &syn(108).bytes()),
        ),
        FragmentsSkipped,
        0,
    );
    skip(
        "IPv4 first fragment too short for the TCP flags",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::ipv4(SRC4, DST4, 6, &[], 0x2000, &syn(109).bytes()[..8]),
        ),
        FragmentsSkipped,
        fact::FIRST_FRAGMENT,
    );
    skip(
        "IPv6 later fragment",
        Ethernet,
        eth(
            ETH_P_IPV6,
            &frames::ipv6(
                SRC6,
                DST6,
                &[frames::fragment(185, false)],
                6,
                &syn(110).bytes(),
            ),
        ),
        FragmentsSkipped,
        fact::IPV6,
    );
    skip(
        "UDP later fragment (its ports are elsewhere)",
        Ethernet,
        eth(ETH_P_IP, &frames::ipv4(SRC4, DST4, 17, &[], 3, &[0u8; 24])),
        NonTcp,
        0,
    );
    skip(
        "GRE later fragment",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::ipv4(
                frames::OUTER_SRC4,
                frames::OUTER_DST4,
                47,
                &[],
                10,
                &[0u8; 40],
            ),
        ),
        FragmentsSkipped,
        0,
    );
    skip(
        "GRE version 1 (PPTP) is not opened",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(47, &[0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 0]),
        ),
        NonTcp,
        0,
    );
    skip(
        "GRE with routing is not opened",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(47, &frames::gre(0x40, ETH_P_IP, &[0u8; 24])),
        ),
        NonTcp,
        0,
    );
    skip(
        "GRE keepalive (an unknown protocol)",
        Ethernet,
        eth(ETH_P_IP, &frames::outer4(47, &frames::gre(0, 0x0000, &[]))),
        NonTcp,
        0,
    );
    skip(
        "an ARP frame inside GRE bridging",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(47, &frames::gre(0, ETH_P_TEB, &frames::arp())),
        ),
        NonIp,
        fact::GRE,
    );
    skip(
        "VXLAN without its I flag",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(UDP_PORT_VXLAN, &frames::vxlan(0, &frames::tcp4(&syn(111)))),
            ),
        ),
        NonTcp,
        fact::VXLAN,
    );
    skip(
        "UDP to another port (VXLAN-GPE, 4790)",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(17, &frames::udp(4790, &frames::vxlan(0x08, &[0u8; 20]))),
        ),
        NonTcp,
        0,
    );
    skip(
        "GTP-U echo request",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(UDP_PORT_GTPU, &frames::gtpu(0x32, 1, 0, &[], &[])),
            ),
        ),
        NonTcp,
        fact::GTPU,
    );
    skip(
        "GTP-U extension headers past the bound",
        Ethernet,
        eth(
            ETH_P_IP,
            &frames::outer4(
                17,
                &frames::udp(
                    UDP_PORT_GTPU,
                    &frames::gtpu(
                        0x34,
                        0xFF,
                        0x85,
                        &[(0x85, [0, 0]), (0x85, [0, 0]), (0, [0, 0])],
                        &frames::inner4(&syn(112)),
                    ),
                ),
            ),
        ),
        TooDeep,
        fact::GTPU,
    );
    skip(
        "MPLS labels past the bound",
        Ethernet,
        eth(
            ETH_P_MPLS_UC,
            &frames::mpls(5, true, &frames::inner4(&syn(113))),
        ),
        TooDeep,
        fact::MPLS,
    );
    skip(
        "MPLS payload neither IP nor a pseudowire",
        Ethernet,
        eth(ETH_P_MPLS_UC, &frames::mpls(1, true, &[0x20; 40])),
        NonIp,
        fact::MPLS,
    );
    skip(
        "PPPoE session carrying LCP",
        Ethernet,
        eth(ETH_P_PPP_SES, &frames::pppoe(&[0xC0, 0x21], &[1, 1, 0, 4])),
        NonIp,
        fact::PPPOE,
    );
    skip(
        "PPPoE discovery",
        Ethernet,
        eth(0x8863, &[0x11, 0x09, 0, 0, 0, 0]),
        NonIp,
        0,
    );
    {
        // One encapsulation past MAX_ENCAPS: IP in IP around the three-deep row.
        let t = syn(114);
        let vx = frames::outer4(
            17,
            &frames::udp(
                UDP_PORT_VXLAN,
                &frames::vxlan(0x08, &eth(ETH_P_IP, &frames::inner4(&t))),
            ),
        );
        let gre = frames::outer4(47, &frames::gre(0, ETH_P_TEB, &eth(ETH_P_IP, &vx)));
        skip(
            "four deep: past MAX_ENCAPS",
            Ethernet,
            eth(
                ETH_P_MPLS_UC,
                &frames::mpls(1, true, &frames::outer4(4, &gre)),
            ),
            TooDeep,
            fact::MPLS | fact::IP_IN_IP | fact::GRE,
        );
    }
    skip(
        "PPP LCP",
        Ppp,
        vec![0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4],
        NonIp,
        0,
    );
    skip(
        "Cisco HDLC SLARP",
        CiscoHdlc,
        vec![0x8F, 0x00, 0x80, 0x35, 0, 0, 0, 1],
        NonIp,
        0,
    );
    skip(
        "NFLOG without a payload",
        Nflog,
        frames::nflog(2, false, &[]),
        NonIp,
        0,
    );
    skip(
        "IP over InfiniBand ARP",
        IpOverIb,
        frames::ipoib(0x0806, &[0u8; 28]),
        NonIp,
        0,
    );
    skip(
        "802.11 protected data",
        Ieee80211,
        frames::wlan(0x08, 0x41, ETH_P_IP, &frames::inner4(&syn(115))),
        NonIp,
        0,
    );
    skip(
        "802.11 beacon",
        Ieee80211,
        vec![0x80, 0, 0, 0].into_iter().chain([0u8; 32]).collect(),
        NonIp,
        0,
    );
    skip(
        "802.11 null data",
        Ieee80211,
        frames::wlan(0x48, 0x01, ETH_P_IP, &[]),
        NonIp,
        0,
    );
    skip(
        "radiotap version 1",
        Radiotap,
        [
            &[1u8, 0, 8, 0, 0, 0, 0, 0][..],
            &frames::wlan(0x08, 1, ETH_P_IP, &[]),
        ]
        .concat(),
        Malformed,
        0,
    );
    v
}
