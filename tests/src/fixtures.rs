//! The fixture table (Katran's BpfTester style): frames with the verdict,
//! record and counter deltas the XDP program must give, in both pre-filter
//! modes. It drives the BPF_PROG_TEST_RUN tests and the per-packet benchmark.

use slowscan::{ignore::Prefix, whitelist::WhitelistRule};
use slowscan_common::{AF_INET, AF_INET6, Counter, PacketRecord, STATUS_FOLLOW_UP, tcp};

use crate::frames::{self, DST4, DST6, SRC4, SRC6, Tcp};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;

/// One frame and what must come of it.
pub struct Step {
    pub frame: Vec<u8>,
    /// The record that must leave the kernel (its `ts_ns` is checked apart).
    pub record: Option<PacketRecord>,
    /// Counters that must move by one; every other counter but `frames` must not.
    pub counters: Vec<Counter>,
}

pub struct Fixture {
    pub name: &'static str,
    /// Whitelist entries and rules installed before the steps run.
    pub whitelist: Vec<WhitelistRule>,
    /// Ignored source prefixes (R4.6) installed before the steps run.
    pub ignore: Vec<Prefix>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Prefilter,
    All,
}

pub fn rec4(t: &Tcp, vlan_tags: u8, status: u8) -> PacketRecord {
    rec(AF_INET, pad4(SRC4), pad4(DST4), t, vlan_tags, status)
}

pub fn rec6(t: &Tcp, status: u8) -> PacketRecord {
    rec(AF_INET6, SRC6, DST6, t, 0, status)
}

pub fn pad4(a: [u8; 4]) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&a);
    v
}

fn rec(
    family: u8,
    src: [u8; 16],
    dst: [u8; 16],
    t: &Tcp,
    vlan_tags: u8,
    status: u8,
) -> PacketRecord {
    PacketRecord {
        ts_ns: 0,
        src_addr: src,
        dst_addr: dst,
        seq: t.seq,
        src_port: t.src_port,
        dst_port: t.dst_port,
        family,
        tcp_flags: t.flags,
        status,
        vlan_tags,
        // R9: attempts carry the frame's source MAC.
        src_mac: if tcp::is_attempt(t.flags) {
            frames::SRC_MAC
        } else {
            [0; 6]
        },
        _pad: [0; 6],
    }
}

pub fn port(mut t: Tcp, p: u16) -> Tcp {
    t.src_port = p;
    t
}

/// An attempt step on a 5-tuple not pending yet: emitted in both modes; the
/// pre-filter also inserts it into its pending table.
fn attempt(mode: Mode, frame: Vec<u8>, r: PacketRecord, extra: &[Counter]) -> Step {
    let mut s = retransmission(frame, r, extra);
    if mode == Mode::Prefilter {
        s.counters.push(Counter::PendingInserted);
    }
    s
}

/// An attempt on a 5-tuple already pending (same or new S): emitted, the
/// pending entry updated in place.
fn retransmission(frame: Vec<u8>, r: PacketRecord, extra: &[Counter]) -> Step {
    let mut counters = vec![Counter::AttemptsEmitted];
    counters.extend_from_slice(extra);
    Step {
        frame,
        record: Some(r),
        counters,
    }
}

/// A non-attempt TCP segment: with the pre-filter it leaves the kernel only
/// as the first candidate follow-up of a pending attempt (`follow_up`).
fn segment(
    mode: Mode,
    frame: Vec<u8>,
    r: PacketRecord,
    follow_up: bool,
    extra: &[Counter],
) -> Step {
    let mut counters = extra.to_vec();
    let record = match (mode, follow_up) {
        (Mode::All, _) => {
            counters.push(Counter::OtherEmitted);
            Some(r)
        }
        (Mode::Prefilter, true) => {
            counters.push(Counter::FollowUpsEmitted);
            counters.push(Counter::PendingResolved);
            Some(PacketRecord {
                status: STATUS_FOLLOW_UP,
                ..r
            })
        }
        (Mode::Prefilter, false) => None,
    };
    Step {
        frame,
        record,
        counters,
    }
}

fn skipped(frame: Vec<u8>, counters: &[Counter]) -> Step {
    Step {
        frame,
        record: None,
        counters: counters.to_vec(),
    }
}

/// R5 follow-up fixtures: SYN then `flags` with `seq` on the same 5-tuple.
fn handshake(
    mode: Mode,
    name: &'static str,
    p: u16,
    syn_seq: u32,
    flags: u8,
    seq: u32,
    ok: bool,
) -> Fixture {
    let syn = port(Tcp::syn(syn_seq), p);
    let next = port(Tcp::new(flags, seq), p);
    Fixture {
        name,
        whitelist: vec![],
        ignore: vec![],
        steps: vec![
            attempt(mode, frames::tcp4(&syn), rec4(&syn, 0, 0), &[]),
            segment(mode, frames::tcp4(&next), rec4(&next, 0, 0), ok, &[]),
            // The pending entry is gone once matched: a repeat is bulk data.
            segment(mode, frames::tcp4(&next), rec4(&next, 0, 0), false, &[]),
        ],
    }
}

pub fn fixtures(mode: Mode) -> Vec<Fixture> {
    use Counter::*;
    let syn = |p| port(Tcp::syn(1000), p);
    let mut v = vec![
        Fixture {
            name: "SYN over IPv4 (R1)",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![attempt(
                mode,
                frames::tcp4(&syn(1)),
                rec4(&syn(1), 0, 0),
                &[],
            )],
        },
        Fixture {
            name: "SYN over IPv6 (R1)",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![attempt(
                mode,
                frames::tcp6(&syn(2)),
                rec6(&syn(2), 0),
                &[Ipv6],
            )],
        },
        {
            let t = port(Tcp::new(tcp::SYN | tcp::ECE | tcp::CWR, 5), 3);
            Fixture {
                name: "ECN-setup SYN counts (R1)",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(mode, frames::tcp4(&t), rec4(&t, 0, 0), &[])],
            }
        },
        {
            let t = port(Tcp::new(tcp::SYN | tcp::ACK, 5), 4);
            Fixture {
                name: "SYN-ACK is no attempt (R1)",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![segment(mode, frames::tcp4(&t), rec4(&t, 0, 0), false, &[])],
            }
        },
        {
            let t = port(Tcp::new(tcp::RST, 5), 5);
            Fixture {
                name: "RST",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![segment(mode, frames::tcp4(&t), rec4(&t, 0, 0), false, &[])],
            }
        },
        handshake(
            mode,
            "ACK with seq+1 is the follow-up (R5)",
            6,
            100,
            tcp::ACK,
            101,
            true,
        ),
        handshake(
            mode,
            "ACK with a wrong seq is not (R5)",
            7,
            100,
            tcp::ACK,
            100,
            false,
        ),
        handshake(
            mode,
            "PSH-ACK follow-up (R5)",
            8,
            100,
            tcp::PSH | tcp::ACK,
            101,
            true,
        ),
        handshake(mode, "FIN follow-up (R5)", 9, 100, tcp::FIN, 101, true),
        handshake(
            mode,
            "FIN-ACK follow-up (R5)",
            10,
            100,
            tcp::FIN | tcp::ACK,
            101,
            true,
        ),
        handshake(
            mode,
            "RST-ACK never establishes (R5)",
            11,
            100,
            tcp::RST | tcp::ACK,
            101,
            false,
        ),
        handshake(
            mode,
            "sequence wraps at 2^32 (R5)",
            12,
            u32::MAX,
            tcp::ACK,
            0,
            true,
        ),
        {
            let s = port(Tcp::syn(1), 13);
            let a = port(Tcp::new(tcp::ACK, 2), 13);
            let mut wl_ack = vec![];
            // Without the pre-filter every segment is checked against the whitelist.
            if mode == Mode::All {
                wl_ack.push(Whitelisted);
            }
            Fixture {
                name: "whitelisted destination stays in the kernel (R4.4)",
                whitelist: vec![rule("203.0.113.20:80")],
                ignore: vec![],
                steps: vec![
                    skipped(frames::tcp4(&s), &[Whitelisted]),
                    skipped(frames::tcp4(&a), &wl_ack),
                ],
            }
        },
        {
            let t = syn(14);
            Fixture {
                name: "one VLAN tag",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(
                    mode,
                    frames::ethernet(
                        &[10],
                        0x0800,
                        &frames::ipv4(SRC4, DST4, 6, &[], 0, &t.bytes()),
                    ),
                    rec4(&t, 1, 0),
                    &[VlanTagged],
                )],
            }
        },
        {
            let t = syn(15);
            Fixture {
                name: "two VLAN tags (802.1ad + 802.1Q)",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(
                    mode,
                    frames::ethernet(
                        &[10, 20],
                        0x0800,
                        &frames::ipv4(SRC4, DST4, 6, &[], 0, &t.bytes()),
                    ),
                    rec4(&t, 2, 0),
                    &[VlanTagged],
                )],
            }
        },
        {
            let t = syn(16);
            Fixture {
                name: "three VLAN tags",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(
                    mode,
                    frames::ethernet(
                        &[10, 20, 30],
                        0x0800,
                        &frames::ipv4(SRC4, DST4, 6, &[], 0, &t.bytes()),
                    ),
                    rec4(&t, 3, 0),
                    &[VlanTagged],
                )],
            }
        },
        Fixture {
            name: "VLAN tags past the bound are too deep",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![skipped(
                frames::ethernet(
                    &[10, 20, 30, 40, 50],
                    0x0800,
                    &frames::ipv4(SRC4, DST4, 6, &[], 0, &syn(16).bytes()),
                ),
                &[VlanTagged, TooDeep],
            )],
        },
        {
            let t = syn(17);
            let opts = [0x94, 0x04, 0, 0, 1, 1, 1, 0]; // router alert, NOP, NOP, NOP, EOL
            Fixture {
                name: "IPv4 with options (IHL 7)",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(
                    mode,
                    frames::ethernet(
                        &[],
                        0x0800,
                        &frames::ipv4(SRC4, DST4, 6, &opts, 0, &t.bytes()),
                    ),
                    rec4(&t, 0, 0),
                    &[],
                )],
            }
        },
        {
            let mut t = syn(18);
            t.doff = 10; // 20 bytes of TCP options, as real SYNs carry
            Fixture {
                name: "TCP with options",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(mode, frames::tcp4(&t), rec4(&t, 0, 0), &[])],
            }
        },
        {
            let t = syn(19);
            let exts = [
                frames::hop_by_hop(),
                frames::routing(),
                frames::dest_opts(),
                frames::fragment(0, true),
            ];
            Fixture {
                name: "IPv6 with hop-by-hop, routing, destination options, first fragment",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(
                    mode,
                    frames::ethernet(&[], 0x86dd, &frames::ipv6(SRC6, DST6, &exts, 6, &t.bytes())),
                    rec6(&t, 0),
                    &[Ipv6, FirstFragments],
                )],
            }
        },
        Fixture {
            name: "IPv6 with too many extension headers",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![skipped(
                frames::ethernet(
                    &[],
                    0x86dd,
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
                        &syn(20).bytes(),
                    ),
                ),
                &[Ipv6, TooDeep],
            )],
        },
        Fixture {
            name: "IPv4 non-first fragment is skipped",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![skipped(
                frames::ethernet(
                    &[],
                    0x0800,
                    &frames::ipv4(SRC4, DST4, 6, &[], 185, &syn(21).bytes()),
                ),
                &[FragmentsSkipped],
            )],
        },
        Fixture {
            name: "IPv6 non-first fragment is skipped",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![skipped(
                frames::ethernet(
                    &[],
                    0x86dd,
                    &frames::ipv6(
                        SRC6,
                        DST6,
                        &[frames::fragment(185, false)],
                        6,
                        &syn(22).bytes(),
                    ),
                ),
                &[Ipv6, FragmentsSkipped],
            )],
        },
        {
            let mut f = frames::tcp4(&syn(23));
            f[14] = 0x44; // IHL 4
            Fixture {
                name: "IPv4 IHL < 5 is malformed",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![skipped(f, &[Malformed])],
            }
        },
        {
            let mut t = syn(24);
            t.doff = 4;
            Fixture {
                name: "TCP data offset < 5: read, an anomaly (R2.1)",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(
                    mode,
                    frames::tcp4(&t),
                    rec4(&t, 0, 0),
                    &[HeaderAnomalies],
                )],
            }
        },
        {
            let t = syn(25);
            let mut f = frames::tcp4(&t);
            f[16..18].copy_from_slice(&1500u16.to_be_bytes()); // total length beyond the frame
            Fixture {
                name: "IPv4 total length beyond the frame: read, an anomaly (R2.1)",
                whitelist: vec![],
                ignore: vec![],
                steps: vec![attempt(mode, f, rec4(&t, 0, 0), &[HeaderAnomalies])],
            }
        },
        Fixture {
            name: "ARP is not IP",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![skipped(frames::arp(), &[NonIp])],
        },
        Fixture {
            name: "UDP is not TCP",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![skipped(frames::udp4(), &[NonTcp])],
        },
    ];
    {
        // A retransmitted SYN is emitted again (the engine merges it, R5.1).
        let s = syn(26);
        v.push(Fixture {
            name: "retransmitted SYN is emitted again",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![
                attempt(mode, frames::tcp4(&s), rec4(&s, 0, 0), &[]),
                retransmission(frames::tcp4(&s), rec4(&s, 0, 0), &[]),
            ],
        });
    }
    {
        // Ethernet padding after the IP packet is not part of it.
        let t = syn(27);
        let mut f = frames::tcp4(&t);
        f.extend_from_slice(&[0u8; 6]);
        v.push(Fixture {
            name: "Ethernet padding is ignored",
            whitelist: vec![],
            ignore: vec![],
            steps: vec![attempt(mode, f, rec4(&t, 0, 0), &[])],
        });
    }
    v.extend(ignore_fixtures(mode));
    v.extend(rule_fixtures(mode));
    v.extend(tunnel_fixtures(mode));
    v
}

fn prefix(s: &str) -> Prefix {
    s.parse().expect("a valid prefix")
}

fn rule(s: &str) -> WhitelistRule {
    s.parse().expect("a valid whitelist rule")
}

/// R4.4 rules over many destinations (the kernel's LPM tries beside the
/// exact map): a prefix on one port, a prefix on a port range, every port
/// of a host. The destinations are DST4 (203.0.113.20) and DST6
/// (2001:db8:1::20); what varies is the destination port.
fn rule_fixtures(mode: Mode) -> Vec<Fixture> {
    use Counter::*;
    let syn = |sport, dport| {
        let mut t = port(Tcp::syn(3000), sport);
        t.dst_port = dport;
        t
    };
    let v4 = |t: &Tcp| attempt(mode, frames::tcp4(t), rec4(t, 0, 0), &[]);
    let v6 = |t: &Tcp| attempt(mode, frames::tcp6(t), rec6(t, 0), &[Ipv6]);
    vec![
        Fixture {
            name: "CIDR rule on one port (R4.4)",
            whitelist: vec![rule("203.0.113.0/24:443"), rule("203.0.113.128/25:22")],
            ignore: vec![],
            steps: vec![
                skipped(frames::tcp4(&syn(60, 443)), &[Whitelisted]),
                // 22 is whitelisted only on the other half of the /24.
                v4(&syn(61, 22)),
                v4(&syn(62, 444)),
                // The rule is IPv4's: the same port over IPv6 is counted.
                v6(&syn(63, 443)),
            ],
        },
        Fixture {
            name: "IPv6 prefix on a port range (R4.4)",
            whitelist: vec![rule("[2001:db8::/32]:1000-2000")],
            ignore: vec![],
            steps: vec![
                skipped(frames::tcp6(&syn(64, 1000)), &[Ipv6, Whitelisted]),
                skipped(frames::tcp6(&syn(65, 2000)), &[Ipv6, Whitelisted]),
                v6(&syn(66, 999)),
                v6(&syn(67, 2001)),
                v4(&syn(68, 1500)),
            ],
        },
        Fixture {
            name: "every port of a host (R4.4)",
            whitelist: vec![rule("203.0.113.20:*"), rule("[2001:db8:1::21]:*")],
            ignore: vec![],
            steps: vec![
                skipped(frames::tcp4(&syn(69, 1)), &[Whitelisted]),
                skipped(frames::tcp4(&syn(70, 65535)), &[Whitelisted]),
                // Not the host, its /128 neighbour.
                v6(&syn(71, 80)),
            ],
        },
        {
            let t = syn(72, 8080);
            let mut a = port(Tcp::new(tcp::ACK, 3001), 72);
            a.dst_port = 8080;
            // Without the pre-filter every segment is checked against the rules.
            let wl_ack = if mode == Mode::All {
                vec![Whitelisted]
            } else {
                vec![]
            };
            Fixture {
                name: "a rule covers every segment, not only attempts (R4.4)",
                whitelist: vec![rule("203.0.113.16/28:8000-8999")],
                ignore: vec![],
                steps: vec![
                    skipped(frames::tcp4(&t), &[Whitelisted]),
                    skipped(frames::tcp4(&a), &wl_ack),
                ],
            }
        },
    ]
}

/// R4.6: sources on the ignore list leave no record — neither attempt nor
/// follow-up — and take no pending entry; `ignored` counts each frame that
/// would have left a record. The source address is what matters.
fn ignore_fixtures(mode: Mode) -> Vec<Fixture> {
    use Counter::*;
    let syn = |p| port(Tcp::syn(2000), p);
    // With the pre-filter, the follow-up of an ignored attempt finds no
    // pending entry: bulk data, nothing counted.
    let ignored_follow_up = |p: u16, v6: bool| {
        let a = port(Tcp::new(tcp::ACK, 2001), p);
        let (frame, mut counters) = if v6 {
            (frames::tcp6(&a), vec![Ipv6])
        } else {
            (frames::tcp4(&a), vec![])
        };
        if mode == Mode::All {
            counters.push(Ignored);
        }
        skipped(frame, &counters)
    };
    vec![
        Fixture {
            name: "ignored IPv4 source: no record (R4.6)",
            whitelist: vec![],
            ignore: vec![prefix("198.51.100.0/24")],
            steps: vec![
                skipped(frames::tcp4(&syn(40)), &[Ignored]),
                ignored_follow_up(40, false),
            ],
        },
        Fixture {
            name: "ignored IPv6 source: no record (R4.6)",
            whitelist: vec![],
            ignore: vec![prefix("2001:db8::/64")],
            steps: vec![
                skipped(frames::tcp6(&syn(41)), &[Ipv6, Ignored]),
                ignored_follow_up(41, true),
            ],
        },
        {
            // The destination's prefix and the neighbouring half of the
            // source's /24 are ignored; the source is not.
            let t = syn(42);
            let a = port(Tcp::new(tcp::ACK, 2001), 42);
            Fixture {
                name: "source outside the ignored prefixes is counted (R4.6)",
                whitelist: vec![],
                ignore: vec![
                    prefix("203.0.113.0/24"),
                    prefix("198.51.100.128/25"),
                    prefix("198.51.100.11"),
                    prefix("2001:db8:1::/48"),
                ],
                steps: vec![
                    attempt(mode, frames::tcp4(&t), rec4(&t, 0, 0), &[]),
                    segment(mode, frames::tcp4(&a), rec4(&a, 0, 0), true, &[]),
                    attempt(mode, frames::tcp6(&t), rec6(&t, 0), &[Ipv6]),
                ],
            }
        },
        Fixture {
            name: "ignored /32 host (R4.6)",
            whitelist: vec![],
            ignore: vec![prefix("198.51.100.10/32")],
            steps: vec![skipped(frames::tcp4(&syn(43)), &[Ignored])],
        },
        Fixture {
            name: "ignored /128 host (R4.6)",
            whitelist: vec![],
            ignore: vec![prefix("2001:db8::10")],
            steps: vec![skipped(frames::tcp6(&syn(44)), &[Ipv6, Ignored])],
        },
        {
            // Only the IPv6 list has entries: IPv4 frames take the empty-list
            // path (no trie lookup), whatever the IPv6 entries cover.
            let t = syn(45);
            Fixture {
                name: "an IPv6-only ignore list leaves IPv4 alone (R4.6)",
                whitelist: vec![],
                ignore: vec![prefix("::/0")],
                steps: vec![
                    attempt(mode, frames::tcp4(&t), rec4(&t, 0, 0), &[]),
                    skipped(frames::tcp6(&t), &[Ipv6, Ignored]),
                ],
            }
        },
        {
            // A whitelisted destination is counted as whitelisted first.
            let t = syn(46);
            Fixture {
                name: "ignored source to a whitelisted destination (R4.4, R4.6)",
                whitelist: vec![rule("203.0.113.20:80")],
                ignore: vec![prefix("198.51.100.0/24")],
                steps: vec![skipped(frames::tcp4(&t), &[Whitelisted])],
            }
        },
    ]
}

/// R2.1 with R4.4 and R4.6: in a tunnelled frame (VXLAN, GRE) the inner
/// addresses are the ones the whitelist and the ignore list see; rules and
/// prefixes that cover only the outer (tunnel endpoint) addresses change
/// nothing.
fn tunnel_fixtures(mode: Mode) -> Vec<Fixture> {
    use Counter::*;
    use slowscan_common::wire::{ETH_P_IP, ETH_P_IPV6, UDP_PORT_VXLAN};
    let syn = |p| port(Tcp::syn(4000), p);
    // 192.0.2.1 → 192.0.2.2, UDP 4789, VXLAN, Ethernet, SRC4 → DST4.
    let vxlan4 = |t: &Tcp| {
        let inner = frames::ethernet(&[], ETH_P_IP, &frames::inner4(t));
        let udp = frames::udp(UDP_PORT_VXLAN, &frames::vxlan(0x08, &inner));
        frames::ethernet(&[], ETH_P_IP, &frames::outer4(17, &udp))
    };
    // 2001:db8:ffff::1 → 2001:db8:ffff::2, GRE, SRC6 → DST6.
    let gre6 = |t: &Tcp| {
        let gre = frames::gre(0, ETH_P_IPV6, &frames::inner6(t));
        frames::ethernet(&[], ETH_P_IPV6, &frames::outer6(47, &gre))
    };
    let (a, b, c, d) = (syn(90), syn(91), syn(92), syn(93));
    vec![
        Fixture {
            name: "the whitelist sees a tunnel's inner destination (R2.1, R4.4)",
            whitelist: vec![rule("203.0.113.20:80"), rule("[2001:db8:1::20]:80")],
            ignore: vec![],
            steps: vec![
                skipped(vxlan4(&a), &[DecapVxlan, Whitelisted]),
                skipped(gre6(&a), &[Ipv6, DecapGre, Whitelisted]),
            ],
        },
        Fixture {
            name: "a whitelist of the tunnel endpoints changes nothing (R2.1, R4.4)",
            whitelist: vec![
                rule("192.0.2.0/24:*"),
                rule("192.0.2.2:4789"),
                rule("[2001:db8:ffff::/48]:*"),
            ],
            ignore: vec![],
            steps: vec![
                attempt(mode, vxlan4(&b), rec4(&b, 0, 0), &[DecapVxlan]),
                attempt(mode, gre6(&b), rec6(&b, 0), &[Ipv6, DecapGre]),
            ],
        },
        Fixture {
            name: "the ignore list sees a tunnel's inner source (R2.1, R4.6)",
            whitelist: vec![],
            ignore: vec![prefix("198.51.100.0/24"), prefix("2001:db8::/64")],
            steps: vec![
                skipped(vxlan4(&c), &[DecapVxlan, Ignored]),
                skipped(gre6(&c), &[Ipv6, DecapGre, Ignored]),
            ],
        },
        Fixture {
            name: "ignoring the tunnel endpoints changes nothing (R2.1, R4.6)",
            whitelist: vec![],
            ignore: vec![prefix("192.0.2.0/24"), prefix("2001:db8:ffff::/48")],
            steps: vec![
                attempt(mode, vxlan4(&d), rec4(&d, 0, 0), &[DecapVxlan]),
                attempt(mode, gre6(&d), rec6(&d, 0), &[Ipv6, DecapGre]),
            ],
        },
    ]
}
