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
