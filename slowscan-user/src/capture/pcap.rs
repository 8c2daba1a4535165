//! Classic pcap: a 24-byte file header, then 16-byte record headers each
//! followed by the captured bytes. Both byte orders, µs and ns timestamps.

use super::{CaptureError, Ctx, Endian, MAX_PACKET, Next, RawPacket, Source};
use crate::frame::LinkType;

const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

pub(super) struct State {
    endian: Endian,
    /// Nanoseconds per unit of the fraction field.
    frac_ns: u64,
    link: LinkType,
}

/// Reads the file header if `magic` is a pcap magic; `Ok(None)` otherwise.
pub(super) fn open(
    magic: &[u8; 4],
    src: &mut Source,
    ctx: &Ctx,
) -> Result<Option<State>, CaptureError> {
    let (endian, frac_ns) = match (u32::from_le_bytes(*magic), u32::from_be_bytes(*magic)) {
        (MAGIC_MICROS, _) => (Endian::Little, 1_000),
        (MAGIC_NANOS, _) => (Endian::Little, 1),
        (_, MAGIC_MICROS) => (Endian::Big, 1_000),
        (_, MAGIC_NANOS) => (Endian::Big, 1),
        _ => return Ok(None),
    };
    let have = ctx.fill(src, FILE_HEADER)?;
    if have < FILE_HEADER {
        return Err(ctx.truncated(0, "pcap file header", FILE_HEADER, have));
    }
    let header = src.peek(FILE_HEADER);
    ctx.version("pcap", (endian.u16(header, 4), endian.u16(header, 6)), 2)?;
    // The top 6 bits carry FCS information, not the link type.
    let link_type = endian.u32(header, 20) & 0x03FF_FFFF;
    let link = LinkType::from_pcap(link_type).ok_or_else(|| ctx.unknown_link(link_type, None))?;
    src.consume(FILE_HEADER);
    Ok(Some(State {
        endian,
        frac_ns,
        link,
    }))
}

impl State {
    pub(super) fn next(&mut self, src: &mut Source, ctx: &Ctx) -> Next {
        let offset = src.offset();
        let have = ctx.fill(src, RECORD_HEADER)?;
        if have == 0 {
            return Ok(None);
        }
        if have < RECORD_HEADER {
            return Err(ctx.truncated(offset, "packet record header", RECORD_HEADER, have));
        }
        let header = src.peek(RECORD_HEADER);
        let e = self.endian;
        let (secs, frac) = (u64::from(e.u32(header, 0)), u64::from(e.u32(header, 4)));
        let (caplen, orig_len) = (e.u32(header, 8), e.u32(header, 12));
        if caplen as usize > MAX_PACKET {
            return Err(ctx.too_large(offset, "packet record", caplen.into(), MAX_PACKET));
        }
        let caplen = caplen as usize;
        let needed = RECORD_HEADER + caplen;
        let have = ctx.fill(src, needed)?;
        if have < needed {
            return Err(ctx.truncated(offset, "packet record", needed, have));
        }
        src.consume(RECORD_HEADER);
        Ok(Some(RawPacket {
            link: self.link,
            // Cannot overflow: 2^32 s is under 2^63 ns, the fraction far less.
            ts_ns: secs * 1_000_000_000 + frac * self.frac_ns,
            data: src.consume(caplen),
            wire_len: (orig_len as usize).max(caplen),
            interface: 0,
            offset,
        }))
    }
}
