//! The one frame builder of every test crate: each layer is a plain function
//! over bytes (so a test can patch any field afterwards) — Ethernet, VLAN
//! tags, IPv4 (with options), IPv6 (with extension headers), TCP, the
//! encapsulations and the other link types the parser reads — and the one
//! internet checksum. Addresses are documentation ranges (RFC 5737 / RFC 3849).

use std::net::IpAddr;

use slowscan_common::tcp;

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86DD;
pub const ETH_ARP: u16 = 0x0806;
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88A8;

pub const SRC4: [u8; 4] = [198, 51, 100, 10];
pub const DST4: [u8; 4] = [203, 0, 113, 20];
pub const SRC6: [u8; 16] = doc6(0, 0x10);
pub const DST6: [u8; 16] = doc6(1, 0x20);

/// 2001:db8:`subnet`::`host` (RFC 3849).
pub const fn doc6(subnet: u16, host: u8) -> [u8; 16] {
    let s = subnet.to_be_bytes();
    [
        0x20, 0x01, 0x0d, 0xb8, s[0], s[1], 0, 0, 0, 0, 0, 0, 0, 0, 0, host,
    ]
}

/// What goes into a test TCP segment.
#[derive(Clone, Debug)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Acknowledgement number (7 unless a test needs it: R5 reads only the
    /// sequence number).
    pub ack: u32,
    pub flags: u8,
    /// Data offset in 32-bit words (5 = no options).
    pub doff: u8,
    pub payload: usize,
}

impl Tcp {
    pub fn new(flags: u8, seq: u32) -> Self {
        Self {
            src_port: 40_000,
            dst_port: 80,
            seq,
            ack: 7,
            flags,
            doff: 5,
            payload: 0,
        }
    }

    pub fn syn(seq: u32) -> Self {
        Self::new(tcp::SYN, seq)
    }

    /// The same segment between other ports.
    pub fn ports(self, src_port: u16, dst_port: u16) -> Self {
        Self {
            src_port,
            dst_port,
            ..self
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let hdr = (self.doff.max(5) as usize) * 4;
        let mut b = vec![0u8; hdr + self.payload];
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..8].copy_from_slice(&self.seq.to_be_bytes());
        b[8..12].copy_from_slice(&self.ack.to_be_bytes());
        b[12] = self.doff << 4;
        b[13] = self.flags;
        b[14..16].copy_from_slice(&64_240u16.to_be_bytes());
        for (i, x) in b[20..hdr].iter_mut().enumerate() {
            *x = if i + 20 == hdr - 1 { 0 } else { 1 }; // NOP options, EOL last
        }
        b
    }
}

/// The source MAC of every frame built here (R9: records carry it).
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// An Ethernet frame with optional VLAN tags around `ethertype` + `payload`.
pub fn ethernet(vlans: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(&SRC_MAC);
    for (i, vid) in vlans.iter().enumerate() {
        // Outer tag 802.1ad when there are two, as on a QinQ trunk.
        let tpid: u16 = if vlans.len() == 2 && i == 0 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Ethernet with one tag per TPID in `tpids` (VLAN ids 100, 101, …).
pub fn ethernet_tpids(tpids: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let tags: Vec<(u16, u16)> = tpids
        .iter()
        .enumerate()
        .map(|(i, &tpid)| (tpid, 100 + i as u16))
        .collect();
    ethernet_tags(&tags, ethertype, payload)
}

/// An IPv4 packet; `options` must be a multiple of 4 bytes.
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    options: &[u8],
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 20 + options.len();
    let mut p = vec![0u8; ihl];
    p[0] = 0x40 | (ihl / 4) as u8;
    p[2..4].copy_from_slice(&((ihl + payload.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..].copy_from_slice(options);
    p.extend_from_slice(payload);
    p
}

/// The internet checksum (RFC 1071) of `bytes`: the one's complement of
/// the one's-complement sum of its 16-bit words, an odd last byte padded.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fills in the header checksum of the IPv4 packet `ip` (header of IHL words).
pub fn set_ipv4_checksum(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ip[10..12].fill(0);
    let sum = checksum(&ip[..ihl]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// `ihl` words of IPv4 header as `ipv4`'s options: NOPs past the first five.
pub fn ipv4_nops(ihl: u8) -> Vec<u8> {
    vec![1; usize::from(ihl.max(5) - 5) * 4]
}

/// An IPv6 extension header as (next-header code, bytes).
pub type ExtHeader = (u8, Vec<u8>);

/// An options-shaped extension header (hop-by-hop 0, routing 43,
/// destination options 60, or any code) of `words` × 8 zero bytes.
pub fn ext(code: u8, words: u8) -> ExtHeader {
    (code, vec![0; usize::from(words) * 8])
}

pub fn hop_by_hop() -> ExtHeader {
    (0, vec![0, 0, 1, 4, 0, 0, 0, 0]) // PadN
}
pub fn routing() -> ExtHeader {
    (43, vec![0, 0, 0, 0, 0, 0, 0, 0])
}
pub fn dest_opts() -> ExtHeader {
    (60, vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) // 16 bytes
}
pub fn fragment(offset: u16, more: bool) -> ExtHeader {
    let v = (offset << 3) | u16::from(more);
    let mut h = vec![0, 0];
    h.extend_from_slice(&v.to_be_bytes());
    h.extend_from_slice(&0xabcdu32.to_be_bytes());
    (44, h)
}

/// An IPv6 packet with extension headers chained in order before `proto`.
pub fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    exts: &[ExtHeader],
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let mut h = bytes.clone();
        h[0] = exts.get(i + 1).map_or(proto, |e| e.0);
        if h.len() >= 2 && exts[i].0 != 44 {
            h[1] = (h.len() / 8 - 1) as u8;
        }
        chain.extend_from_slice(&h);
    }
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((chain.len() + payload.len()) as u16).to_be_bytes());
    p[6] = exts.first().map_or(proto, |e| e.0);
    p[7] = 64;
    p[8..24].copy_from_slice(&src);
    p[24..40].copy_from_slice(&dst);
    p.extend_from_slice(&chain);
    p.extend_from_slice(payload);
    p
}

/// A frame as a sensor sees it on the wire between two hosts: Ethernet,
/// IPv4 (don't-fragment, header checksum filled in) or IPv6, then `t`.
pub fn tcp_frame(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, t: &Tcp) -> Vec<u8> {
    match (src.into(), dst.into()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = ipv4(s.octets(), d.octets(), 6, &[], 0x4000, &t.bytes());
            set_ipv4_checksum(&mut ip);
            ethernet(&[], ETH_IPV4, &ip)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => ethernet(
            &[],
            ETH_IPV6,
            &ipv6(s.octets(), d.octets(), &[], 6, &t.bytes()),
        ),
        (src, dst) => panic!("mixed address families: {src} → {dst}"),
    }
}

/// The frames of a completed handshake as the client sends them (R5): the
/// SYN, then the ACK of sequence S + 1.
pub fn handshake(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    sport: u16,
    dport: u16,
    isn: u32,
) -> [Vec<u8>; 2] {
    let (src, dst) = (src.into(), dst.into());
    [
        tcp_frame(src, dst, &Tcp::syn(isn).ports(sport, dport)),
        tcp_frame(
            src,
            dst,
            &Tcp::new(tcp::ACK, isn.wrapping_add(1)).ports(sport, dport),
        ),
    ]
}

pub fn tcp4(t: &Tcp) -> Vec<u8> {
    ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 6, &[], 0, &t.bytes()))
}

pub fn tcp6(t: &Tcp) -> Vec<u8> {
    ethernet(&[], ETH_IPV6, &ipv6(SRC6, DST6, &[], 6, &t.bytes()))
}

pub fn arp() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    a.extend_from_slice(&SRC4);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&DST4);
    ethernet(&[], ETH_ARP, &a)
}

pub fn udp4() -> Vec<u8> {
    let mut u = vec![0u8; 8 + 12];
    u[0..2].copy_from_slice(&5353u16.to_be_bytes());
    u[2..4].copy_from_slice(&53u16.to_be_bytes());
    u[4..6].copy_from_slice(&20u16.to_be_bytes());
    ethernet(&[], ETH_IPV4, &ipv4(SRC4, DST4, 17, &[], 0, &u))
}

// ---------------------------------------------------------------------------
// Encapsulations and other link types (the parse case table, `cases`)

/// Outer (tunnel endpoint) addresses: never the inner ones, so a record
/// shows which header it came from.
pub const OUTER_SRC4: [u8; 4] = [192, 0, 2, 1];
pub const OUTER_DST4: [u8; 4] = [192, 0, 2, 2];
pub const OUTER_SRC6: [u8; 16] = doc6(0xffff, 1);
pub const OUTER_DST6: [u8; 16] = doc6(0xffff, 2);

/// Ethernet with explicit (TPID, VLAN id) tags.
pub fn ethernet_tags(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The plain inner IPv4 SYN (or any segment) of the documentation hosts.
pub fn inner4(t: &Tcp) -> Vec<u8> {
    ipv4(SRC4, DST4, 6, &[], 0, &t.bytes())
}

pub fn inner6(t: &Tcp) -> Vec<u8> {
    ipv6(SRC6, DST6, &[], 6, &t.bytes())
}

/// An outer IPv4 header between the tunnel endpoints.
pub fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4(OUTER_SRC4, OUTER_DST4, proto, &[], 0, payload)
}

pub fn outer6(proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv6(OUTER_SRC6, OUTER_DST6, &[], proto, payload)
}

/// GRE version 0: the flags byte (checksum 0x80, key 0x20, sequence 0x10),
/// one word per optional field present, in that order.
pub fn gre(flags: u8, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut g = vec![flags, 0];
    g.extend_from_slice(&proto.to_be_bytes());
    for bit in [0x80u8, 0x20, 0x10] {
        if flags & bit != 0 {
            g.extend_from_slice(&[0, 0, 0, bit]);
        }
    }
    g.extend_from_slice(payload);
    g
}

/// ERSPAN type II header (version 1, VLAN 0, session 7), then the frame.
pub fn erspan2(frame: &[u8]) -> Vec<u8> {
    let mut e = vec![0x10, 0, 0, 7, 0, 0, 0, 0];
    e.extend_from_slice(frame);
    e
}

/// ERSPAN type III header (version 2), with the 8-byte platform subheader
/// when `o`, then the frame.
pub fn erspan3(o: bool, frame: &[u8]) -> Vec<u8> {
    let mut e = vec![0x20, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, u8::from(o)];
    if o {
        e.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0]);
    }
    e.extend_from_slice(frame);
    e
}

pub fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&50_000u16.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// VXLAN with the given flags byte (0x08: a valid VNI), VNI 1.
pub fn vxlan(flags: u8, frame: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, 0, 0, 0, 0, 0, 1, 0];
    v.extend_from_slice(frame);
    v
}

/// Geneve with `opt_words` 4-byte option words.
pub fn geneve(opt_words: u8, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut g = vec![opt_words & 0x3f, 0];
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(&[0, 0, 1, 0]);
    for i in 0..opt_words {
        g.extend_from_slice(&[0x01, 0x02, 0x03, i]);
    }
    g.extend_from_slice(payload);
    g
}

/// GTP-U: `flags` (0x30 | E 0x04 | S 0x02 | PN 0x01), message type, then
/// the optional word when any of E/S/PN is set (its last byte the first
/// extension type, `exts[0]`'s), then extension headers each given as
/// (type of the next one, body of 2 bytes).
pub fn gtpu(flags: u8, msg: u8, first_ext: u8, exts: &[(u8, [u8; 2])], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if flags & 0x07 != 0 {
        body.extend_from_slice(&[0, 1, 0, first_ext]);
    }
    for (next, b) in exts {
        body.extend_from_slice(&[1, b[0], b[1], *next]);
    }
    body.extend_from_slice(payload);
    let mut g = vec![flags, msg];
    g.extend_from_slice(&(body.len() as u16).to_be_bytes());
    g.extend_from_slice(&[0, 0, 0x10, 0x01]);
    g.extend_from_slice(&body);
    g
}

/// `labels` MPLS label stack entries; the last has bottom-of-stack when `bos`.
pub fn mpls(labels: usize, bos: bool, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for i in 0..labels {
        let last = u8::from(bos && i + 1 == labels);
        m.extend_from_slice(&[0, 0x10 + i as u8, 0x30 | last, 64]);
    }
    m.extend_from_slice(payload);
    m
}

/// A PPPoE session header (code 0) and a PPP protocol field (1 or 2 bytes).
pub fn pppoe(ppp_proto: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0, 0, 0x2d];
    p.extend_from_slice(&((ppp_proto.len() + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(ppp_proto);
    p.extend_from_slice(payload);
    p
}

/// 802.1ah: the I-TAG, then the customer's whole Ethernet frame.
pub fn pbb(customer_frame: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0, 0x12, 0x34];
    p.extend_from_slice(customer_frame);
    p
}

/// BSD loopback (DLT_NULL): the 4-byte address family, then the packet.
pub fn null(family: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut f = family.to_vec();
    f.extend_from_slice(payload);
    f
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

/// NFLOG: header, packet-header TLV, a 5-byte prefix TLV (padded), the
/// payload TLV; TLV lengths and types little- or big-endian.
pub fn nflog(family: u8, big_endian: bool, payload: &[u8]) -> Vec<u8> {
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut f = vec![family, 0, 0, 0x2a];
    f.extend_from_slice(&u16b(8));
    f.extend_from_slice(&u16b(1));
    f.extend_from_slice(&[0x08, 0, 3, 0]);
    f.extend_from_slice(&u16b(9));
    f.extend_from_slice(&u16b(10));
    f.extend_from_slice(&[b'd', b'r', b'o', b'p', 0, 0, 0, 0]);
    if !payload.is_empty() {
        f.extend_from_slice(&u16b((payload.len() + 4) as u16));
        f.extend_from_slice(&u16b(9));
        f.extend_from_slice(payload);
    }
    f
}

/// IP over InfiniBand: 40-byte pseudo-header, EtherType, reserved.
pub fn ipoib(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 40];
    f[20..24].copy_from_slice(&[0x80, 0, 0x05, 0x50]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An 802.11 frame: frame control (`fc0`, `fc1`), duration, three
/// addresses, sequence control, a fourth address when to and from the DS,
/// QoS control when the subtype says so, then LLC/SNAP and the EtherType.
pub fn wlan(fc0: u8, fc1: u8, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![fc0, fc1, 0, 0];
    for a in 1..=3u8 {
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, a]);
    }
    f.extend_from_slice(&[0x10, 0]);
    if fc1 & 0x03 == 0x03 {
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 4]);
    }
    if fc0 & 0x80 != 0 {
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(&[0xAA, 0xAA, 0x03, 0, 0, 0]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Radiotap (version 0) with TSFT and flags present; `flags` 0x20 says the
/// 802.11 header is padded to 4 bytes (the caller pads it).
pub fn radiotap(flags: u8, frame: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 24, 0, 0x03, 0, 0, 0];
    f.extend_from_slice(&[0u8; 8]); // TSFT, 8-aligned at 8
    f.extend_from_slice(&[flags, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(frame);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_header() {
        // RFC 1071's example words, and an IPv4 header whose sum is b861.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        let mut ip = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        set_ipv4_checksum(&mut ip);
        assert_eq!(ip[10..12], [0xb8, 0x61]);
        assert_eq!(checksum(&ip), 0, "a header with its checksum sums to zero");
    }

    #[test]
    fn layers_nest() {
        let f = tcp4(&Tcp::syn(9));
        assert_eq!(f.len(), 14 + 20 + 20);
        assert_eq!(f[12..14], ETH_IPV4.to_be_bytes());
        assert_eq!(f[14 + 20 + 13], tcp::SYN);
        let f = ethernet_tpids(&[TPID_8021AD, TPID_8021Q], ETH_IPV6, &[]);
        assert_eq!(f[12..20], [0x88, 0xa8, 0, 100, 0x81, 0x00, 0, 101]);
        assert_eq!(
            OUTER_SRC6,
            [
                0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
            ]
        );
        let v6 = ipv6(SRC6, DST6, &[ext(0, 1), fragment(0, true)], 6, &[]);
        assert_eq!((v6[6], v6[40], v6[41], v6[48]), (0, 44, 0, 6));
    }
}
