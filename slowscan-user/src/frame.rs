//! Userspace frame parser: link header → IPv4/IPv6 → TCP → [`PacketRecord`].
//!
//! Follows docs/parsing.md step by step and in the same order as the XDP
//! program (`slowscan-ebpf/src/parse.rs`), so the differential test can
//! compare the two record by record. Every read is bounds-checked against the
//! captured bytes; length fields are checked against the wire length, so a
//! snap-length-truncated capture still yields correct records. Never panics,
//! never allocates.

use slowscan_common::{
    AF_INET, AF_INET6, Counter, PacketRecord,
    wire::{
        ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, MAX_IPV6_EXT_HEADERS,
        MAX_VLAN_TAGS,
    },
};

/// The link-layer framing of a captured packet (pcap `LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 1: Ethernet II, with up to two 802.1Q/802.1ad tags.
    Ethernet,
    /// 113: Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    LinuxSll,
    /// 276: Linux cooked capture v2.
    LinuxSll2,
    /// 101, and DLT 12/14 as some writers store them: IPv4 or IPv6 by version.
    RawIp,
    /// 228: IPv4 only.
    Ipv4,
    /// 229: IPv6 only.
    Ipv6,
    /// 0: BSD loopback, a 4-byte address family in the writer's byte order.
    Null,
}

impl LinkType {
    /// Maps a pcap/pcapng link type number; `None` for unsupported ones.
    pub fn from_pcap(link_type: u32) -> Option<LinkType> {
        Some(match link_type {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// The canonical pcap link type number (what [`crate::capture::PcapWriter`] writes).
    pub fn to_pcap(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// Human-readable list for error messages.
    pub const SUPPORTED: &'static str = "0 (BSD loopback), 1 (Ethernet), 12/14/101 (raw IP), \
         113 (Linux cooked v1), 228 (IPv4), 229 (IPv6), 276 (Linux cooked v2)";
}

/// What one frame turned out to be; each maps to one kernel counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOutcome {
    Record(PacketRecord),
    NonIp,
    NonTcp,
    Malformed,
    /// A non-first IP fragment: no TCP header to read.
    Fragment,
}

/// Side facts the kernel counts whatever the outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// VLAN tags read before the outcome was decided (0–2).
    pub vlan_tags: u8,
    /// The first EtherType was a VLAN TPID (counted even if the tag is cut short).
    pub vlan_tagged: bool,
    /// The link header said IPv6 (counted before the IPv6 header is checked).
    pub ipv6: bool,
}

/// Per-outcome counts, named as the kernel's [`Counter`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounters {
    pub frames: u64,
    /// Frames that gave a [`FrameOutcome::Record`] (no kernel counterpart:
    /// the kernel splits them by what it emits).
    pub records: u64,
    pub non_ip: u64,
    pub non_tcp: u64,
    pub malformed: u64,
    pub fragments_skipped: u64,
    pub ipv6: u64,
    pub vlan_tagged: u64,
}

impl FrameCounters {
    pub fn count(&mut self, outcome: &FrameOutcome, info: FrameInfo) {
        self.frames += 1;
        match outcome {
            FrameOutcome::Record(_) => self.records += 1,
            FrameOutcome::NonIp => self.non_ip += 1,
            FrameOutcome::NonTcp => self.non_tcp += 1,
            FrameOutcome::Malformed => self.malformed += 1,
            FrameOutcome::Fragment => self.fragments_skipped += 1,
        }
        self.ipv6 += u64::from(info.ipv6);
        self.vlan_tagged += u64::from(info.vlan_tagged);
    }

    /// The value of a kernel counter that the frame parser also keeps;
    /// `None` for counters that belong to the kernel's pre-filter.
    pub fn get(&self, counter: Counter) -> Option<u64> {
        Some(match counter {
            Counter::Frames => self.frames,
            Counter::NonIp => self.non_ip,
            Counter::NonTcp => self.non_tcp,
            Counter::Malformed => self.malformed,
            Counter::FragmentsSkipped => self.fragments_skipped,
            Counter::Ipv6 => self.ipv6,
            Counter::VlanTagged => self.vlan_tagged,
            _ => return None,
        })
    }
}

/// Parses one captured frame. `wire_len` is the frame's length on the wire
/// (a capture record's original length); a value below `data.len()` is taken
/// as `data.len()`.
pub fn parse_frame(link: LinkType, data: &[u8], wire_len: usize, ts_ns: u64) -> FrameOutcome {
    parse_frame_info(link, data, wire_len, ts_ns).0
}

/// [`parse_frame`] plus the facts [`FrameCounters::count`] needs.
pub fn parse_frame_info(
    link: LinkType,
    data: &[u8],
    wire_len: usize,
    ts_ns: u64,
) -> (FrameOutcome, FrameInfo) {
    let mut info = FrameInfo::default();
    let frame = Frame {
        data,
        wire_len: wire_len.max(data.len()),
    };
    let outcome = match frame.parse(link, &mut info) {
        Ok(mut record) => {
            record.ts_ns = ts_ns;
            FrameOutcome::Record(record)
        }
        Err(outcome) => outcome,
    };
    (outcome, info)
}

/// The network layer a link header announced.
enum Net {
    V4,
    V6,
}

/// Parse steps return the failing outcome as `Err` so `?` ends the walk.
type Step<T> = Result<T, FrameOutcome>;

struct Frame<'a> {
    data: &'a [u8],
    /// At least `data.len()`.
    wire_len: usize,
}

impl Frame<'_> {
    fn u8_at(&self, off: usize) -> Step<u8> {
        self.data.get(off).copied().ok_or(FrameOutcome::Malformed)
    }

    fn u16_at(&self, off: usize) -> Step<u16> {
        self.bytes::<2>(off).map(u16::from_be_bytes)
    }

    fn bytes<const N: usize>(&self, off: usize) -> Step<[u8; N]> {
        off.checked_add(N)
            .and_then(|end| self.data.get(off..end))
            .and_then(|b| b.try_into().ok())
            .ok_or(FrameOutcome::Malformed)
    }

    /// `len` bytes are captured from `off` on.
    fn present(&self, off: usize, len: usize) -> Step<()> {
        match off.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok(()),
            _ => Err(FrameOutcome::Malformed),
        }
    }

    fn parse(&self, link: LinkType, info: &mut FrameInfo) -> Step<PacketRecord> {
        let (off, net) = self.link_header(link, info)?;
        let mut rec = PacketRecord {
            vlan_tags: info.vlan_tags,
            ..PacketRecord::default()
        };
        match net {
            Net::V4 => self.ipv4(off, &mut rec)?,
            Net::V6 => {
                info.ipv6 = true;
                self.ipv6(off, &mut rec)?
            }
        }
        Ok(rec)
    }

    /// Returns the network header's offset and kind.
    fn link_header(&self, link: LinkType, info: &mut FrameInfo) -> Step<(usize, Net)> {
        match link {
            LinkType::Ethernet => self.ethernet(info),
            LinkType::LinuxSll => {
                self.present(0, 16)?;
                Ok((16, ethertype(self.u16_at(14)?)?))
            }
            LinkType::LinuxSll2 => {
                self.present(0, 20)?;
                Ok((20, ethertype(self.u16_at(0)?)?))
            }
            LinkType::RawIp => match self.u8_at(0)? >> 4 {
                4 => Ok((0, Net::V4)),
                6 => Ok((0, Net::V6)),
                _ => Err(FrameOutcome::NonIp),
            },
            LinkType::Ipv4 => Ok((0, Net::V4)),
            LinkType::Ipv6 => Ok((0, Net::V6)),
            LinkType::Null => {
                // The family is in the capturing host's byte order, which the
                // file does not record; real values are small, so a value
                // with high bits set was written big-endian.
                let mut family = u32::from_le_bytes(self.bytes::<4>(0)?);
                if family > 0xFFFF {
                    family = family.swap_bytes();
                }
                match family {
                    2 => Ok((4, Net::V4)),
                    24 | 28 | 30 => Ok((4, Net::V6)),
                    _ => Err(FrameOutcome::NonIp),
                }
            }
        }
    }

    /// Ethernet steps 1–3.
    fn ethernet(&self, info: &mut FrameInfo) -> Step<(usize, Net)> {
        self.present(0, 14)?;
        let mut off = 14;
        let mut ether_type = self.u16_at(12)?;
        let is_tag = |t| t == ETH_P_8021Q || t == ETH_P_8021AD;
        info.vlan_tagged = is_tag(ether_type);
        while is_tag(ether_type) {
            if info.vlan_tags == MAX_VLAN_TAGS {
                return Err(FrameOutcome::NonIp);
            }
            self.present(off, 4)?;
            ether_type = self.u16_at(off + 2)?;
            off += 4;
            info.vlan_tags += 1;
        }
        Ok((off, ethertype(ether_type)?))
    }

    /// Wire bytes from `off` to the end of the frame.
    fn wire_from(&self, off: usize) -> usize {
        self.wire_len.saturating_sub(off)
    }

    /// IPv4 steps 1–5.
    fn ipv4(&self, off: usize, rec: &mut PacketRecord) -> Step<()> {
        self.present(off, 20)?;
        let ver_ihl = self.u8_at(off)?;
        let hdr_len = usize::from(ver_ihl & 0x0F) * 4;
        if ver_ihl >> 4 != 4 || hdr_len < 20 {
            return Err(FrameOutcome::Malformed);
        }
        self.present(off, hdr_len)?;
        let total_len = usize::from(self.u16_at(off + 2)?);
        if total_len < hdr_len || total_len > self.wire_from(off) {
            return Err(FrameOutcome::Malformed);
        }
        if self.u8_at(off + 9)? != IPPROTO_TCP {
            return Err(FrameOutcome::NonTcp);
        }
        if self.u16_at(off + 6)? & 0x1FFF != 0 {
            return Err(FrameOutcome::Fragment);
        }
        rec.family = AF_INET;
        rec.src_addr[..4].copy_from_slice(&self.bytes::<4>(off + 12)?);
        rec.dst_addr[..4].copy_from_slice(&self.bytes::<4>(off + 16)?);
        self.tcp(off + hdr_len, off + total_len, rec)
    }

    /// IPv6 steps 1–5.
    fn ipv6(&self, off: usize, rec: &mut PacketRecord) -> Step<()> {
        self.present(off, 40)?;
        if self.u8_at(off)? >> 4 != 6 {
            return Err(FrameOutcome::Malformed);
        }
        let ip_len = 40 + usize::from(self.u16_at(off + 4)?);
        if ip_len > self.wire_from(off) {
            return Err(FrameOutcome::Malformed);
        }
        let mut next = self.u8_at(off + 6)?;
        let mut cur = off + 40;
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            match next {
                0 | 43 | 60 => {
                    self.present(cur, 2)?;
                    next = self.u8_at(cur)?;
                    cur += (usize::from(self.u8_at(cur + 1)?) + 1) * 8;
                }
                44 => {
                    self.present(cur, 8)?;
                    if self.u16_at(cur + 2)? >> 3 != 0 {
                        return Err(FrameOutcome::Fragment);
                    }
                    next = self.u8_at(cur)?;
                    cur += 8;
                }
                _ => break,
            }
        }
        if matches!(next, 0 | 43 | 60 | 44) {
            return Err(FrameOutcome::Malformed);
        }
        if next != IPPROTO_TCP {
            return Err(FrameOutcome::NonTcp);
        }
        rec.family = AF_INET6;
        rec.src_addr = self.bytes::<16>(off + 8)?;
        rec.dst_addr = self.bytes::<16>(off + 24)?;
        self.tcp(cur, off + ip_len, rec)
    }

    /// TCP steps 1–3; `ip_end` is the absolute end of the IP datagram.
    fn tcp(&self, off: usize, ip_end: usize, rec: &mut PacketRecord) -> Step<()> {
        self.present(off, 20)?;
        if off + 20 > ip_end {
            return Err(FrameOutcome::Malformed);
        }
        let hdr_len = usize::from(self.u8_at(off + 12)? >> 4) * 4;
        if hdr_len < 20 || off + hdr_len > ip_end {
            return Err(FrameOutcome::Malformed);
        }
        self.present(off, hdr_len)?;
        rec.src_port = self.u16_at(off)?;
        rec.dst_port = self.u16_at(off + 2)?;
        rec.seq = u32::from_be_bytes(self.bytes::<4>(off + 4)?);
        rec.tcp_flags = self.u8_at(off + 13)?;
        Ok(())
    }
}

/// Ethernet step 3 (also used by the cooked-capture headers).
fn ethertype(ether_type: u16) -> Step<Net> {
    match ether_type {
        ETH_P_IP => Ok(Net::V4),
        ETH_P_IPV6 => Ok(Net::V6),
        _ => Err(FrameOutcome::NonIp),
    }
}
