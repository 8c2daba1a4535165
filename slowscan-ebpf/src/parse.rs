//! Header cursor, following docs/parsing.md step by step and in the same
//! order as the userspace parser (`slowscan-user/src/frame.rs`): the same
//! reads at the same offsets, so a frame cut anywhere gives the same outcome
//! in both. Every read is bounds-checked against `data_end` right before it
//! (and against `MAX_HEADER_OFFSET`, which keeps every packet offset in a
//! range the verifier follows).
//!
//! The fast path — Ethernet, VLAN tags, IPv4 or IPv6, TCP — is straight-line
//! code. A frame whose headers announce an encapsulation (an EtherType for
//! MPLS, PPPoE or 802.1ah; IP protocol GRE or IP in IP; UDP to a tunnel's
//! port) continues in `decap`, a bounded loop over one header per step.

use aya_ebpf::programs::XdpContext;
use slowscan_common::{
    wire::{
        self, fact, ETH_P_8021AD, ETH_P_8021AH, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC,
        ETH_P_MPLS_UC, ETH_P_PPP_SES, ETH_P_QINQ_9100, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT,
        IPPROTO_GRE, IPPROTO_HOPOPTS, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_ROUTING, IPPROTO_TCP,
        IPPROTO_UDP, MAX_HEADER_OFFSET, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, UDP_PORT_GENEVE,
        UDP_PORT_GTPU, UDP_PORT_VXLAN,
    },
    AF_INET, AF_INET6,
};

use crate::decap;

/// Why a frame produced no record; each maps to one counter.
#[derive(Clone, Copy)]
pub enum Skip {
    NonIp,
    NonTcp,
    Malformed,
    Fragment,
    TooDeep,
}

impl Skip {
    /// A non-zero code, for a BPF function's scalar return value.
    #[inline(always)]
    pub fn code(self) -> u32 {
        match self {
            Skip::NonIp => 1,
            Skip::NonTcp => 2,
            Skip::Malformed => 3,
            Skip::Fragment => 4,
            Skip::TooDeep => 5,
        }
    }

    #[inline(always)]
    pub fn from_code(code: u32) -> Skip {
        match code {
            1 => Skip::NonIp,
            2 => Skip::NonTcp,
            3 => Skip::Malformed,
            4 => Skip::Fragment,
            _ => Skip::TooDeep,
        }
    }
}

/// The header fields of one TCP segment (R2). Addresses are kept as the raw
/// words of the packet (network byte order in memory), so they are copied a
/// word at a time rather than byte by byte.
pub struct Segment {
    pub src_addr: [u32; 4],
    pub dst_addr: [u32; 4],
    pub seq: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub family: u8,
    pub tcp_flags: u8,
    pub vlan_tags: u8,
    /// The frame's Ethernet source (R9: a host on the segment, or a router).
    pub src_mac: [u8; 6],
}

/// Counted whatever the outcome (`wire::fact` bits; the anomaly bit only
/// with a record), and the VLAN tags read.
#[repr(C)]
pub struct Notes {
    pub facts: u32,
    pub vlan_tags: u8,
}

/// Where the header steps note facts and tags: [`Notes`] on the fast path,
/// [`MapNotes`] in the slow path's map memory.
pub trait Note {
    fn add(&mut self, bit: u32);
    fn tag(&mut self);
    fn vlan_tags(&self) -> u8;
}

impl Note for Notes {
    #[inline(always)]
    fn add(&mut self, bit: u32) {
        self.facts |= bit;
    }

    #[inline(always)]
    fn tag(&mut self) {
        self.vlan_tags = self.vlan_tags.wrapping_add(1);
    }

    #[inline(always)]
    fn vlan_tags(&self) -> u8 {
        self.vlan_tags
    }
}

/// Notes in the slow path's map memory, updated through volatile accesses:
/// a copy the compiler kept in a register across the walk's loop would carry
/// exact values from step to step, which the verifier then follows path by
/// path (see `decap`).
#[repr(C)]
pub struct MapNotes(pub Notes);

impl MapNotes {
    #[inline(always)]
    pub fn facts(&self) -> u32 {
        // SAFETY: plain memory of this struct.
        unsafe { core::ptr::read_volatile(&self.0.facts) }
    }

    #[inline(always)]
    pub fn set(&mut self, notes: &Notes) {
        // SAFETY: as above.
        unsafe {
            core::ptr::write_volatile(&mut self.0.facts, notes.facts);
            core::ptr::write_volatile(&mut self.0.vlan_tags, notes.vlan_tags);
        }
    }
}

impl Note for MapNotes {
    #[inline(always)]
    fn add(&mut self, bit: u32) {
        // SAFETY: plain memory of this struct.
        unsafe {
            let f = core::ptr::read_volatile(&self.0.facts);
            core::ptr::write_volatile(&mut self.0.facts, f | bit);
        }
    }

    #[inline(always)]
    fn tag(&mut self) {
        // SAFETY: as above.
        unsafe {
            let t = core::ptr::read_volatile(&self.0.vlan_tags);
            core::ptr::write_volatile(&mut self.0.vlan_tags, t.wrapping_add(1));
        }
    }

    #[inline(always)]
    fn vlan_tags(&self) -> u8 {
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(&self.0.vlan_tags) }
    }
}

/// A pointer to `N` bytes at `off`: `TooDeep` past `MAX_HEADER_OFFSET`,
/// `Malformed` if the frame is shorter.
#[inline(always)]
pub fn bytes_at<const N: usize>(ctx: &XdpContext, off: usize) -> Result<&[u8; N], Skip> {
    if off > MAX_HEADER_OFFSET {
        return Err(Skip::TooDeep);
    }
    let p = if N == 1 {
        // LLVM would fold `p + 1 > end` into `p >= end`, or fold a `- 1`
        // of the offset into the pointer (a negative fixed offset): from
        // either the verifier learns no range. Through the stack the offset
        // and `p` stay as written: one pointer, checked as `p + 1`.
        core::hint::black_box(ctx.data() + core::hint::black_box(off))
    } else {
        ctx.data() + off
    };
    if p + N > ctx.data_end() {
        return Err(Skip::Malformed);
    }
    // SAFETY: the range [p, p + N) was just checked to lie inside the
    // packet; [u8; N] has alignment 1.
    Ok(unsafe { &*(p as *const [u8; N]) })
}

/// `len` bytes (a run-time length) are present from `off` on, `off` itself
/// having been read already.
#[inline(always)]
pub fn present(ctx: &XdpContext, off: usize, len: usize) -> Result<(), Skip> {
    if ctx.data() + off + len > ctx.data_end() {
        return Err(Skip::Malformed);
    }
    Ok(())
}

#[inline(always)]
pub fn be16(b0: u8, b1: u8) -> u16 {
    u16::from_be_bytes([b0, b1])
}

/// The 4 bytes at `p` as they lie in memory. Packet data is only 2-aligned
/// behind an Ethernet header; the verifier allows unaligned packet loads on
/// this architecture (no strict alignment), and a word load is what we want
/// instead of four byte loads.
#[inline(always)]
fn word(p: &[u8; 4]) -> u32 {
    // SAFETY: p points at 4 readable bytes (bounds-checked by the caller).
    unsafe { core::ptr::read(p.as_ptr() as *const u32) }
}

#[inline(always)]
fn half(p: &[u8; 2]) -> u16 {
    // SAFETY: as for `word`.
    unsafe { core::ptr::read(p.as_ptr() as *const u16) }
}

#[inline(always)]
fn sub<const N: usize, const M: usize>(b: &[u8; N], at: usize) -> &[u8; M] {
    // SAFETY: callers use constant `at` with at + M <= N.
    unsafe { &*(b.as_ptr().add(at) as *const [u8; M]) }
}

/// The frame's length: its wire length (XDP sees whole frames).
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}

#[inline(always)]
pub fn is_vlan(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD || ether_type == ETH_P_QINQ_9100
}

/// Ethernet steps 1–2 from the EtherType at `off - 2` on: up to
/// `MAX_VLAN_TAGS` tags. Returns the EtherType after them and its payload's
/// offset.
#[inline(always)]
pub fn vlan_tags(
    ctx: &XdpContext,
    mut ether_type: u16,
    mut off: usize,
    notes: &mut impl Note,
) -> Result<(u16, usize), Skip> {
    // Counted as tagged even if the tag turns out cut short.
    notes.add(fact::VLAN);
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(ether_type) {
            break;
        }
        let tag = bytes_at::<{ wire::eth::VLAN_HLEN }>(ctx, off)?;
        ether_type = be16(tag[wire::eth::VLAN_TYPE], tag[wire::eth::VLAN_TYPE + 1]);
        off += wire::eth::VLAN_HLEN;
        notes.tag();
    }
    if is_vlan(ether_type) {
        return Err(Skip::TooDeep);
    }
    Ok((ether_type, off))
}

/// An IP header's verdict: what it carries, where, and its datagram's end.
pub struct Ip {
    pub proto: u8,
    pub payload: usize,
    pub end: usize,
    /// This header or an enclosing one is a first fragment.
    pub frag: bool,
    /// The header's addresses (what a record of its TCP segment carries).
    pub addrs: Addrs,
}

/// Source and destination address words, and the family.
#[derive(Clone, Copy)]
pub struct Addrs {
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub family: u8,
}

#[inline(always)]
fn addrs4(ip: &[u8; wire::ipv4::HLEN]) -> Addrs {
    use wire::ipv4::{DADDR, SADDR};
    Addrs {
        src: [word(sub(ip, SADDR)), 0, 0, 0],
        dst: [word(sub(ip, DADDR)), 0, 0, 0],
        family: AF_INET,
    }
}

#[inline(always)]
fn addrs6(ip: &[u8; wire::ipv6::HLEN]) -> Addrs {
    use wire::ipv6::{DADDR, SADDR};
    Addrs {
        src: [
            word(sub(ip, SADDR)),
            word(sub(ip, SADDR + 4)),
            word(sub(ip, SADDR + 8)),
            word(sub(ip, SADDR + 12)),
        ],
        dst: [
            word(sub(ip, DADDR)),
            word(sub(ip, DADDR + 4)),
            word(sub(ip, DADDR + 8)),
            word(sub(ip, DADDR + 12)),
        ],
        family: AF_INET6,
    }
}

/// The addresses of the IP header at `ip_off` (read before: the reads
/// cannot fail differently now).
#[inline(always)]
pub fn addrs_at(ctx: &XdpContext, ip_off: usize, v6: bool) -> Result<Addrs, Skip> {
    if v6 {
        Ok(addrs6(bytes_at::<{ wire::ipv6::HLEN }>(ctx, ip_off)?))
    } else {
        Ok(addrs4(bytes_at::<{ wire::ipv4::HLEN }>(ctx, ip_off)?))
    }
}

/// Is `proto` TCP or a protocol that may carry it?
#[inline(always)]
fn carries_tcp(proto: u8) -> bool {
    proto == IPPROTO_TCP
        || proto == IPPROTO_IPIP
        || proto == IPPROTO_IPV6
        || proto == IPPROTO_GRE
        || proto == IPPROTO_UDP
}

/// Where an IP header starts (`off`), where its enclosing datagram (or
/// the frame) ends, and whether that datagram is a first fragment.
#[derive(Clone, Copy)]
pub struct IpAt {
    pub off: usize,
    pub end: usize,
    pub frag: bool,
}

/// IPv4 steps.
#[inline(always)]
pub fn ipv4(ctx: &XdpContext, at: IpAt, notes: &mut impl Note) -> Result<Ip, Skip> {
    use wire::ipv4::*;
    let IpAt { off, end, frag } = at;
    let ip = bytes_at::<HLEN>(ctx, off)?;
    let ver_ihl = ip[VER_IHL];
    let ihl = ((ver_ihl & 0x0f) as usize) * 4;
    if ver_ihl >> 4 != 4 || ihl < HLEN {
        return Err(Skip::Malformed);
    }
    present(ctx, off, ihl)?;
    let total = be16(ip[TOT_LEN], ip[TOT_LEN + 1]) as usize;
    let dgram_end = if total < ihl {
        // Short of its own header (0 in offload captures): to the frame's end.
        notes.add(fact::ANOMALY);
        end
    } else if off + total > end {
        // Past the frame: expected inside a first fragment, else an anomaly.
        if !frag {
            notes.add(fact::ANOMALY);
        }
        end
    } else {
        off + total
    };
    let frag_field = be16(ip[FRAG], ip[FRAG + 1]);
    let mut frag = frag;
    if frag_field & FRAG_OFFSET_MASK == 0 && frag_field & MORE_FRAGMENTS != 0 {
        notes.add(fact::FIRST_FRAGMENT);
        frag = true;
    }
    let proto = ip[PROTO];
    if !carries_tcp(proto) {
        return Err(Skip::NonTcp);
    }
    if frag_field & FRAG_OFFSET_MASK != 0 {
        // A later fragment: its UDP ports (a tunnel's, maybe) are elsewhere.
        return Err(if proto == IPPROTO_UDP {
            Skip::NonTcp
        } else {
            Skip::Fragment
        });
    }
    Ok(Ip {
        proto,
        payload: off + ihl,
        end: dgram_end,
        frag,
        addrs: addrs4(ip),
    })
}

/// IPv6 steps, with the bounded extension-header walk.
#[inline(always)]
pub fn ipv6(ctx: &XdpContext, at: IpAt, notes: &mut impl Note) -> Result<Ip, Skip> {
    use wire::ipv6::*;
    let IpAt { off, end, frag } = at;
    // Counted once an IPv6 header is announced, even one cut short.
    notes.add(fact::IPV6);
    let ip = bytes_at::<HLEN>(ctx, off)?;
    if ip[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let payload = be16(ip[PAYLOAD_LEN], ip[PAYLOAD_LEN + 1]) as usize;
    let dgram_end = if payload == 0 {
        // A jumbogram or an offload capture: to the frame's end.
        notes.add(fact::ANOMALY);
        end
    } else if off + HLEN + payload > end {
        if !frag {
            notes.add(fact::ANOMALY);
        }
        end
    } else {
        off + HLEN + payload
    };
    let mut frag = frag;
    let mut next = ip[NEXT];
    let mut cur = off + HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS {
            let h = bytes_at::<2>(ctx, cur)?;
            next = h[EXT_NEXT];
            cur += (h[EXT_LEN] as usize + 1) * EXT_UNIT;
        } else if next == IPPROTO_FRAGMENT {
            let h = bytes_at::<FRAG_HLEN>(ctx, cur)?;
            let f = be16(h[FRAG_OFF], h[FRAG_OFF + 1]);
            if f >> 3 != 0 {
                return Err(Skip::Fragment);
            }
            if f & FRAG_MORE != 0 {
                notes.add(fact::FIRST_FRAGMENT);
                frag = true;
            }
            next = h[EXT_NEXT];
            cur += FRAG_HLEN;
        } else {
            break;
        }
    }
    // TCP first: the common case skips the other tests.
    if next != IPPROTO_TCP {
        if next == IPPROTO_HOPOPTS
            || next == IPPROTO_ROUTING
            || next == IPPROTO_FRAGMENT
            || next == IPPROTO_DSTOPTS
        {
            return Err(Skip::TooDeep);
        }
        if !carries_tcp(next) {
            return Err(Skip::NonTcp);
        }
    }
    Ok(Ip {
        proto: next,
        payload: cur,
        end: dgram_end,
        frag,
        addrs: addrs6(ip),
    })
}

/// TCP steps: the ports, sequence number and flags must lie in the datagram
/// and in the frame; the data offset is only judged (R2.1). The record
/// carries `addrs`, the innermost IP header's.
#[inline(always)]
pub fn tcp(
    ctx: &XdpContext,
    off: usize,
    end: usize,
    frag: bool,
    addrs: Addrs,
    notes: &mut impl Note,
) -> Result<Segment, Skip> {
    use wire::tcp::*;
    if off + FIELDS_LEN > end {
        // Not in this datagram: in a later fragment, or nowhere.
        return Err(if frag {
            Skip::Fragment
        } else {
            Skip::Malformed
        });
    }
    let th = bytes_at::<FIELDS_LEN>(ctx, off)?;
    let hdr_len = ((th[DOFF] >> 4) as usize) * 4;
    if hdr_len < MIN_HLEN || (off + hdr_len > end && !frag) {
        // Options running on into the next fragment are no anomaly.
        notes.add(fact::ANOMALY);
    }
    Ok(Segment {
        src_addr: addrs.src,
        dst_addr: addrs.dst,
        seq: u32::from_be(word(sub(th, SEQ))),
        src_port: u16::from_be(half(sub(th, SPORT))),
        dst_port: u16::from_be(half(sub(th, DPORT))),
        family: addrs.family,
        tcp_flags: th[FLAGS],
        vlan_tags: notes.vlan_tags(),
        src_mac: [0; 6],
    })
}

/// Does this UDP destination port open a tunnel?
#[inline(always)]
pub fn tunnel_port(port: u16) -> bool {
    port == UDP_PORT_VXLAN || port == UDP_PORT_GENEVE || port == UDP_PORT_GTPU
}

/// Does this EtherType open an encapsulation?
#[inline(always)]
pub fn encap_ether_type(ether_type: u16) -> bool {
    ether_type == ETH_P_MPLS_UC
        || ether_type == ETH_P_MPLS_MC
        || ether_type == ETH_P_PPP_SES
        || ether_type == ETH_P_8021AH
}

/// The fast path: Ethernet → VLAN tags → IPv4/IPv6 → TCP; anything that
/// opens an encapsulation continues in `decap`.
#[inline(always)]
pub fn parse(ctx: &XdpContext, notes: &mut Notes) -> Result<Segment, Skip> {
    let eth = bytes_at::<{ wire::eth::HLEN }>(ctx, 0)?;
    let mut ether_type = be16(eth[wire::eth::TYPE], eth[wire::eth::TYPE + 1]);
    let mut off = wire::eth::HLEN;
    if is_vlan(ether_type) {
        (ether_type, off) = vlan_tags(ctx, ether_type, off, notes)?;
    }
    let len = frame_len(ctx);
    let at = IpAt {
        off,
        end: len,
        frag: false,
    };
    let (ip, v6) = if ether_type == ETH_P_IP {
        (ipv4(ctx, at, notes)?, false)
    } else if ether_type == ETH_P_IPV6 {
        (ipv6(ctx, at, notes)?, true)
    } else if encap_ether_type(ether_type) {
        return decap::walk(ctx, &decap::Start::Ether(ether_type, off), notes);
    } else {
        return Err(Skip::NonIp);
    };
    if ip.proto == IPPROTO_TCP {
        // IPv6 addresses are read again here rather than kept across the
        // extension-header walk (eight words the registers cannot hold).
        let addrs = if v6 {
            addrs_at(ctx, off, true)?
        } else {
            ip.addrs
        };
        return tcp(ctx, ip.payload, ip.end, ip.frag, addrs, notes);
    }
    if ip.proto == IPPROTO_UDP {
        // Only a tunnel's port leaves the fast path.
        let udp = bytes_at::<{ wire::udp::HLEN }>(ctx, ip.payload)?;
        if !tunnel_port(be16(udp[wire::udp::DPORT], udp[wire::udp::DPORT + 1])) {
            return Err(Skip::NonTcp);
        }
    }
    decap::walk(
        ctx,
        &decap::Start::IpPayload {
            proto: ip.proto,
            off: ip.payload,
            end: ip.end,
            ip_off: off,
            v6,
            frag: ip.frag,
        },
        notes,
    )
}
