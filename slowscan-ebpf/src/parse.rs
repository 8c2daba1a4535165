//! Header cursor: Ethernet → ≤ 2 VLAN tags → IPv4 / IPv6 (bounded extension
//! walk) → TCP, following docs/parsing.md step by step. Every read is
//! bounds-checked against `data_end` right before it.

use aya_ebpf::programs::XdpContext;
use slowscan_common::{
    wire::{
        ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, MAX_IPV6_EXT_HEADERS,
        MAX_VLAN_TAGS,
    },
    AF_INET, AF_INET6,
};

/// Why a frame produced no record; each maps to one counter.
#[derive(Clone, Copy)]
pub enum Skip {
    NonIp,
    NonTcp,
    Malformed,
    Fragment,
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
}

/// A pointer to `N` bytes at `off`, or `Malformed` if the frame is shorter.
#[inline(always)]
fn bytes_at<const N: usize>(ctx: &XdpContext, off: usize) -> Result<&[u8; N], Skip> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + N > end {
        return Err(Skip::Malformed);
    }
    // SAFETY: the range [start + off, start + off + N) was just checked to lie
    // inside the packet; [u8; N] has alignment 1.
    Ok(unsafe { &*((start + off) as *const [u8; N]) })
}

#[inline(always)]
fn be16(b0: u8, b1: u8) -> u16 {
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

/// Bytes on the wire from `off` to the end of the frame.
#[inline(always)]
fn wire_from(ctx: &XdpContext, off: usize) -> usize {
    (ctx.data_end() - ctx.data()).saturating_sub(off)
}

/// Facts counted whatever the outcome: an IPv6 EtherType, a VLAN tag.
pub struct Flags {
    pub ipv6: bool,
    pub vlan: bool,
}

#[inline(always)]
pub fn parse(ctx: &XdpContext, flags: &mut Flags) -> Result<Segment, Skip> {
    let eth = bytes_at::<14>(ctx, 0)?;
    let mut ethertype = be16(eth[12], eth[13]);
    let mut off = 14usize;
    let mut vlan_tags = 0u8;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // Counted as tagged even if the tag turns out truncated.
        flags.vlan = true;
        let tag = bytes_at::<4>(ctx, off)?;
        ethertype = be16(tag[2], tag[3]);
        off += 4;
        vlan_tags += 1;
    }
    match ethertype {
        ETH_P_IP => ipv4(ctx, off, vlan_tags),
        ETH_P_IPV6 => {
            flags.ipv6 = true;
            ipv6(ctx, off, vlan_tags)
        }
        _ => Err(Skip::NonIp),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize, vlan_tags: u8) -> Result<Segment, Skip> {
    let ip = bytes_at::<20>(ctx, off)?;
    if ip[0] >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed);
    }
    let tot_len = be16(ip[2], ip[3]) as usize;
    if tot_len < ihl || tot_len > wire_from(ctx, off) {
        return Err(Skip::Malformed);
    }
    if ip[9] != IPPROTO_TCP {
        return Err(Skip::NonTcp);
    }
    if be16(ip[6], ip[7]) & 0x1fff != 0 {
        return Err(Skip::Fragment);
    }
    let src_addr = [word(sub(ip, 12)), 0, 0, 0];
    let dst_addr = [word(sub(ip, 16)), 0, 0, 0];
    tcp(
        ctx,
        off + ihl,
        off + tot_len,
        src_addr,
        dst_addr,
        AF_INET,
        vlan_tags,
    )
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize, vlan_tags: u8) -> Result<Segment, Skip> {
    let ip = bytes_at::<40>(ctx, off)?;
    if ip[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let ip_len = 40 + be16(ip[4], ip[5]) as usize;
    if ip_len > wire_from(ctx, off) {
        return Err(Skip::Malformed);
    }
    let src_addr = [
        word(sub(ip, 8)),
        word(sub(ip, 12)),
        word(sub(ip, 16)),
        word(sub(ip, 20)),
    ];
    let dst_addr = [
        word(sub(ip, 24)),
        word(sub(ip, 28)),
        word(sub(ip, 32)),
        word(sub(ip, 36)),
    ];
    let mut next = ip[6];
    let mut cur = off + 40;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        match next {
            0 | 43 | 60 => {
                let h = bytes_at::<2>(ctx, cur)?;
                next = h[0];
                cur += (h[1] as usize + 1) * 8;
            }
            44 => {
                let h = bytes_at::<8>(ctx, cur)?;
                if be16(h[2], h[3]) >> 3 != 0 {
                    return Err(Skip::Fragment);
                }
                next = h[0];
                cur += 8;
            }
            _ => break,
        }
    }
    match next {
        0 | 43 | 44 | 60 => Err(Skip::Malformed),
        IPPROTO_TCP => tcp(
            ctx,
            cur,
            off + ip_len,
            src_addr,
            dst_addr,
            AF_INET6,
            vlan_tags,
        ),
        _ => Err(Skip::NonTcp),
    }
}

#[inline(always)]
fn tcp(
    ctx: &XdpContext,
    off: usize,
    ip_end: usize,
    src_addr: [u32; 4],
    dst_addr: [u32; 4],
    family: u8,
    vlan_tags: u8,
) -> Result<Segment, Skip> {
    let th = bytes_at::<20>(ctx, off)?;
    let doff = ((th[12] >> 4) as usize) * 4;
    if doff < 20 || off + doff > ip_end || off + doff > ctx.data_end() - ctx.data() {
        return Err(Skip::Malformed);
    }
    Ok(Segment {
        src_addr,
        dst_addr,
        seq: u32::from_be(word(sub(th, 4))),
        src_port: u16::from_be(half(sub(th, 0))),
        dst_port: u16::from_be(half(sub(th, 2))),
        family,
        tcp_flags: th[13],
        vlan_tags,
    })
}
