//! The slow path: frames whose headers open an encapsulation (docs/parsing.md,
//! "Encapsulations"). One header per step of a loop bounded by
//! `wire::MAX_STEPS`, the innermost IP/TCP header being the one that counts.
//!
//! The walk's state lives in a per-CPU map value, not in registers: what
//! the verifier learns about a value loaded from map memory is only its
//! type, so every path through one step reaches the next step in the same
//! state, and the verifier's work grows with the number of steps, not with
//! the number of header sequences (which would be exponential in depth).

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::XdpContext};
use slowscan_common::wire::{
    self, fact, ETH_P_8021AH, ETH_P_ERSPAN, ETH_P_ERSPAN3, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC,
    ETH_P_MPLS_UC, ETH_P_PPP_SES, ETH_P_TEB, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP,
    IPPROTO_UDP, MAX_ENCAPS, MAX_GTPU_EXT_HEADERS, MAX_MPLS_LABELS, MAX_STEPS, PPP_IP, PPP_IPV6,
    UDP_PORT_GENEVE, UDP_PORT_GTPU, UDP_PORT_VXLAN,
};

use crate::parse::{
    addrs_at, be16, bytes_at, frame_len, ipv4, ipv6, is_vlan, tcp, vlan_tags, IpAt, MapNotes, Note,
    Notes, Segment, Skip,
};

/// Where the fast path hands over.
pub enum Start {
    /// An EtherType that opens an encapsulation, and its payload's offset.
    Ether(u16, usize),
    /// An IP header's payload that is not TCP: a tunnel, by protocol.
    IpPayload {
        proto: u8,
        off: usize,
        end: usize,
        ip_off: usize,
        v6: bool,
        frag: bool,
    },
}

/// Step kinds (the userspace parser's `Next`). `Eth` is 0, so that the
/// walk's zeroed map memory holds a valid kind.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eth = 0,
    Ether,
    Ipv4,
    Ipv6,
    IpPayload,
    Mpls,
    Tcp,
}

/// The walk between steps (the userspace parser's `Walk` and `Next`).
#[repr(C)]
pub struct Walk {
    /// Offset of the next header.
    off: usize,
    /// Wire end of the innermost datagram read so far.
    end: usize,
    /// The innermost IP header.
    ip_off: usize,
    notes: MapNotes,
    ether_type: u16,
    kind: Kind,
    proto: u8,
    v6: bool,
    /// Inside a first fragment.
    frag: bool,
    encaps: u8,
}

#[map(name = "PARSE_WALK")]
static WALK: PerCpuArray<Walk> = PerCpuArray::with_max_entries(1, 0);

/// Reads a field of the walk from map memory, every time: a value the
/// compiler kept in a register would reach the next step with what the
/// verifier knows about it exactly, and the verifier would follow every
/// header sequence apart.
#[inline(always)]
fn ld<T: Copy>(field: &T) -> T {
    // SAFETY: a field of the walk, plain memory.
    unsafe { core::ptr::read_volatile(field) }
}

#[inline(always)]
fn st<T: Copy>(field: &mut T, value: T) {
    // SAFETY: as for `ld`.
    unsafe { core::ptr::write_volatile(field, value) }
}

/// Walks from `start` to the innermost TCP header, or to the reason there is none.
#[inline(always)]
pub fn walk(ctx: &XdpContext, start: &Start, notes: &mut Notes) -> Result<Segment, Skip> {
    let mut seg = Segment {
        src_addr: [0; 4],
        dst_addr: [0; 4],
        seq: 0,
        src_port: 0,
        dst_port: 0,
        family: 0,
        tcp_flags: 0,
        vlan_tags: 0,
        src_mac: [0; 6],
    };
    match walk_fn(ctx, start, notes, &mut seg) {
        0 => Ok(seg),
        code => Err(Skip::from_code(code)),
    }
}

/// `walk` as a BPF function of its own (not inlined): the fast path's
/// registers stay its own, so plain frames pay nothing for the
/// encapsulations they lack. It returns a scalar (0, or the `Skip` code):
/// a BPF function may not hand its caller a pointer into the stack, which
/// a returned `Result<Segment, _>` would be.
#[inline(never)]
fn walk_fn(ctx: &XdpContext, start: &Start, notes: &mut Notes, out: &mut Segment) -> u32 {
    match walk_inner(ctx, start, notes) {
        Ok(seg) => {
            *out = seg;
            0
        }
        Err(skip) => skip.code(),
    }
}

#[inline(always)]
fn walk_inner(ctx: &XdpContext, start: &Start, notes: &mut Notes) -> Result<Segment, Skip> {
    let w = match WALK.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot: only this CPU's program instance uses it,
        // and only within this call.
        Some(w) => unsafe { &mut *w },
        // Cannot happen for an array map of one entry.
        None => return Err(Skip::TooDeep),
    };
    w.notes.set(notes);
    st(&mut w.encaps, 0);
    match *start {
        Start::Ether(ether_type, off) => {
            st(&mut w.kind, Kind::Ether);
            st(&mut w.ether_type, ether_type);
            st(&mut w.off, off);
            st(&mut w.end, frame_len(ctx));
            st(&mut w.ip_off, 0);
            st(&mut w.v6, false);
            st(&mut w.frag, false);
        }
        Start::IpPayload {
            proto,
            off,
            end,
            ip_off,
            v6,
            frag,
        } => {
            st(&mut w.kind, Kind::IpPayload);
            st(&mut w.proto, proto);
            st(&mut w.off, off);
            st(&mut w.end, end);
            st(&mut w.ip_off, ip_off);
            st(&mut w.v6, v6);
            st(&mut w.frag, frag);
        }
    }
    let r = steps(ctx, w);
    notes.facts = w.notes.facts();
    notes.vlan_tags = w.notes.vlan_tags();
    r
}

#[inline(always)]
fn steps(ctx: &XdpContext, w: &mut Walk) -> Result<Segment, Skip> {
    for _ in 0..MAX_STEPS {
        if ld(&w.kind) == Kind::Tcp {
            break;
        }
        step(ctx, w)?;
    }
    if ld(&w.kind) != Kind::Tcp {
        // Unreachable: MAX_ENCAPS ends every walk sooner.
        return Err(Skip::TooDeep);
    }
    let (off, end, ip_off, v6, frag) = (
        ld(&w.off),
        ld(&w.end),
        ld(&w.ip_off),
        ld(&w.v6),
        ld(&w.frag),
    );
    let addrs = addrs_at(ctx, ip_off, v6)?;
    tcp(ctx, off, end, frag, addrs, &mut w.notes)
}

#[inline(always)]
fn step(ctx: &XdpContext, w: &mut Walk) -> Result<(), Skip> {
    let off = ld(&w.off);
    match ld(&w.kind) {
        Kind::Eth => eth(ctx, w, off),
        Kind::Ether => ether(ctx, w, ld(&w.ether_type), off),
        Kind::Ipv4 => ip(ctx, w, off, false),
        Kind::Ipv6 => ip(ctx, w, off, true),
        Kind::IpPayload => ip_payload(ctx, w, ld(&w.proto), off),
        Kind::Mpls => mpls(ctx, w, off),
        // Not reached: the walk stops at TCP.
        Kind::Tcp => Err(Skip::TooDeep),
    }
}

#[inline(always)]
fn go(w: &mut Walk, kind: Kind, off: usize) -> Result<(), Skip> {
    st(&mut w.kind, kind);
    st(&mut w.off, off);
    Ok(())
}

/// Opens one more encapsulation, if the bound allows.
#[inline(always)]
fn encap(w: &mut Walk, bit: u32) -> Result<(), Skip> {
    let n = ld(&w.encaps);
    if n >= MAX_ENCAPS {
        return Err(Skip::TooDeep);
    }
    st(&mut w.encaps, n + 1);
    w.notes.add(bit);
    Ok(())
}

/// An Ethernet header and its VLAN tags.
#[inline(always)]
fn eth(ctx: &XdpContext, w: &mut Walk, off: usize) -> Result<(), Skip> {
    let e = bytes_at::<{ wire::eth::HLEN }>(ctx, off)?;
    let mut ether_type = be16(e[wire::eth::TYPE], e[wire::eth::TYPE + 1]);
    let mut off = off + wire::eth::HLEN;
    if is_vlan(ether_type) {
        (ether_type, off) = vlan_tags(ctx, ether_type, off, &mut w.notes)?;
    }
    st(&mut w.ether_type, ether_type);
    go(w, Kind::Ether, off)
}

/// What an EtherType announces.
#[inline(always)]
fn ether(ctx: &XdpContext, w: &mut Walk, ether_type: u16, off: usize) -> Result<(), Skip> {
    if ether_type == ETH_P_IP {
        go(w, Kind::Ipv4, off)
    } else if ether_type == ETH_P_IPV6 {
        go(w, Kind::Ipv6, off)
    } else if ether_type == ETH_P_MPLS_UC || ether_type == ETH_P_MPLS_MC {
        encap(w, fact::MPLS)?;
        go(w, Kind::Mpls, off)
    } else if ether_type == ETH_P_PPP_SES {
        use wire::pppoe::*;
        encap(w, fact::PPPOE)?;
        let p = bytes_at::<HLEN>(ctx, off)?;
        if p[0] != VER_TYPE || p[1] != CODE_SESSION {
            return Err(Skip::NonIp);
        }
        let (proto, inner) = ppp_protocol(ctx, off + HLEN)?;
        if proto == PPP_IP {
            go(w, Kind::Ipv4, inner)
        } else if proto == PPP_IPV6 {
            go(w, Kind::Ipv6, inner)
        } else {
            Err(Skip::NonIp)
        }
    } else if ether_type == ETH_P_8021AH {
        encap(w, fact::PBB)?;
        go(w, Kind::Eth, off + wire::pbb::ITAG_LEN)
    } else {
        Err(Skip::NonIp)
    }
}

/// A PPP protocol field: one byte when compressed (odd), else two.
#[inline(always)]
fn ppp_protocol(ctx: &XdpContext, off: usize) -> Result<(u16, usize), Skip> {
    let b = bytes_at::<1>(ctx, off)?;
    if b[0] & 1 != 0 {
        return Ok((b[0] as u16, off + 1));
    }
    let p = bytes_at::<2>(ctx, off)?;
    Ok((be16(p[0], p[1]), off + 2))
}

/// An IP header; TCP next, or its payload.
#[inline(always)]
fn ip(ctx: &XdpContext, w: &mut Walk, off: usize, v6: bool) -> Result<(), Skip> {
    let at = IpAt {
        off,
        end: ld(&w.end),
        frag: ld(&w.frag),
    };
    let r = if v6 {
        ipv6(ctx, at, &mut w.notes)?
    } else {
        ipv4(ctx, at, &mut w.notes)?
    };
    st(&mut w.end, r.end);
    st(&mut w.ip_off, off);
    st(&mut w.v6, v6);
    st(&mut w.frag, r.frag);
    if r.proto == IPPROTO_TCP {
        go(w, Kind::Tcp, r.payload)
    } else {
        st(&mut w.proto, r.proto);
        go(w, Kind::IpPayload, r.payload)
    }
}

/// What an IP header carries besides TCP: a tunnel to open.
#[inline(always)]
fn ip_payload(ctx: &XdpContext, w: &mut Walk, proto: u8, off: usize) -> Result<(), Skip> {
    if proto == IPPROTO_TCP {
        go(w, Kind::Tcp, off)
    } else if proto == IPPROTO_IPIP {
        encap(w, fact::IP_IN_IP)?;
        go(w, Kind::Ipv4, off)
    } else if proto == IPPROTO_IPV6 {
        encap(w, fact::IP_IN_IP)?;
        go(w, Kind::Ipv6, off)
    } else if proto == IPPROTO_GRE {
        gre(ctx, w, off)
    } else if proto == IPPROTO_UDP {
        udp(ctx, w, off)
    } else {
        Err(Skip::NonTcp)
    }
}

/// GRE (version 0): IP, Ethernet (transparent bridging), MPLS, ERSPAN.
#[inline(always)]
fn gre(ctx: &XdpContext, w: &mut Walk, off: usize) -> Result<(), Skip> {
    use wire::gre::*;
    let g = bytes_at::<HLEN>(ctx, off)?;
    let flags = g[0];
    if g[1] & VERSION_MASK != 0 || flags & F_ROUTING != 0 {
        return Err(Skip::NonTcp);
    }
    let mut inner = off + HLEN;
    if flags & F_CSUM != 0 {
        inner += OPT_LEN;
    }
    if flags & F_KEY != 0 {
        inner += OPT_LEN;
    }
    if flags & F_SEQ != 0 {
        inner += OPT_LEN;
    }
    let proto = be16(g[PROTO], g[PROTO + 1]);
    if proto == ETH_P_IP {
        encap(w, fact::GRE)?;
        go(w, Kind::Ipv4, inner)
    } else if proto == ETH_P_IPV6 {
        encap(w, fact::GRE)?;
        go(w, Kind::Ipv6, inner)
    } else if proto == ETH_P_TEB {
        encap(w, fact::GRE)?;
        go(w, Kind::Eth, inner)
    } else if proto == ETH_P_MPLS_UC {
        encap(w, fact::GRE)?;
        go(w, Kind::Mpls, inner)
    } else if proto == ETH_P_ERSPAN {
        use wire::erspan::*;
        encap(w, fact::ERSPAN)?;
        if flags & F_SEQ == 0 {
            // Type I: the mirrored frame follows GRE at once.
            return go(w, Kind::Eth, inner);
        }
        let e = bytes_at::<II_HLEN>(ctx, inner)?;
        if e[0] >> 4 != II_VERSION {
            return Err(Skip::NonTcp);
        }
        go(w, Kind::Eth, inner + II_HLEN)
    } else if proto == ETH_P_ERSPAN3 {
        use wire::erspan::*;
        encap(w, fact::ERSPAN)?;
        let e = bytes_at::<III_HLEN>(ctx, inner)?;
        if e[0] >> 4 != III_VERSION {
            return Err(Skip::NonTcp);
        }
        let sub = if e[III_FLAGS] & III_O != 0 {
            III_SUBHDR_LEN
        } else {
            0
        };
        go(w, Kind::Eth, inner + III_HLEN + sub)
    } else {
        Err(Skip::NonTcp)
    }
}

/// UDP: the tunnels known by their destination port.
#[inline(always)]
fn udp(ctx: &XdpContext, w: &mut Walk, off: usize) -> Result<(), Skip> {
    let u = bytes_at::<{ wire::udp::HLEN }>(ctx, off)?;
    let port = be16(u[wire::udp::DPORT], u[wire::udp::DPORT + 1]);
    let t = off + wire::udp::HLEN;
    if port == UDP_PORT_VXLAN {
        encap(w, fact::VXLAN)?;
        let v = bytes_at::<{ wire::vxlan::HLEN }>(ctx, t)?;
        if v[0] & wire::vxlan::FLAG_I == 0 {
            return Err(Skip::NonTcp);
        }
        go(w, Kind::Eth, t + wire::vxlan::HLEN)
    } else if port == UDP_PORT_GENEVE {
        use wire::geneve::*;
        encap(w, fact::GENEVE)?;
        let g = bytes_at::<HLEN>(ctx, t)?;
        if g[0] >> 6 != 0 {
            return Err(Skip::NonTcp);
        }
        let inner = t + HLEN + ((g[0] & OPT_LEN_MASK) as usize) * OPT_UNIT;
        let proto = be16(g[PROTO], g[PROTO + 1]);
        if proto == ETH_P_TEB {
            go(w, Kind::Eth, inner)
        } else if proto == ETH_P_IP {
            go(w, Kind::Ipv4, inner)
        } else if proto == ETH_P_IPV6 {
            go(w, Kind::Ipv6, inner)
        } else {
            Err(Skip::NonTcp)
        }
    } else if port == UDP_PORT_GTPU {
        encap(w, fact::GTPU)?;
        gtpu(ctx, w, t)
    } else {
        Err(Skip::NonTcp)
    }
}

/// GTP-U: a T-PDU's IP packet, past the optional fields and extension headers.
#[inline(always)]
fn gtpu(ctx: &XdpContext, w: &mut Walk, off: usize) -> Result<(), Skip> {
    use wire::gtpu::*;
    let h = bytes_at::<HLEN>(ctx, off)?;
    let flags = h[0];
    if flags & VERSION_PT_MASK != VERSION_PT || h[MSG_TYPE] != MSG_GPDU {
        return Err(Skip::NonTcp);
    }
    let mut g = off + HLEN;
    if flags & F_OPTIONAL != 0 {
        let o = bytes_at::<OPT_LEN>(ctx, g)?;
        let mut ext = if flags & F_EXT != 0 {
            o[OPT_LEN - 1]
        } else {
            0
        };
        g += OPT_LEN;
        for _ in 0..MAX_GTPU_EXT_HEADERS {
            if ext == 0 {
                break;
            }
            let len = (bytes_at::<1>(ctx, g)?[0] as usize) * EXT_UNIT;
            if len == 0 {
                return Err(Skip::Malformed);
            }
            ext = bytes_at::<1>(ctx, g + len - 1)?[0];
            g += len;
        }
        if ext != 0 {
            return Err(Skip::TooDeep);
        }
    }
    let v = bytes_at::<1>(ctx, g)?[0] >> 4;
    if v == 4 {
        go(w, Kind::Ipv4, g)
    } else if v == 6 {
        go(w, Kind::Ipv6, g)
    } else {
        Err(Skip::NonTcp)
    }
}

/// An MPLS label stack, then what its first payload nibble says.
#[inline(always)]
fn mpls(ctx: &XdpContext, w: &mut Walk, off: usize) -> Result<(), Skip> {
    use wire::mpls::*;
    let mut off = off;
    let mut bottom = false;
    for _ in 0..MAX_MPLS_LABELS {
        let l = bytes_at::<LABEL_LEN>(ctx, off)?;
        bottom = l[BOS_BYTE] & BOS != 0;
        off += LABEL_LEN;
        if bottom {
            break;
        }
    }
    if !bottom {
        return Err(Skip::TooDeep);
    }
    let v = bytes_at::<1>(ctx, off)?[0] >> 4;
    if v == 4 {
        go(w, Kind::Ipv4, off)
    } else if v == 6 {
        go(w, Kind::Ipv6, off)
    } else if v == 0 {
        // An Ethernet pseudowire behind its control word.
        go(w, Kind::Eth, off + CONTROL_WORD_LEN)
    } else {
        Err(Skip::NonIp)
    }
}
