//! pcapng: a sequence of blocks `type, total length, body, total length`.
//! Reads section headers (either byte order), interface descriptions
//! (`if_tsresol`, `if_tsoffset`), enhanced, simple and obsolete packet
//! blocks; skips every other block without buffering it.

use super::{CaptureError, Ctx, Endian, MAX_PACKET, Next, RawPacket, Source};
use crate::frame::LinkType;

pub(super) const SHB_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Block types read: section header, interface description, obsolete,
/// simple and enhanced packet blocks.
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// Largest block that is buffered (packet blocks and headers): a full-size
/// packet plus room for options.
const MAX_BLOCK: usize = MAX_PACKET + 64 * 1024;
/// More interfaces than this in one section means a corrupt file.
const MAX_INTERFACES: usize = 65_536;

#[derive(Default)]
pub(super) struct State {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no timestamp; they get the previous packet's.
    last_ts_ns: u64,
}

struct Interface {
    /// The raw number when unsupported: an error only once a packet uses it.
    link: Result<LinkType, u32>,
    snaplen: u32,
    ts: TsUnit,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

impl State {
    pub(super) fn next(&mut self, src: &mut Source, ctx: &Ctx) -> Next {
        loop {
            let offset = src.offset();
            let have = ctx.fill(src, 8)?;
            if have == 0 {
                return Ok(None);
            }
            if have < 8 {
                return Err(ctx.truncated(offset, "pcapng block header", 8, have));
            }
            if src.peek(4) == SHB_MAGIC {
                self.endian = section_endian(src, ctx, offset)?;
            }
            let e = self.endian;
            let (block_type, len) = (e.u32(src.peek(8), 0), e.u32(src.peek(8), 4));
            let what = block_name(block_type);
            if len < 12 || len % 4 != 0 {
                let reason = format!("block length {len} is not a multiple of 4 of at least 12");
                return Err(ctx.corrupt(offset, what, reason));
            }
            if !matches!(block_type, SHB | IDB | OPB | SPB | EPB) {
                skip_block(src, ctx, e, offset, u64::from(len))?;
                continue;
            }
            if len as usize > MAX_BLOCK {
                return Err(ctx.too_large(offset, what, len.into(), MAX_BLOCK));
            }
            let len = len as usize;
            let have = ctx.fill(src, len)?;
            if have < len {
                return Err(ctx.truncated(offset, what, len, have));
            }
            let trailer = e.u32(src.peek(len), len - 4);
            if trailer as usize != len {
                let reason = format!("trailing length {trailer} differs from the leading {len}");
                return Err(ctx.corrupt(offset, what, reason));
            }
            let body = &src.peek(len)[8..len - 4];
            let parsed = match block_type {
                SHB => self.section(body, ctx, offset).map(|()| None),
                IDB => self.interface(body, ctx, offset).map(|()| None),
                _ => self.packet(block_type, body, ctx, offset).map(Some),
            }?;
            let block = src.consume(len);
            if let Some((packet, data)) = parsed {
                let start = block.start + 8 + data.start;
                return Ok(Some(RawPacket {
                    data: start..start + data.len(),
                    ..packet
                }));
            }
        }
    }

    fn section(&mut self, body: &[u8], ctx: &Ctx, offset: u64) -> Result<(), CaptureError> {
        if body.len() < 16 {
            return Err(short(ctx, offset, "section header block", body.len(), 16));
        }
        let version = (self.endian.u16(body, 4), self.endian.u16(body, 6));
        ctx.version("pcapng", version, 1)?;
        // Interface ids are per section.
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, body: &[u8], ctx: &Ctx, offset: u64) -> Result<(), CaptureError> {
        const WHAT: &str = "interface description block";
        if body.len() < 8 {
            return Err(short(ctx, offset, WHAT, body.len(), 8));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            let reason = format!("more than {MAX_INTERFACES} interfaces in one section");
            return Err(ctx.corrupt(offset, WHAT, reason));
        }
        let e = self.endian;
        let link_type = u32::from(e.u16(body, 0));
        let mut iface = Interface {
            link: LinkType::from_pcap(link_type).ok_or(link_type),
            snaplen: e.u32(body, 4),
            ts: TsUnit::MICROS,
            offset_ns: 0,
        };
        // Options are read leniently: a malformed one ends the list, since
        // nothing but the timestamp unit depends on them.
        let mut opts = &body[8..];
        while opts.len() >= 4 {
            let (code, olen) = (e.u16(opts, 0), usize::from(e.u16(opts, 2)));
            let Some(value) = opts.get(4..4 + olen) else {
                break;
            };
            match (code, olen) {
                (0, _) => break,
                (9, 1) => {
                    iface.ts = TsUnit::from_tsresol(value[0]).ok_or_else(|| {
                        let reason =
                            format!("if_tsresol {:#04x} is not a usable resolution", value[0]);
                        ctx.corrupt(offset, WHAT, reason)
                    })?;
                }
                (14, 8) => iface.offset_ns = i128::from(e.u64(value, 0) as i64) * 1_000_000_000,
                _ => {}
            }
            opts = opts.get(4 + olen.next_multiple_of(4)..).unwrap_or_default();
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// An EPB, OPB or SPB: the packet and its data's range within `body`.
    fn packet(
        &mut self,
        block_type: u32,
        body: &[u8],
        ctx: &Ctx,
        offset: u64,
    ) -> Result<(RawPacket, std::ops::Range<usize>), CaptureError> {
        let what = block_name(block_type);
        let e = self.endian;
        let header = if block_type == SPB { 4 } else { 20 };
        if body.len() < header {
            return Err(short(ctx, offset, what, body.len(), header));
        }
        let room = body.len() - header;
        let (interface, units, caplen, orig_len) = if block_type == SPB {
            let orig_len = e.u32(body, 0);
            (0, None, orig_len.min(room as u32), orig_len)
        } else {
            let interface = if block_type == EPB {
                e.u32(body, 0)
            } else {
                u32::from(e.u16(body, 0))
            };
            let units = (u64::from(e.u32(body, 4)) << 32) | u64::from(e.u32(body, 8));
            (interface, Some(units), e.u32(body, 12), e.u32(body, 16))
        };
        let Some(iface) = self.interfaces.get(interface as usize) else {
            let reason = format!(
                "packet refers to interface {interface}, but the section describes {}",
                self.interfaces.len()
            );
            return Err(ctx.corrupt(offset, what, reason));
        };
        let mut caplen = caplen as usize;
        if block_type == SPB && iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        if caplen > room {
            let reason =
                format!("captured length {caplen} exceeds the block's {room} bytes of data");
            return Err(ctx.corrupt(offset, what, reason));
        }
        if caplen > MAX_PACKET {
            return Err(ctx.too_large(offset, what, caplen as u64, MAX_PACKET));
        }
        let link = iface
            .link
            .map_err(|raw| ctx.unknown_link(raw, Some(interface)))?;
        if let Some(units) = units {
            self.last_ts_ns = iface.ts.to_ns(units, iface.offset_ns);
        }
        let packet = RawPacket {
            link,
            ts_ns: self.last_ts_ns,
            data: 0..0,
            wire_len: (orig_len as usize).max(caplen),
            interface,
            offset,
        };
        Ok((packet, header..header + caplen))
    }
}

/// Reads a section header's byte-order magic (the block type is a palindrome,
/// its length is not).
fn section_endian(src: &mut Source, ctx: &Ctx, offset: u64) -> Result<Endian, CaptureError> {
    let have = ctx.fill(src, 12)?;
    if have < 12 {
        return Err(ctx.truncated(offset, "section header block", 12, have));
    }
    let bom: [u8; 4] = [
        src.peek(12)[8],
        src.peek(12)[9],
        src.peek(12)[10],
        src.peek(12)[11],
    ];
    if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
        Ok(Endian::Little)
    } else if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
        Ok(Endian::Big)
    } else {
        let reason = format!(
            "byte-order magic {:#010x} is not 0x1a2b3c4d",
            u32::from_be_bytes(bom)
        );
        Err(ctx.corrupt(offset, "section header block", reason))
    }
}

/// Streams past a block nobody reads, then checks its trailing length.
fn skip_block(
    src: &mut Source,
    ctx: &Ctx,
    e: Endian,
    offset: u64,
    len: u64,
) -> Result<(), CaptureError> {
    let skipped = src.skip(len - 4).map_err(|err| ctx.io(src.offset(), err))?;
    let have = if skipped == len - 4 {
        ctx.fill(src, 4)?.min(4)
    } else {
        0
    };
    if have < 4 {
        let left = (skipped as usize).saturating_add(have);
        return Err(ctx.truncated(offset, "pcapng block", len as usize, left));
    }
    let trailer = e.u32(src.peek(4), 0);
    if u64::from(trailer) != len {
        let reason = format!("trailing length {trailer} differs from the leading {len}");
        return Err(ctx.corrupt(offset, "pcapng block", reason));
    }
    src.consume(4);
    Ok(())
}

fn short(ctx: &Ctx, offset: u64, what: &'static str, len: usize, need: usize) -> CaptureError {
    ctx.corrupt(
        offset,
        what,
        format!("body of {len} bytes is shorter than its {need}-byte header"),
    )
}

fn block_name(block_type: u32) -> &'static str {
    match block_type {
        SHB => "section header block",
        IDB => "interface description block",
        OPB => "packet block",
        SPB => "simple packet block",
        EPB => "enhanced packet block",
        _ => "pcapng block",
    }
}

/// An interface's timestamp unit, turned into nanoseconds without overflow.
#[derive(Clone, Copy, Debug)]
enum TsUnit {
    /// 10^-k s with k ≤ 9: multiply.
    Mul(u64),
    /// 10^-k s with 9 < k ≤ 28: divide.
    Div(u64),
    /// 2^-k s.
    Binary(u8),
}

impl TsUnit {
    const MICROS: TsUnit = TsUnit::Mul(1_000);

    fn from_tsresol(v: u8) -> Option<TsUnit> {
        let k = u32::from(v & 0x7F);
        if v & 0x80 != 0 {
            Some(TsUnit::Binary(k as u8))
        } else if k <= 9 {
            Some(TsUnit::Mul(10u64.pow(9 - k)))
        } else {
            10u64.checked_pow(k - 9).map(TsUnit::Div)
        }
    }

    fn to_ns(self, units: u64, offset_ns: i128) -> u64 {
        let ns = match self {
            TsUnit::Mul(m) => units.saturating_mul(m),
            TsUnit::Div(d) => units / d,
            TsUnit::Binary(k) => {
                u64::try_from((u128::from(units) * 1_000_000_000) >> k).unwrap_or(u64::MAX)
            }
        };
        if offset_ns == 0 {
            return ns;
        }
        (i128::from(ns) + offset_ns).clamp(0, i128::from(u64::MAX)) as u64
    }
}
