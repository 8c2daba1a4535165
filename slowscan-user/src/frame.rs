//! Userspace frame parser: link header → (tunnels) → IPv4/IPv6 → TCP →
//! [`PacketRecord`].
//!
//! Follows docs/parsing.md step by step and in the same order as the XDP
//! program (`slowscan-ebpf/src/parse.rs`), so the differential tests can
//! compare the two record by record and counter by counter: the same reads,
//! at the same offsets, in the same order, so a frame cut anywhere gives the
//! same outcome in both. Every read is bounds-checked against the captured
//! bytes; length fields are judged against the wire length, so a
//! snap-length-cut capture still yields correct records. A segment counts
//! when its ports, sequence number and flags were captured, whatever its
//! headers' length fields claim (R2.1); a disagreement is counted
//! (`header_anomalies`), never misread. Never panics, never allocates.

use slowscan_common::{
    AF_INET, AF_INET6, Counter, ENCAP_KINDS, FACT_COUNTERS, FIRST_ENCAP_COUNTER, PacketRecord,
    wire::{
        self, ETH_P_8021AD, ETH_P_8021AH, ETH_P_8021Q, ETH_P_ERSPAN, ETH_P_ERSPAN3, ETH_P_IP,
        ETH_P_IPV6, ETH_P_MPLS_MC, ETH_P_MPLS_UC, ETH_P_PPP_SES, ETH_P_QINQ_9100, ETH_P_TEB,
        IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_GRE, IPPROTO_HOPOPTS, IPPROTO_IPIP,
        IPPROTO_IPV6, IPPROTO_ROUTING, IPPROTO_TCP, IPPROTO_UDP, MAX_ENCAPS, MAX_GTPU_EXT_HEADERS,
        MAX_HEADER_OFFSET, MAX_IPV6_EXT_HEADERS, MAX_MPLS_LABELS, MAX_STEPS, MAX_VLAN_TAGS, PPP_IP,
        PPP_IPV6, PPP_MPLS_UC, UDP_PORT_GENEVE, UDP_PORT_GTPU, UDP_PORT_VXLAN, fact, link::*,
    },
};

/// The link-layer framing of a captured packet (pcap `LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 1: Ethernet II, with VLAN tags and everything docs/parsing.md opens.
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
    /// 9 (and 50, PPP in HDLC-like framing): PPP, with or without the
    /// address/control bytes; Cisco HDLC frames in such captures too.
    Ppp,
    /// 104: Cisco HDLC (address, control, an EtherType).
    CiscoHdlc,
    /// 239: Linux NFLOG (netfilter log messages: TLVs, one of them the packet).
    Nflog,
    /// 242: IP over InfiniBand (a 40-byte pseudo-header, then RFC 4391's
    /// 4-byte header with an EtherType).
    IpOverIb,
    /// 105: IEEE 802.11 data frames (LLC/SNAP inside).
    Ieee80211,
    /// 127: 802.11 behind a radiotap header.
    Radiotap,
}

impl LinkType {
    /// Maps a pcap/pcapng link type number; `None` for unsupported ones.
    pub fn from_pcap(link_type: u32) -> Option<LinkType> {
        Some(match link_type {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 | 50 => LinkType::Ppp,
            12 | 14 | 101 => LinkType::RawIp,
            104 => LinkType::CiscoHdlc,
            105 => LinkType::Ieee80211,
            113 => LinkType::LinuxSll,
            127 => LinkType::Radiotap,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            239 => LinkType::Nflog,
            242 => LinkType::IpOverIb,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }

    /// The canonical pcap link type number (what a pcap writer writes).
    pub fn to_pcap(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::RawIp => 101,
            LinkType::CiscoHdlc => 104,
            LinkType::Ieee80211 => 105,
            LinkType::LinuxSll => 113,
            LinkType::Radiotap => 127,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Nflog => 239,
            LinkType::IpOverIb => 242,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// Human-readable list for error messages.
    pub const SUPPORTED: &'static str = "0 (BSD loopback), 1 (Ethernet), 9/50 (PPP), \
         12/14/101 (raw IP), 104 (Cisco HDLC), 105 (802.11), 113 (Linux cooked v1), \
         127 (802.11 radiotap), 228 (IPv4), 229 (IPv6), 239 (NFLOG), 242 (IP over InfiniBand), \
         276 (Linux cooked v2)";
}

/// What one frame turned out to be; each maps to one kernel counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOutcome {
    Record(PacketRecord),
    NonIp,
    NonTcp,
    Malformed,
    /// A non-first IP fragment, or a first fragment too short to hold the
    /// TCP fields: no TCP header to read.
    Fragment,
    /// Deeper than the parsers read (`wire::MAX_*`): more VLAN tags, MPLS
    /// labels, extension headers or encapsulations, or a header starting
    /// past `wire::MAX_HEADER_OFFSET`.
    TooDeep,
}

/// Side facts the kernel counts whatever the outcome (the anomaly fact only
/// with a record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// VLAN tags read before the outcome was decided (all Ethernet headers).
    pub vlan_tags: u8,
    /// `wire::fact` bits.
    pub facts: u32,
    /// The record's TCP header (its data offset) was not captured whole: a
    /// snap-length cut. Userspace only: the kernel sees whole frames.
    pub tcp_header_cut: bool,
}

impl FrameInfo {
    pub fn ipv6(&self) -> bool {
        self.facts & fact::IPV6 != 0
    }

    pub fn vlan_tagged(&self) -> bool {
        self.facts & fact::VLAN != 0
    }
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
    pub too_deep: u64,
    pub ipv6: u64,
    pub vlan_tagged: u64,
    pub header_anomalies: u64,
    pub first_fragments: u64,
    /// Records whose TCP header was cut by the capture's snap length (no
    /// kernel counterpart).
    pub tcp_header_cut: u64,
    /// Frames in which each encapsulation was opened, in `wire::fact` bit
    /// order (counters `decap_*`).
    pub decap: [u64; ENCAP_KINDS as usize],
}

impl FrameCounters {
    pub fn count(&mut self, outcome: &FrameOutcome, info: FrameInfo) {
        self.frames += 1;
        let record = matches!(outcome, FrameOutcome::Record(_));
        match outcome {
            FrameOutcome::Record(_) => self.records += 1,
            FrameOutcome::NonIp => self.non_ip += 1,
            FrameOutcome::NonTcp => self.non_tcp += 1,
            FrameOutcome::Malformed => self.malformed += 1,
            FrameOutcome::Fragment => self.fragments_skipped += 1,
            FrameOutcome::TooDeep => self.too_deep += 1,
        }
        self.tcp_header_cut += u64::from(record && info.tcp_header_cut);
        for (bit, counter) in FACT_COUNTERS {
            if info.facts & bit == 0 || (bit == fact::ANOMALY && !record) {
                continue;
            }
            match counter {
                Counter::Ipv6 => self.ipv6 += 1,
                Counter::VlanTagged => self.vlan_tagged += 1,
                Counter::HeaderAnomalies => self.header_anomalies += 1,
                Counter::FirstFragments => self.first_fragments += 1,
                c => self.decap[c as usize - FIRST_ENCAP_COUNTER] += 1,
            }
        }
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
            Counter::TooDeep => self.too_deep,
            Counter::Ipv6 => self.ipv6,
            Counter::VlanTagged => self.vlan_tagged,
            Counter::HeaderAnomalies => self.header_anomalies,
            Counter::FirstFragments => self.first_fragments,
            c if (c as usize) >= FIRST_ENCAP_COUNTER
                && (c as usize) < FIRST_ENCAP_COUNTER + ENCAP_KINDS as usize =>
            {
                self.decap[c as usize - FIRST_ENCAP_COUNTER]
            }
            _ => return None,
        })
    }

    /// The counters the frame parser keeps, with their kernel names.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL
            .into_iter()
            .filter_map(|c| self.get(c).map(|v| (c, v)))
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
    let wire_len = wire_len.max(data.len());
    let frame = Frame { data };
    let mut walk = Walk {
        end: wire_len,
        ip_off: 0,
        ip_v6: false,
        frag: false,
        encaps: 0,
        info: FrameInfo::default(),
    };
    let outcome = match frame.parse(link, &mut walk) {
        Ok(mut record) => {
            record.ts_ns = ts_ns;
            // R9: an attempt's outer Ethernet source, as the kernel records it.
            if link == LinkType::Ethernet
                && slowscan_common::tcp::is_attempt(record.tcp_flags)
                && let Some(mac) = data.get(wire::eth::SRC..wire::eth::SRC + 6)
            {
                record.src_mac.copy_from_slice(mac);
            }
            FrameOutcome::Record(record)
        }
        Err(outcome) => outcome,
    };
    (outcome, walk.info)
}

/// Where a non-Ethernet frame's link header ends, and the EtherType of what
/// follows (IPv4, IPv6 or MPLS): so a capture of another link type can be
/// re-framed as Ethernet, the only framing XDP sees (the differential
/// tests). `None` for Ethernet, and when the link header leads to no such
/// payload.
pub fn network_layer(link: LinkType, data: &[u8]) -> Option<(u16, usize)> {
    if link == LinkType::Ethernet {
        return None;
    }
    let mut walk = Walk {
        end: data.len(),
        ip_off: 0,
        ip_v6: false,
        frag: false,
        encaps: 0,
        info: FrameInfo::default(),
    };
    let frame = Frame { data };
    match frame.link_header(link, &mut walk).ok()? {
        Next::Ether(ether_type, off) => Some((ether_type, off)),
        Next::Ipv4(off) => Some((ETH_P_IP, off)),
        Next::Ipv6(off) => Some((ETH_P_IPV6, off)),
        Next::Mpls(off) => Some((ETH_P_MPLS_UC, off)),
        _ => None,
    }
}

/// Parse steps return the failing outcome as `Err` so `?` ends the walk.
type Step<T> = Result<T, FrameOutcome>;

/// Where the walk goes next: one header per step (docs/parsing.md).
#[derive(Clone, Copy, Debug)]
enum Next {
    /// An Ethernet header and its VLAN tags.
    Eth(usize),
    /// What an EtherType (or a link header's protocol field) announced.
    Ether(u16, usize),
    Ipv4(usize),
    Ipv6(usize),
    /// The payload of the current IP header, by protocol number.
    IpPayload(u8, usize),
    /// An MPLS label stack.
    Mpls(usize),
    /// The TCP header of the current IP header.
    Tcp(usize),
}

/// The walk's state between steps.
struct Walk {
    /// Wire end (absolute offset) of the innermost datagram read so far: the
    /// frame's wire length until an IP header says otherwise.
    end: usize,
    /// The innermost IP header: its offset and family.
    ip_off: usize,
    ip_v6: bool,
    /// Inside a first fragment: the datagram's end cuts what follows.
    frag: bool,
    encaps: u8,
    info: FrameInfo,
}

impl Walk {
    fn fact(&mut self, bit: u32) {
        self.info.facts |= bit;
    }

    /// Opens one more encapsulation, if the bound allows.
    fn encap(&mut self, bit: u32) -> Step<()> {
        if self.encaps >= MAX_ENCAPS {
            return Err(FrameOutcome::TooDeep);
        }
        self.encaps += 1;
        self.fact(bit);
        Ok(())
    }
}

struct Frame<'a> {
    data: &'a [u8],
}

fn is_vlan(ether_type: u16) -> bool {
    matches!(ether_type, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100)
}

impl Frame<'_> {
    /// `len` bytes from `off` on: a header past `MAX_HEADER_OFFSET` is
    /// `TooDeep`, one not captured whole `Malformed` (the kernel's read
    /// checks, in the same order).
    fn need(&self, off: usize, len: usize) -> Step<()> {
        if off > MAX_HEADER_OFFSET {
            return Err(FrameOutcome::TooDeep);
        }
        match off.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok(()),
            _ => Err(FrameOutcome::Malformed),
        }
    }

    /// The byte at `off` (already checked by `need`).
    fn u8(&self, off: usize) -> u8 {
        self.data[off]
    }

    fn u16(&self, off: usize) -> u16 {
        u16::from_be_bytes([self.data[off], self.data[off + 1]])
    }

    fn parse(&self, link: LinkType, w: &mut Walk) -> Step<PacketRecord> {
        let mut next = self.link_header(link, w)?;
        for _ in 0..MAX_STEPS {
            next = match next {
                Next::Eth(off) => self.ethernet(off, w)?,
                Next::Ether(ether_type, off) => self.ether_type(ether_type, off, w)?,
                Next::Ipv4(off) => self.ipv4(off, w)?,
                Next::Ipv6(off) => self.ipv6(off, w)?,
                Next::IpPayload(proto, off) => self.ip_payload(proto, off, w)?,
                Next::Mpls(off) => self.mpls(off)?,
                Next::Tcp(off) => return self.tcp(off, w),
            };
        }
        // Unreachable: every step either ends the walk or, within
        // MAX_STEPS, opens an encapsulation, which MAX_ENCAPS bounds.
        Err(FrameOutcome::TooDeep)
    }

    /// The link header: where the walk starts.
    fn link_header(&self, link: LinkType, w: &mut Walk) -> Step<Next> {
        match link {
            LinkType::Ethernet => Ok(Next::Eth(0)),
            LinkType::LinuxSll => {
                self.need(0, 16)?;
                Ok(Next::Ether(self.u16(14), 16))
            }
            LinkType::LinuxSll2 => {
                self.need(0, 20)?;
                Ok(Next::Ether(self.u16(0), 20))
            }
            LinkType::RawIp => {
                self.need(0, 1)?;
                match self.u8(0) >> 4 {
                    4 => Ok(Next::Ipv4(0)),
                    6 => Ok(Next::Ipv6(0)),
                    _ => Err(FrameOutcome::NonIp),
                }
            }
            LinkType::Ipv4 => Ok(Next::Ipv4(0)),
            LinkType::Ipv6 => Ok(Next::Ipv6(0)),
            LinkType::Null => {
                self.need(0, 4)?;
                // The family is in the capturing host's byte order, which the
                // file does not record; real values are small, so a value
                // with high bits set was written big-endian.
                let b = [self.u8(0), self.u8(1), self.u8(2), self.u8(3)];
                let mut family = u32::from_le_bytes(b);
                if family > 0xFFFF {
                    family = family.swap_bytes();
                }
                match family {
                    2 => Ok(Next::Ipv4(4)),
                    24 | 28 | 30 => Ok(Next::Ipv6(4)),
                    _ => Err(FrameOutcome::NonIp),
                }
            }
            LinkType::Ppp => self.ppp(w),
            LinkType::CiscoHdlc => {
                self.need(0, 4)?;
                Ok(Next::Ether(self.u16(2), 4))
            }
            LinkType::Nflog => self.nflog(w),
            LinkType::IpOverIb => {
                self.need(0, IPOIB_HLEN)?;
                Ok(Next::Ether(self.u16(IPOIB_HLEN - 4), IPOIB_HLEN))
            }
            LinkType::Ieee80211 => self.ieee80211(0, false),
            LinkType::Radiotap => self.radiotap(),
        }
    }

    /// Ethernet steps 1–2: the header, then up to `MAX_VLAN_TAGS` tags.
    fn ethernet(&self, off: usize, w: &mut Walk) -> Step<Next> {
        self.need(off, wire::eth::HLEN)?;
        let mut ether_type = self.u16(off + wire::eth::TYPE);
        let mut off = off + wire::eth::HLEN;
        if is_vlan(ether_type) {
            // Counted as tagged even if the tag turns out cut short.
            w.fact(fact::VLAN);
            for _ in 0..MAX_VLAN_TAGS {
                if !is_vlan(ether_type) {
                    break;
                }
                self.need(off, wire::eth::VLAN_HLEN)?;
                ether_type = self.u16(off + wire::eth::VLAN_TYPE);
                off += wire::eth::VLAN_HLEN;
                w.info.vlan_tags = w.info.vlan_tags.saturating_add(1);
            }
            if is_vlan(ether_type) {
                return Err(FrameOutcome::TooDeep);
            }
        }
        Ok(Next::Ether(ether_type, off))
    }

    /// Ethernet step 3: what the EtherType announces.
    fn ether_type(&self, ether_type: u16, off: usize, w: &mut Walk) -> Step<Next> {
        match ether_type {
            ETH_P_IP => Ok(Next::Ipv4(off)),
            ETH_P_IPV6 => Ok(Next::Ipv6(off)),
            ETH_P_MPLS_UC | ETH_P_MPLS_MC => {
                w.encap(fact::MPLS)?;
                Ok(Next::Mpls(off))
            }
            ETH_P_PPP_SES => {
                w.encap(fact::PPPOE)?;
                self.need(off, wire::pppoe::HLEN)?;
                if self.u8(off) != wire::pppoe::VER_TYPE
                    || self.u8(off + 1) != wire::pppoe::CODE_SESSION
                {
                    return Err(FrameOutcome::NonIp);
                }
                match self.ppp_protocol(off + wire::pppoe::HLEN)? {
                    (PPP_IP, inner) => Ok(Next::Ipv4(inner)),
                    (PPP_IPV6, inner) => Ok(Next::Ipv6(inner)),
                    _ => Err(FrameOutcome::NonIp),
                }
            }
            ETH_P_8021AH => {
                w.encap(fact::PBB)?;
                Ok(Next::Eth(off + wire::pbb::ITAG_LEN))
            }
            _ => Err(FrameOutcome::NonIp),
        }
    }

    /// An MPLS label stack, then what its first payload nibble says.
    fn mpls(&self, mut off: usize) -> Step<Next> {
        let mut bottom = false;
        for _ in 0..MAX_MPLS_LABELS {
            self.need(off, wire::mpls::LABEL_LEN)?;
            bottom = self.u8(off + wire::mpls::BOS_BYTE) & wire::mpls::BOS != 0;
            off += wire::mpls::LABEL_LEN;
            if bottom {
                break;
            }
        }
        if !bottom {
            return Err(FrameOutcome::TooDeep);
        }
        self.need(off, 1)?;
        match self.u8(off) >> 4 {
            4 => Ok(Next::Ipv4(off)),
            6 => Ok(Next::Ipv6(off)),
            // An Ethernet pseudowire behind its control word.
            0 => Ok(Next::Eth(off + wire::mpls::CONTROL_WORD_LEN)),
            _ => Err(FrameOutcome::NonIp),
        }
    }

    /// IPv4 steps.
    fn ipv4(&self, off: usize, w: &mut Walk) -> Step<Next> {
        use wire::ipv4::*;
        self.need(off, HLEN)?;
        let ver_ihl = self.u8(off + VER_IHL);
        let ihl = usize::from(ver_ihl & 0x0F) * 4;
        if ver_ihl >> 4 != 4 || ihl < HLEN {
            return Err(FrameOutcome::Malformed);
        }
        self.need(off, ihl)?;
        let total = usize::from(self.u16(off + TOT_LEN));
        let end = if total < ihl {
            // Short of its own header (0 in segmentation-offload captures):
            // the datagram runs to the end of the frame.
            w.fact(fact::ANOMALY);
            w.end
        } else if off + total > w.end {
            // Past the frame: expected inside a first fragment, else an anomaly.
            if !w.frag {
                w.fact(fact::ANOMALY);
            }
            w.end
        } else {
            off + total
        };
        let frag = self.u16(off + FRAG);
        let first_fragment = frag & FRAG_OFFSET_MASK == 0 && frag & MORE_FRAGMENTS != 0;
        if first_fragment {
            w.fact(fact::FIRST_FRAGMENT);
            w.frag = true;
        }
        let proto = self.u8(off + PROTO);
        if !matches!(
            proto,
            IPPROTO_TCP | IPPROTO_IPIP | IPPROTO_IPV6 | IPPROTO_GRE | IPPROTO_UDP
        ) {
            return Err(FrameOutcome::NonTcp);
        }
        if frag & FRAG_OFFSET_MASK != 0 {
            // A later fragment: its UDP ports (a tunnel's, maybe) are elsewhere.
            return Err(if proto == IPPROTO_UDP {
                FrameOutcome::NonTcp
            } else {
                FrameOutcome::Fragment
            });
        }
        w.end = end;
        w.ip_off = off;
        w.ip_v6 = false;
        Ok(Next::IpPayload(proto, off + ihl))
    }

    /// IPv6 steps.
    fn ipv6(&self, off: usize, w: &mut Walk) -> Step<Next> {
        use wire::ipv6::*;
        // Counted once an IPv6 header is announced, even one cut short.
        w.fact(fact::IPV6);
        self.need(off, HLEN)?;
        if self.u8(off) >> 4 != 6 {
            return Err(FrameOutcome::Malformed);
        }
        let payload = usize::from(self.u16(off + PAYLOAD_LEN));
        let end = if payload == 0 {
            // A jumbogram or a segmentation-offload capture: to the frame's end.
            w.fact(fact::ANOMALY);
            w.end
        } else if off + HLEN + payload > w.end {
            if !w.frag {
                w.fact(fact::ANOMALY);
            }
            w.end
        } else {
            off + HLEN + payload
        };
        let mut next = self.u8(off + NEXT);
        let mut cur = off + HLEN;
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            match next {
                IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                    self.need(cur, 2)?;
                    next = self.u8(cur + EXT_NEXT);
                    cur += (usize::from(self.u8(cur + EXT_LEN)) + 1) * EXT_UNIT;
                }
                IPPROTO_FRAGMENT => {
                    self.need(cur, FRAG_HLEN)?;
                    let frag = self.u16(cur + FRAG_OFF);
                    if frag >> 3 != 0 {
                        return Err(FrameOutcome::Fragment);
                    }
                    if frag & FRAG_MORE != 0 {
                        w.fact(fact::FIRST_FRAGMENT);
                        w.frag = true;
                    }
                    next = self.u8(cur + EXT_NEXT);
                    cur += FRAG_HLEN;
                }
                _ => break,
            }
        }
        if matches!(
            next,
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT | IPPROTO_DSTOPTS
        ) {
            return Err(FrameOutcome::TooDeep);
        }
        if !matches!(
            next,
            IPPROTO_TCP | IPPROTO_IPIP | IPPROTO_IPV6 | IPPROTO_GRE | IPPROTO_UDP
        ) {
            return Err(FrameOutcome::NonTcp);
        }
        w.end = end;
        w.ip_off = off;
        w.ip_v6 = true;
        Ok(Next::IpPayload(next, cur))
    }

    /// What an IP header carries: TCP, or a tunnel to open.
    fn ip_payload(&self, proto: u8, off: usize, w: &mut Walk) -> Step<Next> {
        match proto {
            IPPROTO_TCP => Ok(Next::Tcp(off)),
            IPPROTO_IPIP => {
                w.encap(fact::IP_IN_IP)?;
                Ok(Next::Ipv4(off))
            }
            IPPROTO_IPV6 => {
                w.encap(fact::IP_IN_IP)?;
                Ok(Next::Ipv6(off))
            }
            IPPROTO_GRE => self.gre(off, w),
            IPPROTO_UDP => self.udp(off, w),
            _ => Err(FrameOutcome::NonTcp),
        }
    }

    /// GRE (version 0): IP, Ethernet (transparent bridging), MPLS, ERSPAN.
    fn gre(&self, off: usize, w: &mut Walk) -> Step<Next> {
        use wire::gre::*;
        self.need(off, HLEN)?;
        let flags = self.u8(off);
        if self.u8(off + 1) & VERSION_MASK != 0 || flags & F_ROUTING != 0 {
            return Err(FrameOutcome::NonTcp);
        }
        let opt = |bit: u8| if flags & bit != 0 { OPT_LEN } else { 0 };
        let inner = off + HLEN + opt(F_CSUM) + opt(F_KEY) + opt(F_SEQ);
        match self.u16(off + PROTO) {
            ETH_P_IP => {
                w.encap(fact::GRE)?;
                Ok(Next::Ipv4(inner))
            }
            ETH_P_IPV6 => {
                w.encap(fact::GRE)?;
                Ok(Next::Ipv6(inner))
            }
            ETH_P_TEB => {
                w.encap(fact::GRE)?;
                Ok(Next::Eth(inner))
            }
            ETH_P_MPLS_UC => {
                w.encap(fact::GRE)?;
                Ok(Next::Mpls(inner))
            }
            ETH_P_ERSPAN => {
                w.encap(fact::ERSPAN)?;
                if flags & F_SEQ == 0 {
                    // Type I: the mirrored frame follows GRE at once.
                    return Ok(Next::Eth(inner));
                }
                self.need(inner, wire::erspan::II_HLEN)?;
                if self.u8(inner) >> 4 != wire::erspan::II_VERSION {
                    return Err(FrameOutcome::NonTcp);
                }
                Ok(Next::Eth(inner + wire::erspan::II_HLEN))
            }
            ETH_P_ERSPAN3 => {
                use wire::erspan::*;
                w.encap(fact::ERSPAN)?;
                self.need(inner, III_HLEN)?;
                if self.u8(inner) >> 4 != III_VERSION {
                    return Err(FrameOutcome::NonTcp);
                }
                let sub = if self.u8(inner + III_FLAGS) & III_O != 0 {
                    III_SUBHDR_LEN
                } else {
                    0
                };
                Ok(Next::Eth(inner + III_HLEN + sub))
            }
            _ => Err(FrameOutcome::NonTcp),
        }
    }

    /// UDP: the tunnels known by their destination port.
    fn udp(&self, off: usize, w: &mut Walk) -> Step<Next> {
        self.need(off, wire::udp::HLEN)?;
        let t = off + wire::udp::HLEN;
        match self.u16(off + wire::udp::DPORT) {
            UDP_PORT_VXLAN => {
                w.encap(fact::VXLAN)?;
                self.need(t, wire::vxlan::HLEN)?;
                if self.u8(t) & wire::vxlan::FLAG_I == 0 {
                    return Err(FrameOutcome::NonTcp);
                }
                Ok(Next::Eth(t + wire::vxlan::HLEN))
            }
            UDP_PORT_GENEVE => {
                use wire::geneve::*;
                w.encap(fact::GENEVE)?;
                self.need(t, HLEN)?;
                let b0 = self.u8(t);
                if b0 >> 6 != 0 {
                    return Err(FrameOutcome::NonTcp);
                }
                let inner = t + HLEN + usize::from(b0 & OPT_LEN_MASK) * OPT_UNIT;
                match self.u16(t + PROTO) {
                    ETH_P_TEB => Ok(Next::Eth(inner)),
                    ETH_P_IP => Ok(Next::Ipv4(inner)),
                    ETH_P_IPV6 => Ok(Next::Ipv6(inner)),
                    _ => Err(FrameOutcome::NonTcp),
                }
            }
            UDP_PORT_GTPU => {
                w.encap(fact::GTPU)?;
                self.gtpu(t)
            }
            _ => Err(FrameOutcome::NonTcp),
        }
    }

    /// GTP-U: a T-PDU's IP packet, past the optional fields and extension headers.
    fn gtpu(&self, off: usize) -> Step<Next> {
        use wire::gtpu::*;
        self.need(off, HLEN)?;
        let flags = self.u8(off);
        if flags & VERSION_PT_MASK != VERSION_PT || self.u8(off + MSG_TYPE) != MSG_GPDU {
            return Err(FrameOutcome::NonTcp);
        }
        let mut g = off + HLEN;
        if flags & F_OPTIONAL != 0 {
            self.need(g, OPT_LEN)?;
            let mut ext = if flags & F_EXT != 0 {
                self.u8(g + OPT_LEN - 1)
            } else {
                0
            };
            g += OPT_LEN;
            for _ in 0..MAX_GTPU_EXT_HEADERS {
                if ext == 0 {
                    break;
                }
                self.need(g, 1)?;
                let len = usize::from(self.u8(g)) * EXT_UNIT;
                if len == 0 {
                    return Err(FrameOutcome::Malformed);
                }
                self.need(g + len - 1, 1)?;
                ext = self.u8(g + len - 1);
                g += len;
            }
            if ext != 0 {
                return Err(FrameOutcome::TooDeep);
            }
        }
        self.need(g, 1)?;
        match self.u8(g) >> 4 {
            4 => Ok(Next::Ipv4(g)),
            6 => Ok(Next::Ipv6(g)),
            _ => Err(FrameOutcome::NonTcp),
        }
    }

    /// TCP steps: the ports, sequence number and flags must lie in the
    /// datagram and in the captured bytes; the data offset is only judged.
    fn tcp(&self, off: usize, w: &mut Walk) -> Step<PacketRecord> {
        use wire::tcp::*;
        if off + FIELDS_LEN > w.end {
            // Not in this datagram: in a later fragment, or nowhere.
            return Err(if w.frag {
                FrameOutcome::Fragment
            } else {
                FrameOutcome::Malformed
            });
        }
        self.need(off, FIELDS_LEN)?;
        let hdr_len = usize::from(self.u8(off + DOFF) >> 4) * 4;
        if hdr_len < MIN_HLEN {
            w.fact(fact::ANOMALY);
        } else if off + hdr_len > w.end {
            // Options running on into the next fragment are no anomaly.
            if !w.frag {
                w.fact(fact::ANOMALY);
            }
        } else if off + hdr_len > self.data.len() {
            w.info.tcp_header_cut = true;
        }
        let mut rec = PacketRecord {
            src_port: self.u16(off + SPORT),
            dst_port: self.u16(off + DPORT),
            seq: u32::from_be_bytes([
                self.u8(off + SEQ),
                self.u8(off + SEQ + 1),
                self.u8(off + SEQ + 2),
                self.u8(off + SEQ + 3),
            ]),
            tcp_flags: self.u8(off + FLAGS),
            vlan_tags: w.info.vlan_tags,
            ..PacketRecord::default()
        };
        let ip = w.ip_off;
        if w.ip_v6 {
            use wire::ipv6::{DADDR, SADDR};
            rec.family = AF_INET6;
            rec.src_addr
                .copy_from_slice(&self.data[ip + SADDR..ip + SADDR + 16]);
            rec.dst_addr
                .copy_from_slice(&self.data[ip + DADDR..ip + DADDR + 16]);
        } else {
            use wire::ipv4::{DADDR, SADDR};
            rec.family = AF_INET;
            rec.src_addr[..4].copy_from_slice(&self.data[ip + SADDR..ip + SADDR + 4]);
            rec.dst_addr[..4].copy_from_slice(&self.data[ip + DADDR..ip + DADDR + 4]);
        }
        Ok(rec)
    }

    // -----------------------------------------------------------------------
    // Link headers only captures have (the kernel sees Ethernet)

    /// PPP (link type 9): optional address and control bytes (FF 03), a
    /// protocol field of one byte (odd) or two. Cisco HDLC frames (address
    /// 0x0F or 0x8F) in a PPP capture are read as such.
    fn ppp(&self, w: &mut Walk) -> Step<Next> {
        self.need(0, 1)?;
        let first = self.u8(0);
        if first == CHDLC_UNICAST || first == CHDLC_MULTICAST {
            self.need(0, 4)?;
            return Ok(Next::Ether(self.u16(2), 4));
        }
        let mut off = 0;
        if first == 0xFF {
            self.need(0, 2)?;
            if self.u8(1) != 0x03 {
                return Err(FrameOutcome::NonIp);
            }
            off = 2;
        }
        let (proto, off) = self.ppp_protocol(off)?;
        match proto {
            PPP_IP => Ok(Next::Ipv4(off)),
            PPP_IPV6 => Ok(Next::Ipv6(off)),
            PPP_MPLS_UC => {
                w.encap(fact::MPLS)?;
                Ok(Next::Mpls(off))
            }
            _ => Err(FrameOutcome::NonIp),
        }
    }

    /// A PPP protocol field: one byte when compressed (odd), else two.
    /// Returns the protocol and the offset of what it announces.
    fn ppp_protocol(&self, off: usize) -> Step<(u16, usize)> {
        self.need(off, 1)?;
        if self.u8(off) & 1 != 0 {
            return Ok((u16::from(self.u8(off)), off + 1));
        }
        self.need(off, 2)?;
        Ok((self.u16(off), off + 2))
    }

    /// NFLOG (link type 239): a 4-byte header (address family first), then
    /// TLVs (length and type in the capturing host's byte order, lengths
    /// padded to 4); the packet is the payload TLV.
    fn nflog(&self, w: &Walk) -> Step<Next> {
        self.need(0, NFLOG_HLEN + 4)?;
        let family = self.u8(0);
        // The first TLV's type is small in the right byte order.
        let little = u16::from_le_bytes([self.u8(6), self.u8(7)]) & NFLOG_TYPE_MASK < 0x100;
        let u16_host = |off: usize| {
            let b = [self.u8(off), self.u8(off + 1)];
            if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let mut off = NFLOG_HLEN;
        for _ in 0..MAX_NFLOG_TLVS {
            if off == w.end {
                break; // no payload TLV (past the end is `need`'s `Malformed`)
            }
            self.need(off, 4)?;
            let len = usize::from(u16_host(off));
            if len < 4 {
                return Err(FrameOutcome::Malformed);
            }
            if u16_host(off + 2) & NFLOG_TYPE_MASK == NFULA_PAYLOAD {
                let ip = off + 4;
                return match family {
                    2 => Ok(Next::Ipv4(ip)),
                    10 => Ok(Next::Ipv6(ip)),
                    _ => {
                        self.need(ip, 1)?;
                        match self.u8(ip) >> 4 {
                            4 => Ok(Next::Ipv4(ip)),
                            6 => Ok(Next::Ipv6(ip)),
                            _ => Err(FrameOutcome::NonIp),
                        }
                    }
                };
            }
            off += len.next_multiple_of(4);
        }
        Err(FrameOutcome::NonIp)
    }

    /// Radiotap (link type 127): its length field (little-endian) skips it;
    /// its flags say whether the 802.11 header is padded to 4 bytes.
    fn radiotap(&self) -> Step<Next> {
        self.need(0, 8)?;
        if self.u8(0) != 0 {
            return Err(FrameOutcome::Malformed);
        }
        let len = usize::from(u16::from_le_bytes([self.u8(2), self.u8(3)]));
        let word = |off: usize| {
            u32::from_le_bytes([
                self.u8(off),
                self.u8(off + 1),
                self.u8(off + 2),
                self.u8(off + 3),
            ])
        };
        let present = word(4);
        // Extended presence bitmaps chain on bit 31; fields follow them.
        let mut fields = 8;
        let mut last = present;
        for _ in 0..RADIOTAP_MAX_PRESENT {
            if last & (1 << 31) == 0 {
                break;
            }
            self.need(fields, 4)?;
            last = word(fields);
            fields += 4;
        }
        let mut datapad = false;
        if present & RADIOTAP_FLAGS != 0 {
            let mut at = fields;
            if present & RADIOTAP_TSFT != 0 {
                at = at.next_multiple_of(8) + 8;
            }
            self.need(at, 1)?;
            datapad = self.u8(at) & RADIOTAP_F_DATAPAD != 0;
        }
        if len < fields {
            return Err(FrameOutcome::Malformed);
        }
        self.ieee80211(len, datapad)
    }

    /// An 802.11 data frame (link type 105, or behind radiotap): its header
    /// (three or four addresses, QoS and HT control), then LLC/SNAP and an
    /// EtherType. Management, control, null-data, protected (encrypted)
    /// and A-MSDU frames carry nothing readable: `NonIp`.
    fn ieee80211(&self, off: usize, datapad: bool) -> Step<Next> {
        self.need(off, WLAN_HLEN)?;
        let fc0 = self.u8(off);
        let fc1 = self.u8(off + 1);
        let (version, kind, subtype) = (fc0 & 0x03, (fc0 >> 2) & 0x03, fc0 >> 4);
        if version != 0 || kind != WLAN_TYPE_DATA || subtype & WLAN_SUBTYPE_NODATA != 0 {
            return Err(FrameOutcome::NonIp);
        }
        if fc1 & WLAN_FC1_PROTECTED != 0 {
            return Err(FrameOutcome::NonIp);
        }
        let mut hdr = WLAN_HLEN;
        if fc1 & 0x03 == 0x03 {
            hdr += 6; // a fourth address (to and from the distribution system)
        }
        if subtype & WLAN_SUBTYPE_QOS != 0 {
            self.need(off + hdr, 2)?;
            if self.u8(off + hdr) & WLAN_QOS_AMSDU != 0 {
                return Err(FrameOutcome::NonIp);
            }
            hdr += 2;
            if fc1 & WLAN_FC1_ORDER != 0 {
                hdr += 4; // HT control
            }
        }
        if datapad {
            hdr = hdr.next_multiple_of(4);
        }
        let llc = off + hdr;
        self.need(llc, 8)?;
        let snap = [self.u8(llc), self.u8(llc + 1), self.u8(llc + 2)];
        let oui = [self.u8(llc + 3), self.u8(llc + 4), self.u8(llc + 5)];
        if snap != [0xAA, 0xAA, 0x03] || !(oui == [0, 0, 0] || oui == [0, 0, 0xF8]) {
            return Err(FrameOutcome::NonIp);
        }
        Ok(Next::Ether(self.u16(llc + 6), llc + 8))
    }
}
