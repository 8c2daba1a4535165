//! Wire constants and the bounds of the parsing contract (docs/parsing.md),
//! one definition for the kernel parser and the userspace one: EtherTypes,
//! protocol numbers and ports, each header's length and field offsets, the
//! bounds of every walk, and the facts a parser notes about a frame.

// ---------------------------------------------------------------------------
// EtherTypes (also the protocol fields of GRE, Geneve and Cisco HDLC)

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
/// 802.1Q VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// 802.1ad service tag (QinQ).
pub const ETH_P_8021AD: u16 = 0x88A8;
/// Pre-standard QinQ service tag some switches still send.
pub const ETH_P_QINQ_9100: u16 = 0x9100;
/// 802.1ah provider backbone bridging: an I-TAG, then a whole Ethernet header.
pub const ETH_P_8021AH: u16 = 0x88E7;
pub const ETH_P_MPLS_UC: u16 = 0x8847;
pub const ETH_P_MPLS_MC: u16 = 0x8848;
/// PPPoE session stage (the discovery stage, 0x8863, carries no IP).
pub const ETH_P_PPP_SES: u16 = 0x8864;
/// Transparent Ethernet bridging: GRE (and Geneve) carrying an Ethernet frame.
pub const ETH_P_TEB: u16 = 0x6558;
/// ERSPAN type I and II (GRE protocol).
pub const ETH_P_ERSPAN: u16 = 0x88BE;
/// ERSPAN type III (GRE protocol).
pub const ETH_P_ERSPAN3: u16 = 0x22EB;

// ---------------------------------------------------------------------------
// IP protocol numbers (IPv4 protocol, IPv6 next header)

pub const IPPROTO_HOPOPTS: u8 = 0;
/// IPv4 in IP (IPv4-in-IPv4, 4in6).
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 in IP (6in4, 6in6).
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_DSTOPTS: u8 = 60;

// ---------------------------------------------------------------------------
// UDP destination ports of the tunnels that are opened

pub const UDP_PORT_VXLAN: u16 = 4789;
pub const UDP_PORT_GENEVE: u16 = 6081;
pub const UDP_PORT_GTPU: u16 = 2152;

// ---------------------------------------------------------------------------
// PPP protocol numbers (PPPoE sessions, PPP captures)

pub const PPP_IP: u16 = 0x0021;
pub const PPP_IPV6: u16 = 0x0057;
pub const PPP_MPLS_UC: u16 = 0x0281;

// ---------------------------------------------------------------------------
// Headers: lengths and field offsets

pub mod eth {
    /// Destination and source MAC addresses, then the EtherType.
    pub const HLEN: usize = 14;
    /// The source MAC (6 bytes).
    pub const SRC: usize = 6;
    pub const TYPE: usize = 12;
    /// A VLAN tag: TCI (2 bytes), then the next EtherType.
    pub const VLAN_HLEN: usize = 4;
    pub const VLAN_TYPE: usize = 2;
}

pub mod ipv4 {
    pub const HLEN: usize = 20;
    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    pub const TOT_LEN: usize = 2;
    /// Flags and fragment offset.
    pub const FRAG: usize = 6;
    pub const FRAG_OFFSET_MASK: u16 = 0x1FFF;
    pub const MORE_FRAGMENTS: u16 = 0x2000;
    pub const PROTO: usize = 9;
    pub const SADDR: usize = 12;
    pub const DADDR: usize = 16;
}

pub mod ipv6 {
    pub const HLEN: usize = 40;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT: usize = 6;
    pub const SADDR: usize = 8;
    pub const DADDR: usize = 24;
    /// Hop-by-hop, routing, destination options: next header, length in
    /// 8-byte units not counting the first 8.
    pub const EXT_NEXT: usize = 0;
    pub const EXT_LEN: usize = 1;
    pub const EXT_UNIT: usize = 8;
    /// The fragment header: next header, reserved, offset (× 8) and M flag.
    pub const FRAG_HLEN: usize = 8;
    pub const FRAG_OFF: usize = 2;
    pub const FRAG_MORE: u16 = 0x0001;
}

pub mod tcp {
    pub const SPORT: usize = 0;
    pub const DPORT: usize = 2;
    pub const SEQ: usize = 4;
    /// Data offset in 32-bit words (high nibble).
    pub const DOFF: usize = 12;
    pub const FLAGS: usize = 13;
    /// Bytes that hold the ports, the sequence number and the flags: what
    /// must be captured for a segment to count (R2.1).
    pub const FIELDS_LEN: usize = 14;
    /// The shortest TCP header a data offset may claim (5 words).
    pub const MIN_HLEN: usize = 20;
}

pub mod udp {
    pub const HLEN: usize = 8;
    pub const DPORT: usize = 2;
}

pub mod gre {
    /// Flags and version (2 bytes), protocol (2 bytes).
    pub const HLEN: usize = 4;
    pub const PROTO: usize = 2;
    /// First byte: checksum present, routing present, key present,
    /// sequence number present. Each present field is 4 bytes (checksum and
    /// routing share one word).
    pub const F_CSUM: u8 = 0x80;
    pub const F_ROUTING: u8 = 0x40;
    pub const F_KEY: u8 = 0x20;
    pub const F_SEQ: u8 = 0x10;
    /// Second byte: the version (0; 1 is PPTP's enhanced GRE, not opened).
    pub const VERSION_MASK: u8 = 0x07;
    pub const OPT_LEN: usize = 4;
}

pub mod erspan {
    /// Type II header (GRE protocol 0x88BE with a sequence number); version 1.
    pub const II_HLEN: usize = 8;
    pub const II_VERSION: u8 = 1;
    /// Type III header (GRE protocol 0x22EB); version 2.
    pub const III_HLEN: usize = 12;
    pub const III_VERSION: u8 = 2;
    /// Byte of the type III header holding the O flag (bit 0): an 8-byte
    /// platform-specific subheader follows.
    pub const III_FLAGS: usize = 11;
    pub const III_O: u8 = 0x01;
    pub const III_SUBHDR_LEN: usize = 8;
}

pub mod vxlan {
    pub const HLEN: usize = 8;
    /// First byte: the I flag (a valid VNI) must be set.
    pub const FLAG_I: u8 = 0x08;
}

pub mod geneve {
    /// Version (2 bits, 0) and option length in 4-byte words (6 bits).
    pub const HLEN: usize = 8;
    pub const PROTO: usize = 2;
    pub const OPT_LEN_MASK: u8 = 0x3F;
    pub const OPT_UNIT: usize = 4;
}

pub mod gtpu {
    /// Flags, message type, length, TEID.
    pub const HLEN: usize = 8;
    pub const MSG_TYPE: usize = 1;
    /// Version 1, protocol type GTP: the flags byte's top 4 bits are 0011.
    pub const VERSION_PT_MASK: u8 = 0xF0;
    pub const VERSION_PT: u8 = 0x30;
    /// Extension header, sequence number, N-PDU number flags: any of them
    /// adds 4 bytes (sequence, N-PDU, next extension type).
    pub const F_OPTIONAL: u8 = 0x07;
    pub const F_EXT: u8 = 0x04;
    pub const OPT_LEN: usize = 4;
    /// T-PDU: user data (every other message is signalling).
    pub const MSG_GPDU: u8 = 0xFF;
    /// An extension header's length, in 4-byte units, is its first byte; its
    /// last byte is the next extension type (0: none).
    pub const EXT_UNIT: usize = 4;
}

pub mod mpls {
    pub const LABEL_LEN: usize = 4;
    /// Byte 2 of a label stack entry, bit 0: bottom of stack.
    pub const BOS_BYTE: usize = 2;
    pub const BOS: u8 = 0x01;
    /// An Ethernet pseudowire's control word (first nibble 0).
    pub const CONTROL_WORD_LEN: usize = 4;
}

pub mod pppoe {
    /// Version/type (0x11), code (0 in a session), session id, length; then
    /// the PPP protocol field (two bytes, or one when compressed: odd).
    pub const HLEN: usize = 6;
    pub const VER_TYPE: u8 = 0x11;
    pub const CODE_SESSION: u8 = 0;
}

pub mod pbb {
    /// The 802.1ah I-TAG's TCI (priority, flags, service id); a whole
    /// Ethernet header follows.
    pub const ITAG_LEN: usize = 4;
}

// ---------------------------------------------------------------------------
// Link headers only captures have (the userspace parser; XDP sees Ethernet)

pub mod link {
    /// Cisco HDLC address bytes.
    pub const CHDLC_UNICAST: u8 = 0x0F;
    pub const CHDLC_MULTICAST: u8 = 0x8F;
    /// IP over InfiniBand: a 40-byte pseudo-header, then EtherType and reserved.
    pub const IPOIB_HLEN: usize = 44;
    /// NFLOG: family, version, resource id; TLV types carry a nested flag.
    pub const NFLOG_HLEN: usize = 4;
    pub const NFLOG_TYPE_MASK: u16 = 0x7FFF;
    pub const NFULA_PAYLOAD: u16 = 9;
    pub const MAX_NFLOG_TLVS: usize = 32;
    /// Radiotap presence bits and flags.
    pub const RADIOTAP_TSFT: u32 = 1 << 0;
    pub const RADIOTAP_FLAGS: u32 = 1 << 1;
    pub const RADIOTAP_F_DATAPAD: u8 = 0x20;
    pub const RADIOTAP_MAX_PRESENT: usize = 8;
    /// 802.11: the three-address header, the data frame type, subtype bits
    /// (QoS; no data), frame-control flags (protected, order / HT control), the
    /// QoS control's A-MSDU bit.
    pub const WLAN_HLEN: usize = 24;
    pub const WLAN_TYPE_DATA: u8 = 2;
    pub const WLAN_SUBTYPE_QOS: u8 = 0x08;
    pub const WLAN_SUBTYPE_NODATA: u8 = 0x04;
    pub const WLAN_FC1_PROTECTED: u8 = 0x40;
    pub const WLAN_FC1_ORDER: u8 = 0x80;
    pub const WLAN_QOS_AMSDU: u8 = 0x80;
}

// ---------------------------------------------------------------------------
// Bounds of every walk: what the parsers read at most

/// VLAN tags (802.1Q, 802.1ad, 0x9100) read per Ethernet header; one more is `TooDeep`.
pub const MAX_VLAN_TAGS: u8 = 4;
/// IPv6 extension headers walked per IPv6 header; one more is `TooDeep`.
pub const MAX_IPV6_EXT_HEADERS: u8 = 4;
/// MPLS label stack entries read; a deeper stack is `TooDeep`.
pub const MAX_MPLS_LABELS: u8 = 4;
/// GTP-U extension headers walked; one more is `TooDeep`.
pub const MAX_GTPU_EXT_HEADERS: u8 = 2;
/// Encapsulations opened per frame (GRE, ERSPAN, VXLAN, Geneve, GTP-U, an
/// MPLS stack, a PPPoE session, 802.1ah, IP in IP); one more is `TooDeep`.
pub const MAX_ENCAPS: u8 = 3;
/// Header steps a walk takes at most: each encapsulation adds at most four
/// (a tunnel header, Ethernet, an EtherType, IP) to the five of a plain
/// frame (Ethernet, EtherType, IP, its payload, TCP), so this bound is never
/// what stops a walk; it only makes the loop's bound a constant.
pub const MAX_STEPS: usize = 5 + 4 * MAX_ENCAPS as usize;
/// No header is read that starts past this byte of the frame: `TooDeep`.
/// (It also keeps the kernel's packet offsets in a range the verifier can
/// follow through every layer.)
pub const MAX_HEADER_OFFSET: usize = 512;

// ---------------------------------------------------------------------------
// Facts: noted about a frame on the way, each counted by one counter

/// Facts a parser notes about a frame, as bits: both parsers set the same
/// ones (`slowscan_common::FACT_COUNTERS` names each one's counter).
pub mod fact {
    /// An IPv6 header was announced (any layer), whatever the outcome.
    pub const IPV6: u32 = 1 << 0;
    /// An Ethernet header (any layer) carried a VLAN tag, even one cut short.
    pub const VLAN: u32 = 1 << 1;
    /// A record was read although a header's length field disagreed with
    /// the bytes (R2.1): counted only with a record.
    pub const ANOMALY: u32 = 1 << 2;
    /// An IP header (any layer) was a first fragment (offset 0, more to come).
    pub const FIRST_FRAGMENT: u32 = 1 << 3;
    /// Encapsulations opened, whatever the outcome inside.
    pub const MPLS: u32 = 1 << 4;
    pub const PPPOE: u32 = 1 << 5;
    pub const PBB: u32 = 1 << 6;
    pub const GRE: u32 = 1 << 7;
    pub const ERSPAN: u32 = 1 << 8;
    pub const VXLAN: u32 = 1 << 9;
    pub const GENEVE: u32 = 1 << 10;
    pub const GTPU: u32 = 1 << 11;
    pub const IP_IN_IP: u32 = 1 << 12;
    /// Every encapsulation bit.
    pub const ENCAPS: u32 = MPLS | PPPOE | PBB | GRE | ERSPAN | VXLAN | GENEVE | GTPU | IP_IN_IP;
}
