//! Records shared by the slowscan XDP program (kernel) and its userspace daemon.
//!
//! Every type here is `#[repr(C)]` with explicit padding so that the kernel and
//! userspace agree byte for byte. Rule numbers (R1, R5 …) refer to docs/method.md.
#![cfg_attr(not(feature = "user"), no_std)]

pub mod tcp;
pub mod wire;

/// Bumped whenever a record, key or map layout changes. Pinned maps carry it in
/// their path so a sensor never reuses maps written by an older build.
/// 2: PENDING is an LRU hash map, HINTS slots carry a release count, the
/// ignore-list maps (IGNORE_V4, IGNORE_V6, IGNORE_ACTIVE) exist.
/// 3: the counter block grew (header anomalies, first fragments, too deep,
/// one counter per encapsulation opened).
/// 4: whitelist rules (WHITELIST_PORT_RULES, WHITELIST_ANY_PORT,
/// WHITELIST_RULES_ACTIVE) exist.
/// 5: records carry the frame's source MAC (64 bytes).
pub const FORMAT_VERSION: u32 = 5;

/// Address family values used in records and keys.
pub const AF_INET: u8 = 4;
pub const AF_INET6: u8 = 6;

/// `PacketRecord::status` bit: the kernel could not remember this attempt in
/// its pending table (the insert failed), so its follow-up may never be
/// emitted. Userspace must not count such an attempt as Failed. The table is
/// an LRU map, so being full is not such a failure: the oldest entries give
/// way instead (`Counter::PendingInserted`, and the forgotten count derived
/// from it, say how many).
pub const STATUS_UNTRACKED: u8 = 1;
/// `PacketRecord::status` bit: emitted by the pre-filter as the follow-up that
/// matched a pending attempt (informational; the engine re-checks R5 itself).
pub const STATUS_FOLLOW_UP: u8 = 2;

/// One TCP segment as the detection engine sees it (R2: header fields only).
///
/// Addresses are in network byte order; IPv4 uses the first 4 bytes and leaves
/// the rest zero. Ports and the sequence number are in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct PacketRecord {
    /// Nanoseconds: CLOCK_MONOTONIC (coarse) live, capture time offline.
    pub ts_ns: u64,
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub seq: u32,
    pub src_port: u16,
    pub dst_port: u16,
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// The TCP flags byte (FIN … CWR).
    pub tcp_flags: u8,
    /// `STATUS_*` bits.
    pub status: u8,
    /// VLAN tags read on the way to the TCP header, over every Ethernet
    /// header (outer and tunnelled); each header carries at most
    /// `wire::MAX_VLAN_TAGS`.
    pub vlan_tags: u8,
    /// An attempt's source MAC, from the outermost Ethernet header (zero
    /// without one, and for other segments): who a source is (R9).
    pub src_mac: [u8; 6],
    pub _pad: [u8; 6],
}

impl PacketRecord {
    /// The connection 5-tuple (protocol is always TCP).
    pub fn flow(&self) -> FlowKey {
        FlowKey {
            src_addr: self.src_addr,
            dst_addr: self.dst_addr,
            src_port: self.src_port,
            dst_port: self.dst_port,
            family: self.family,
            _pad0: 0,
            _pad1: 0,
        }
    }

    pub fn is_attempt(&self) -> bool {
        tcp::is_attempt(self.tcp_flags)
    }

    pub fn whitelist_key(&self) -> WhitelistKey {
        WhitelistKey::new(self.family, self.dst_addr, self.dst_port)
    }
}

/// A TCP connection, one direction: the key of a pending Attempt (R5).
/// Aligned to 4 so the kernel fills and hashes it a word at a time.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct FlowKey {
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub family: u8,
    pub _pad0: u8,
    pub _pad1: u16,
}

/// What the kernel remembers about a pending Attempt (pre-filter table).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PendingValue {
    /// The SYN's sequence number S; the follow-up must carry S + 1.
    pub seq: u32,
    pub _pad: u32,
    /// Kernel time of the latest SYN, so userspace can expire old entries.
    pub ts_ns: u64,
}

/// Whitelist entry (R4.2): a destination (address, TCP port).
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct WhitelistKey {
    pub addr: [u8; 16],
    pub port: u16,
    pub family: u8,
    pub _pad: u8,
}

impl WhitelistKey {
    pub const fn new(family: u8, addr: [u8; 16], port: u16) -> Self {
        Self {
            addr,
            port,
            family,
            _pad: 0,
        }
    }
}

/// The data of a whitelist rule's LPM-trie key (R4.4): a 32-bit head
/// (family, a zero byte, the port in network order) that every entry matches
/// in full, then the destination address, matched up to the rule's prefix.
/// An entry's prefix length is therefore [`RULE_HEAD_BITS`] plus the
/// address prefix's. Port-specific rules live in one trie, one entry per port
/// of a range; rules for every port live in another with the port zeroed.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct WhitelistRuleKey {
    pub family: u8,
    pub _pad: u8,
    pub port_be: [u8; 2],
    pub addr: [u8; 16],
}

/// Bits of a [`WhitelistRuleKey`] before the address.
pub const RULE_HEAD_BITS: u32 = 32;

impl WhitelistRuleKey {
    /// `port` 0 is the any-port trie's key.
    pub const fn new(family: u8, addr: [u8; 16], port: u16) -> Self {
        Self {
            family,
            _pad: 0,
            port_be: port.to_be_bytes(),
            addr,
        }
    }

    pub const fn port(&self) -> u16 {
        u16::from_be_bytes(self.port_be)
    }
}

/// Load-time switches, globals in the program's read-only data: the verifier
/// sees them as constants and prunes the branch not taken.
pub mod globals {
    /// Non-zero: emit every non-whitelisted TCP segment instead of only
    /// attempts and their first candidate follow-ups (validation mode).
    pub const PREFILTER_OFF: &str = "PREFILTER_OFF";
    /// Non-zero: dedicated mirror/SPAN port, drop every frame after inspection.
    pub const MIRROR: &str = "MIRROR";
}

/// Per-CPU counters kept by the kernel program, one array slot each.
/// A ring buffer never reports its own losses, so the program counts them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Frames = 0,
    NonIp,
    NonTcp,
    Malformed,
    FragmentsSkipped,
    Whitelisted,
    AttemptsEmitted,
    FollowUpsEmitted,
    OtherEmitted,
    RingFull,
    /// An attempt the pending table could not take (its record carries
    /// `STATUS_UNTRACKED`). With the LRU table only an allocation failure
    /// does this; a full table evicts its oldest entries instead.
    PendingInsertFailed,
    Ipv6,
    VlanTagged,
    /// Records suppressed because the source is on the ignore list (R4.6):
    /// attempts, and follow-ups of attempts pending from before the source
    /// was ignored (or, pre-filter off, every segment).
    Ignored,
    /// New entries inserted into the pending table (an attempt on a 5-tuple
    /// not pending yet).
    PendingInserted,
    /// Pending entries removed by their follow-up (emitted or suppressed).
    /// `inserted − resolved − swept − entries` is what the LRU forgot.
    PendingResolved,
    /// Records read although a header's length field disagreed with the
    /// frame (R2.1: an IP length past the frame or short of its own
    /// headers, a TCP data offset below 5 or past the datagram).
    HeaderAnomalies,
    /// Frames with an IP first fragment (offset 0, more fragments): read.
    FirstFragments,
    /// Frames not read because they go deeper than the parsers' bounds
    /// (VLAN tags, MPLS labels, extension headers, encapsulations, header
    /// bytes: `wire::MAX_*`).
    TooDeep,
    /// Frames in which an encapsulation was opened, one counter each
    /// (`wire::fact`): an MPLS label stack, a PPPoE session, 802.1ah, plain
    /// GRE (IP or Ethernet inside), ERSPAN, VXLAN, Geneve, GTP-U, IP in IP
    /// (4in4, 6in4, 4in6, 6in6).
    DecapMpls,
    DecapPppoe,
    DecapPbb,
    DecapGre,
    DecapErspan,
    DecapVxlan,
    DecapGeneve,
    DecapGtpu,
    DecapIpInIp,
}

/// Slots of a [`CounterBlock`]: one per [`Counter`]. Growing it changes
/// the per-CPU value's size (bump [`FORMAT_VERSION`]).
pub const COUNTER_SLOTS: usize = Counter::COUNT as usize;

impl Counter {
    pub const COUNT: u32 = 28;
    pub const ALL: [Counter; Counter::COUNT as usize] = [
        Counter::Frames,
        Counter::NonIp,
        Counter::NonTcp,
        Counter::Malformed,
        Counter::FragmentsSkipped,
        Counter::Whitelisted,
        Counter::AttemptsEmitted,
        Counter::FollowUpsEmitted,
        Counter::OtherEmitted,
        Counter::RingFull,
        Counter::PendingInsertFailed,
        Counter::Ipv6,
        Counter::VlanTagged,
        Counter::Ignored,
        Counter::PendingInserted,
        Counter::PendingResolved,
        Counter::HeaderAnomalies,
        Counter::FirstFragments,
        Counter::TooDeep,
        Counter::DecapMpls,
        Counter::DecapPppoe,
        Counter::DecapPbb,
        Counter::DecapGre,
        Counter::DecapErspan,
        Counter::DecapVxlan,
        Counter::DecapGeneve,
        Counter::DecapGtpu,
        Counter::DecapIpInIp,
    ];

    /// Stable snake_case name used in metrics, reports and tests.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Frames => "frames",
            Counter::NonIp => "non_ip",
            Counter::NonTcp => "non_tcp",
            Counter::Malformed => "malformed",
            Counter::FragmentsSkipped => "fragments_skipped",
            Counter::Whitelisted => "whitelisted",
            Counter::AttemptsEmitted => "attempts_emitted",
            Counter::FollowUpsEmitted => "follow_ups_emitted",
            Counter::OtherEmitted => "other_emitted",
            Counter::RingFull => "ring_full",
            Counter::PendingInsertFailed => "pending_insert_failed",
            Counter::Ipv6 => "ipv6",
            Counter::VlanTagged => "vlan_tagged",
            Counter::Ignored => "ignored",
            Counter::PendingInserted => "pending_inserted",
            Counter::PendingResolved => "pending_resolved",
            Counter::HeaderAnomalies => "header_anomalies",
            Counter::FirstFragments => "first_fragments",
            Counter::TooDeep => "too_deep",
            Counter::DecapMpls => "decap_mpls",
            Counter::DecapPppoe => "decap_pppoe",
            Counter::DecapPbb => "decap_pbb",
            Counter::DecapGre => "decap_gre",
            Counter::DecapErspan => "decap_erspan",
            Counter::DecapVxlan => "decap_vxlan",
            Counter::DecapGeneve => "decap_geneve",
            Counter::DecapGtpu => "decap_gtpu",
            Counter::DecapIpInIp => "decap_ip_in_ip",
        }
    }
}

/// Each parse fact (`wire::fact`) and the counter that counts it, in bit
/// order. The encapsulation facts' counters follow each other in the same
/// order, from [`FIRST_ENCAP_COUNTER`], so the kernel bumps them by index.
pub const FACT_COUNTERS: [(u32, Counter); 13] = [
    (wire::fact::IPV6, Counter::Ipv6),
    (wire::fact::VLAN, Counter::VlanTagged),
    (wire::fact::ANOMALY, Counter::HeaderAnomalies),
    (wire::fact::FIRST_FRAGMENT, Counter::FirstFragments),
    (wire::fact::MPLS, Counter::DecapMpls),
    (wire::fact::PPPOE, Counter::DecapPppoe),
    (wire::fact::PBB, Counter::DecapPbb),
    (wire::fact::GRE, Counter::DecapGre),
    (wire::fact::ERSPAN, Counter::DecapErspan),
    (wire::fact::VXLAN, Counter::DecapVxlan),
    (wire::fact::GENEVE, Counter::DecapGeneve),
    (wire::fact::GTPU, Counter::DecapGtpu),
    (wire::fact::IP_IN_IP, Counter::DecapIpInIp),
];

/// The lowest encapsulation fact bit and its counter: fact bit
/// `FIRST_ENCAP_FACT_BIT + i` is counted by slot `FIRST_ENCAP_COUNTER + i`.
pub const FIRST_ENCAP_FACT_BIT: u32 = wire::fact::MPLS.trailing_zeros();
pub const FIRST_ENCAP_COUNTER: usize = Counter::DecapMpls as usize;
/// Encapsulation kinds (counters `decap_*`).
pub const ENCAP_KINDS: u32 = wire::fact::ENCAPS.count_ones();

// Every counter has a slot; the encapsulation facts and their counters line up.
const _: () = {
    assert!(Counter::COUNT as usize == COUNTER_SLOTS);
    assert!(Counter::ALL.len() == COUNTER_SLOTS);
    assert!(wire::fact::ENCAPS == ((1 << ENCAP_KINDS) - 1) << FIRST_ENCAP_FACT_BIT);
    assert!(FIRST_ENCAP_COUNTER + ENCAP_KINDS as usize <= COUNTER_SLOTS);
    let mut i = 0;
    while i < FACT_COUNTERS.len() {
        let (bit, counter) = FACT_COUNTERS[i];
        assert!(bit == 1 << i);
        if bit & wire::fact::ENCAPS != 0 {
            assert!(counter as usize == FIRST_ENCAP_COUNTER + (i - FIRST_ENCAP_FACT_BIT as usize));
        }
        i += 1;
    }
};

/// All counters of one CPU in one per-CPU array slot, so the hot path pays
/// for a single map lookup per frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CounterBlock {
    pub counts: [u64; COUNTER_SLOTS],
}

impl CounterBlock {
    pub fn get(&self, c: Counter) -> u64 {
        self.counts[c as usize]
    }
}

/// Map names, shared so userspace finds what the kernel declares.
pub mod maps {
    pub const RECORDS: &str = "RECORDS";
    pub const WHITELIST: &str = "WHITELIST";
    pub const PENDING: &str = "PENDING";
    pub const HINTS: &str = "HINTS";
    pub const COUNTERS: &str = "COUNTERS";
    /// Ignore list (R4.6), LPM tries keyed by source prefix.
    pub const IGNORE_V4: &str = "IGNORE_V4";
    pub const IGNORE_V6: &str = "IGNORE_V6";
    /// Two u32 slots (0: IPv4, 1: IPv6): non-zero when that family's trie
    /// has entries, so the kernel skips the trie lookup while it is empty.
    pub const IGNORE_ACTIVE: &str = "IGNORE_ACTIVE";
    /// Whitelist rules (R4.4), LPM tries of [`super::WhitelistRuleKey`]:
    /// one entry per (prefix, port), and one per prefix for rules on every port.
    pub const WHITELIST_PORT_RULES: &str = "WL_PORT_RULES";
    pub const WHITELIST_ANY_PORT: &str = "WL_ANY_PORT";
    /// Two u32 slots (0: port rules, 1: any-port rules): non-zero while that
    /// trie has entries, so exact-only whitelists cost one array load.
    pub const WHITELIST_RULES_ACTIVE: &str = "WL_RULES_ACTIVE";
}

/// Slots of the pre-filter's hint array: a counting Bloom filter (one hash)
/// over (5-tuple, S + 1) of the pending attempts, a u64 per slot. A slot
/// whose count is zero proves that a segment cannot be a follow-up, so bulk
/// data skips the hash-map lookup.
/// 512 KiB: small enough to stay in cache, large enough that a few thousand
/// pending attempts (a busy network's normal) leave most slots at zero.
///
/// A slot's low 32 bits ([`HINT_COUNT_MASK`]) count the pending attempts
/// hashing there (plus stale ones the LRU evicted without a release); the
/// high 32 bits count releases, so that userspace can tell, while it
/// rebuilds the counts, whether a slot was released meanwhile.
pub const HINT_SLOTS: u32 = 1 << 16;

/// The count part of a hint slot.
pub const HINT_COUNT_MASK: u64 = 0xffff_ffff;
/// Added to a slot to raise its count by one.
pub const HINT_RAISE: u64 = 1;
/// Added to a slot to release one count and count the release, in one
/// atomic add: + 2^32 − 1 (the count is ≥ 1 before a release, so nothing
/// borrows from the release half).
pub const HINT_RELEASE: u64 = (1 << 32) - 1;

/// The count part of a hint slot's value.
#[inline(always)]
pub const fn hint_count(slot_value: u64) -> u64 {
    slot_value & HINT_COUNT_MASK
}

/// The hint slot of a follow-up on a 5-tuple carrying `next_seq` (= S + 1).
/// Addresses are the raw words of the address bytes (`u32::from_ne_bytes`),
/// ports in host order, exactly as kernel and userspace both hold them.
#[inline(always)]
pub fn hint_slot(
    src: &[u32; 4],
    dst: &[u32; 4],
    src_port: u16,
    dst_port: u16,
    next_seq: u32,
) -> u32 {
    let ports = (u32::from(src_port) << 16) | u32::from(dst_port);
    // Address words are folded by xor first: three multiplications instead
    // of nine on every bulk segment. A hint only needs to be cheap and spread
    // well; a collision costs one extra lookup, never a wrong answer.
    let mut h = next_seq ^ 0x9e37_79b9;
    for w in [
        src[0] ^ src[1] ^ src[2] ^ src[3],
        dst[0] ^ dst[1] ^ dst[2] ^ dst[3],
        ports,
    ] {
        h = (h ^ w).wrapping_mul(0x0100_0193);
    }
    // Multiplication only carries upwards: fold the high bits back down.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h & (HINT_SLOTS - 1)
}

/// Address bytes as the raw words `hint_slot` takes.
pub fn addr_words(a: &[u8; 16]) -> [u32; 4] {
    let w = |i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

impl FlowKey {
    /// The hint slot of this flow's follow-up for an attempt with sequence `syn_seq`.
    pub fn hint_slot(&self, syn_seq: u32) -> u32 {
        hint_slot(
            &addr_words(&self.src_addr),
            &addr_words(&self.dst_addr),
            self.src_port,
            self.dst_port,
            syn_seq.wrapping_add(1),
        )
    }
}

/// Default map sizes (entries); the ring buffer size is in bytes.
pub const WHITELIST_MAX: u32 = 65_536;
/// Capacity of the pending table (an LRU map: when it is full, a new attempt
/// evicts the least recently used entries). 2^20 keeps a handshake that
/// completes within a second tracked under a flood of up to a million new
/// attempts/s (this machine's sender ceiling is about 730,000), at 120 bytes
/// of kernel memory an entry (120 MiB, the map's memlock).
pub const PENDING_MAX: u32 = 1 << 20;
/// Bounds of `--kernel-pending-max`: below the lower one the kernel LRU's
/// per-CPU caches (128 entries each) take a large share of the table; the
/// upper one is about 1.9 GiB of kernel memory, allocated at load.
pub const PENDING_MAX_MIN: u32 = 1024;
pub const PENDING_MAX_LIMIT: u32 = 1 << 24;
/// Prefixes per family in the ignore list (each LPM trie).
pub const IGNORE_MAX: u32 = 16_384;
/// Entries in each whitelist-rule trie. A port range takes one entry per
/// port; a rule on every port (`*`) takes one.
pub const WHITELIST_RULES_MAX: u32 = 65_536;
pub const RING_BYTES: u32 = 16 * 1024 * 1024;

#[cfg(feature = "user")]
mod user {
    // SAFETY: all are repr(C), Copy, with explicit padding and no pointers.
    unsafe impl aya::Pod for super::PacketRecord {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::PendingValue {}
    unsafe impl aya::Pod for super::WhitelistKey {}
    unsafe impl aya::Pod for super::WhitelistRuleKey {}
    unsafe impl aya::Pod for super::CounterBlock {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_stable() {
        assert_eq!(core::mem::size_of::<PacketRecord>(), 64);
        assert_eq!(core::mem::size_of::<FlowKey>(), 40);
        assert_eq!(core::mem::size_of::<WhitelistKey>(), 20);
        assert_eq!(core::mem::size_of::<PendingValue>(), 16);
    }

    #[test]
    fn counter_table_matches_discriminants() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{}", c.name());
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT as usize, "names are distinct");
    }

    #[test]
    fn every_fact_has_its_own_counter() {
        let mut seen = Vec::new();
        for (bit, c) in FACT_COUNTERS {
            assert!(!seen.contains(&c), "{}", c.name());
            seen.push(c);
            assert_eq!(bit.count_ones(), 1);
        }
        let all = FACT_COUNTERS.iter().fold(0, |a, (b, _)| a | b);
        assert_eq!(all, (1 << FACT_COUNTERS.len()) - 1);
    }

    #[test]
    fn hint_release_lowers_the_count_and_counts_the_release() {
        let mut v = 0u64;
        v = v.wrapping_add(HINT_RAISE).wrapping_add(HINT_RAISE);
        assert_eq!(hint_count(v), 2);
        v = v.wrapping_add(HINT_RELEASE);
        assert_eq!(hint_count(v), 1);
        assert_eq!(v >> 32, 1);
        v = v.wrapping_add(HINT_RELEASE);
        assert_eq!((hint_count(v), v >> 32), (0, 2));
        // The release half wraps without touching the count.
        let w = (u64::from(u32::MAX) << 32 | 1).wrapping_add(HINT_RELEASE);
        assert_eq!((hint_count(w), w >> 32), (0, 0));
    }
}
