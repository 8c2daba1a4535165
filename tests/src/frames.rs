//! Hand-built test frames: Ethernet, VLAN tags, IPv4 (with options), IPv6
//! (with extension headers), TCP, and a few non-TCP frames.
//! Addresses are documentation ranges (RFC 5737 / RFC 3849).

use slowscan_common::tcp;

pub const SRC4: [u8; 4] = [198, 51, 100, 10];
pub const DST4: [u8; 4] = [203, 0, 113, 20];
pub const SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
pub const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20,
];

/// What goes into a test TCP segment.
#[derive(Clone, Debug)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
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
            flags,
            doff: 5,
            payload: 0,
        }
    }

    pub fn syn(seq: u32) -> Self {
        Self::new(tcp::SYN, seq)
    }

    pub fn bytes(&self) -> Vec<u8> {
        let hdr = (self.doff.max(5) as usize) * 4;
        let mut b = vec![0u8; hdr + self.payload];
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..8].copy_from_slice(&self.seq.to_be_bytes());
        b[8..12].copy_from_slice(&7u32.to_be_bytes()); // ack number, unused by R5
        b[12] = self.doff << 4;
        b[13] = self.flags;
        b[14..16].copy_from_slice(&64_240u16.to_be_bytes());
        for (i, x) in b[20..hdr].iter_mut().enumerate() {
            *x = if i + 20 == hdr - 1 { 0 } else { 1 }; // NOP options, EOL last
        }
        b
    }
}

/// An Ethernet frame with optional VLAN tags around `ethertype` + `payload`.
pub fn ethernet(vlans: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
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

/// An IPv6 extension header as (next-header code, bytes).
pub type ExtHeader = (u8, Vec<u8>);

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

pub fn tcp4(t: &Tcp) -> Vec<u8> {
    ethernet(&[], 0x0800, &ipv4(SRC4, DST4, 6, &[], 0, &t.bytes()))
}

pub fn tcp6(t: &Tcp) -> Vec<u8> {
    ethernet(&[], 0x86dd, &ipv6(SRC6, DST6, &[], 6, &t.bytes()))
}

pub fn arp() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    a.extend_from_slice(&SRC4);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&DST4);
    ethernet(&[], 0x0806, &a)
}

pub fn udp4() -> Vec<u8> {
    let mut u = vec![0u8; 8 + 12];
    u[0..2].copy_from_slice(&5353u16.to_be_bytes());
    u[2..4].copy_from_slice(&53u16.to_be_bytes());
    u[4..6].copy_from_slice(&20u16.to_be_bytes());
    ethernet(&[], 0x0800, &ipv4(SRC4, DST4, 17, &[], 0, &u))
}

// ---------------------------------------------------------------------------
// Encapsulations and other link types (the parse case table, `cases`)

/// Outer (tunnel endpoint) addresses: never the inner ones, so a record
/// shows which header it came from.
pub const OUTER_SRC4: [u8; 4] = [192, 0, 2, 1];
pub const OUTER_DST4: [u8; 4] = [192, 0, 2, 2];
pub const OUTER_SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
];
pub const OUTER_DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];

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
