//! slowscan's XDP data plane: parse every frame, drop whitelisted
//! destinations (R4.4) and ignored sources (R4.6) in-kernel, and send compact
//! records of the TCP segments that matter to userspace through a ring buffer.
#![no_std]
#![no_main]
// Atomic add on map memory: the bpf target exposes no atomic types.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod decap;
mod parse;

// `hint_count_at` reads a slot's count as its first 4 bytes.
#[cfg(not(target_endian = "little"))]
compile_error!("slowscan's XDP program assumes a little-endian target (bpfel)");

use aya_ebpf::{
    bindings::xdp_action,
    bindings::{
        BPF_F_MMAPABLE, BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP,
    },
    helpers::bpf_ktime_get_coarse_ns,
    macros::{map, xdp},
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use aya_log_ebpf::error;
use core::intrinsics::{atomic_xadd, AtomicOrdering};
use parse::{Notes, Segment, Skip};

use slowscan_common::{
    hint_slot, tcp, wire, wire::fact, Counter, CounterBlock, FlowKey, PacketRecord, PendingValue,
    WhitelistKey, WhitelistRuleKey, AF_INET6, COUNTER_SLOTS, ENCAP_KINDS, FIRST_ENCAP_COUNTER,
    FIRST_ENCAP_FACT_BIT, HINT_RAISE, HINT_RELEASE, HINT_SLOTS, IGNORE_MAX, PENDING_MAX,
    RING_BYTES, RULE_HEAD_BITS, STATUS_FOLLOW_UP, STATUS_UNTRACKED, WHITELIST_MAX,
    WHITELIST_RULES_MAX,
};

/// One CPU's counters.
type Counts = [u64; COUNTER_SLOTS];

const EEXIST: i32 = 17;
/// Unread bytes in the ring at which the reader is woken (about 1000 records).
const WAKEUP_BYTES: u64 = 64 * 1024;
/// A record in the ring, with its 8-byte header.
const RECORD_BYTES: u64 = core::mem::size_of::<PacketRecord>() as u64 + 8;

#[map(name = "RECORDS")]
static RECORDS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// R4.4: destinations (address, port) whose traffic is not analysed at all.
#[map(name = "WHITELIST")]
static WHITELIST: HashMap<WhitelistKey, u8> = HashMap::with_max_entries(WHITELIST_MAX, 0);

type RuleTrie = LpmTrie<WhitelistRuleKey, u8>;

/// R4.4 rules over many destinations: (prefix, port) entries, a port range
/// expanded, and prefixes whitelisted on every port. The value is the
/// address prefix's length, for userspace's exact-match test.
#[map(name = "WL_PORT_RULES")]
static WHITELIST_PORT_RULES: RuleTrie = LpmTrie::with_max_entries(WHITELIST_RULES_MAX, 0);
#[map(name = "WL_ANY_PORT")]
static WHITELIST_ANY_PORT: RuleTrie = LpmTrie::with_max_entries(WHITELIST_RULES_MAX, 0);

/// Slot 0 (port rules) and 1 (any-port rules): non-zero while that trie has
/// entries (kept by userspace).
#[map(name = "WL_RULES_ACTIVE")]
static WHITELIST_RULES_ACTIVE: Array<u32> = Array::with_max_entries(2, 0);

/// Pre-filter: attempts whose follow-up (R5) has not been seen yet. Entries of
/// attempts that fail are expired by userspace after the handshake timeout.
/// An LRU map: under a flood the least recently used entries give way, so a
/// new attempt is always tracked; a forgotten attempt's follow-up is then
/// not emitted, and the engine decides it Failed at its deadline (never a
/// wrong Established). Userspace derives how many were forgotten from the
/// `pending_*` counters.
#[map(name = "PENDING")]
static PENDING: LruHashMap<FlowKey, PendingValue> = LruHashMap::with_max_entries(PENDING_MAX, 0);

/// Pre-filter hints: per slot, how many pending attempts expect a follow-up
/// hashing there (`slowscan_common::hint_slot`) in the low 32 bits, releases
/// in the high 32. A zero count means "no pending attempt can match", which
/// spares bulk data the PENDING lookup. An entry the LRU evicts keeps its
/// count (a stale count only costs a lookup); the userspace sweep takes stale
/// counts back. Memory-mapped so userspace can update it atomically too.
#[map(name = "HINTS")]
static HINTS: Array<u64> = Array::with_max_entries(HINT_SLOTS, BPF_F_MMAPABLE);

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<CounterBlock> = PerCpuArray::with_max_entries(1, 0);

/// R4.6: sources never counted, by prefix (network-order address bytes).
/// The value is the prefix's length, for userspace's exact-match test; the
/// kernel only tests presence.
#[map(name = "IGNORE_V4")]
static IGNORE_V4: LpmTrie<u32, u8> = LpmTrie::with_max_entries(IGNORE_MAX, 0);
#[map(name = "IGNORE_V6")]
static IGNORE_V6: LpmTrie<[u32; 4], u8> = LpmTrie::with_max_entries(IGNORE_MAX, 0);

/// Slot 0 (IPv4) and 1 (IPv6): non-zero while that family's ignore trie has
/// entries (kept by userspace), so an empty list costs one array load.
#[map(name = "IGNORE_ACTIVE")]
static IGNORE_ACTIVE: Array<u32> = Array::with_max_entries(2, 0);

/// Set at load time (see `slowscan_common::globals`).
#[no_mangle]
static PREFILTER_OFF: u8 = 0;
#[no_mangle]
static MIRROR: u8 = 0;

#[inline(always)]
fn global(g: &u8) -> bool {
    // Volatile so the compiler does not fold the default value in.
    unsafe { core::ptr::read_volatile(g) != 0 }
}

#[xdp]
pub fn slowscan(ctx: XdpContext) -> u32 {
    match COUNTERS.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot, only this CPU's program instance writes it.
        Some(block) => inspect(&ctx, unsafe { &mut (*block).counts }),
        // Cannot happen for an array map of one entry; say so once if it does.
        None => error!(&ctx, "slowscan: counter map lookup failed"),
    }
    if global(&MIRROR) {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

/// Does nothing: the benchmark's baseline, measured in the same run so
/// per-packet costs are reported as ratios to it.
#[xdp]
pub fn baseline_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[inline(always)]
fn bump(counts: &mut Counts, c: Counter) {
    counts[c as usize] += 1;
}

#[inline(always)]
fn inspect(ctx: &XdpContext, counts: &mut Counts) {
    bump(counts, Counter::Frames);
    let mut notes = Notes {
        facts: 0,
        vlan_tags: 0,
    };
    let parsed = parse::parse(ctx, &mut notes);
    if notes.facts != 0 {
        count_facts(counts, notes.facts, parsed.is_ok());
    }
    let mut seg = match parsed {
        Ok(seg) => seg,
        Err(skip) => {
            bump(
                counts,
                match skip {
                    Skip::NonIp => Counter::NonIp,
                    Skip::NonTcp => Counter::NonTcp,
                    Skip::Malformed => Counter::Malformed,
                    Skip::Fragment => Counter::FragmentsSkipped,
                    Skip::TooDeep => Counter::TooDeep,
                },
            );
            return;
        }
    };
    // R9: an attempt's outer source MAC (the engine reads it for attempts
    // only, so bulk data does not pay for the copy).
    if tcp::is_attempt(seg.tcp_flags) {
        if let Ok(mac) = parse::bytes_at::<6>(ctx, wire::eth::SRC) {
            seg.src_mac = *mac;
        }
    }
    if global(&PREFILTER_OFF) {
        emit_all(&seg, counts);
    } else {
        prefilter(&seg, counts);
    }
}

/// The counters of the facts noted (`wire::fact`): the anomaly only with a
/// record, each encapsulation once per frame.
#[inline(always)]
fn count_facts(counts: &mut Counts, facts: u32, record: bool) {
    if facts == fact::IPV6 {
        // Plain IPv6: the common case.
        bump(counts, Counter::Ipv6);
        return;
    }
    if facts & fact::IPV6 != 0 {
        bump(counts, Counter::Ipv6);
    }
    if facts & fact::VLAN != 0 {
        bump(counts, Counter::VlanTagged);
    }
    if facts & fact::ANOMALY != 0 && record {
        bump(counts, Counter::HeaderAnomalies);
    }
    if facts & fact::FIRST_FRAGMENT != 0 {
        bump(counts, Counter::FirstFragments);
    }
    if facts & fact::ENCAPS != 0 {
        for i in 0..ENCAP_KINDS as usize {
            if facts & (1 << (FIRST_ENCAP_FACT_BIT as usize + i)) != 0 {
                if let Some(c) = counts.get_mut(FIRST_ENCAP_COUNTER + i) {
                    *c += 1;
                }
            }
        }
    }
}

/// Validation mode: every non-whitelisted TCP segment from a source not
/// ignored leaves the kernel.
#[inline(always)]
fn emit_all(seg: &Segment, counts: &mut Counts) {
    if excluded(seg, counts) {
        return;
    }
    let ts = now();
    let kind = if tcp::is_attempt(seg.tcp_flags) {
        Counter::AttemptsEmitted
    } else {
        Counter::OtherEmitted
    };
    emit(seg, ts, 0, kind, counts);
}

/// Default mode: emit every attempt (R1) and only the first candidate
/// follow-up (R5 flags and seq + 1) of a pending attempt, so bulk data never
/// reaches the ring buffer.
#[inline(always)]
fn prefilter(seg: &Segment, counts: &mut Counts) {
    if tcp::is_attempt(seg.tcp_flags) {
        attempt(seg, counts);
    } else if tcp::is_follow_up(seg.tcp_flags) {
        // Most segments are bulk data of established connections: a zero
        // hint proves no pending attempt waits for this (5-tuple, seq).
        let slot = hint(seg, seg.seq);
        if hint_count_at(slot) == 0 {
            return;
        }
        let key = flow(seg);
        // SAFETY: read once, by value; a concurrent update at worst makes
        // this segment miss or match, both of which userspace re-checks.
        let syn_seq = match unsafe { PENDING.get(&key) } {
            Some(p) => p.seq,
            None => return,
        };
        if !tcp::is_next_seq(syn_seq, seg.seq) {
            return;
        }
        // Only the CPU whose delete succeeds releases the hint.
        if PENDING.remove(&key).is_ok() {
            hint_add(slot, HINT_RELEASE);
            bump(counts, Counter::PendingResolved);
        }
        // Whitelisted or ignored after its SYN was emitted: keep it out all
        // the same.
        if excluded(seg, counts) {
            return;
        }
        emit(
            seg,
            now(),
            STATUS_FOLLOW_UP,
            Counter::FollowUpsEmitted,
            counts,
        );
    }
}

/// An attempt: remember it as pending, then emit it. A hint is always
/// raised before the entry it stands for exists, so a follow-up racing on
/// another CPU never sees a zero hint for a present entry. An ignored
/// source's attempt takes no entry.
#[inline(always)]
fn attempt(seg: &Segment, counts: &mut Counts) {
    if excluded(seg, counts) {
        return;
    }
    let ts = now();
    let key = flow(seg);
    let slot = hint(seg, seg.seq.wrapping_add(1));
    let status = match PENDING.get_ptr_mut(&key) {
        // Known 5-tuple: a retransmission (same S) keeps its hint; a new S
        // moves it. Updated in place: cheaper than a re-insert, which in an
        // LRU map takes a free element (evicting one when full) even for a
        // key that exists. The lookup just marked the entry referenced, so
        // the LRU evicts others first; were it evicted and its element
        // reused meanwhile, the other attempt's entry would carry this S and
        // lose its follow-up: at worst Failed, as for any forgotten attempt.
        Some(p) => {
            // SAFETY: p points into a live map value; u32/u64 stores are atomic.
            let old = unsafe { (*p).seq };
            if old != seg.seq {
                hint_add(slot, HINT_RAISE);
                unsafe { (*p).seq = seg.seq };
                hint_add(hint(seg, old.wrapping_add(1)), HINT_RELEASE);
            }
            unsafe { (*p).ts_ns = ts };
            0
        }
        None => {
            hint_add(slot, HINT_RAISE);
            let pending = PendingValue {
                seq: seg.seq,
                _pad: 0,
                ts_ns: ts,
            };
            // A full LRU table evicts its least recently used entries to
            // make room, so this fails only on an allocation failure.
            match PENDING.insert(&key, &pending, u64::from(BPF_NOEXIST)) {
                Ok(()) => {
                    bump(counts, Counter::PendingInserted);
                    0
                }
                // Another CPU inserted it meanwhile: tracked, under its hint.
                Err(e) if e == -EEXIST => {
                    hint_add(slot, HINT_RELEASE);
                    0
                }
                Err(_) => {
                    hint_add(slot, HINT_RELEASE);
                    bump(counts, Counter::PendingInsertFailed);
                    STATUS_UNTRACKED
                }
            }
        }
    };
    emit(seg, ts, status, Counter::AttemptsEmitted, counts);
}

#[inline(always)]
fn hint(seg: &Segment, next_seq: u32) -> u32 {
    hint_slot(
        &seg.src_addr,
        &seg.dst_addr,
        seg.src_port,
        seg.dst_port,
        next_seq,
    )
}

/// The count half of a hint slot: its low 32 bits, which on this
/// little-endian target are the slot's first 4 bytes (one 32-bit load, no
/// masking). A torn read is impossible: the load is aligned.
#[inline(always)]
fn hint_count_at(slot: u32) -> u32 {
    match HINTS.get_ptr(slot) {
        // SAFETY: an 8-aligned u64 slot of an array map; its first 4 bytes
        // are the count (`slowscan_common::HINT_COUNT_MASK`).
        Some(p) => unsafe { core::ptr::read(p as *const u32) },
        // Out of range cannot happen (slot is masked); be conservative.
        None => 1,
    }
}

/// Atomic add of `HINT_RAISE` or `HINT_RELEASE`. (This target has 64-bit
/// atomics only.)
#[inline(always)]
fn hint_add(slot: u32, delta: u64) {
    if let Some(p) = HINTS.get_ptr_mut(slot) {
        // SAFETY: p points at an 8-aligned u64 slot of an array map; every
        // writer, kernel or userspace, uses atomics.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, delta) };
    }
}

/// CLOCK_MONOTONIC_COARSE: a tick's resolution (≤ 4 ms) is ample for
/// handshake timeouts of seconds, and it costs a fraction of the fine clock.
#[inline(always)]
fn now() -> u64 {
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// The address words as the byte array the shared records use (same memory).
#[inline(always)]
fn bytes(words: [u32; 4]) -> [u8; 16] {
    // SAFETY: [u32; 4] and [u8; 16] have the same size; every bit pattern is valid.
    unsafe { core::mem::transmute(words) }
}

/// Is the segment whitelisted (R4.4) or its source ignored (R4.6)? Counted
/// either way; such a segment never leaves the kernel.
#[inline(always)]
fn excluded(seg: &Segment, counts: &mut Counts) -> bool {
    if whitelisted(seg) {
        bump(counts, Counter::Whitelisted);
        true
    } else if ignored(seg) {
        bump(counts, Counter::Ignored);
        true
    } else {
        false
    }
}

/// R4.4: the exact map first (one hash lookup); the rule tries only while
/// they hold entries (one array load each otherwise).
#[inline(always)]
fn whitelisted(seg: &Segment) -> bool {
    let key = WhitelistKey::new(seg.family, bytes(seg.dst_addr), seg.dst_port);
    // SAFETY: only presence is tested; the value is never read.
    if unsafe { WHITELIST.get(&key).is_some() } {
        return true;
    }
    rule_matches(seg, 0, &WHITELIST_PORT_RULES, seg.dst_port)
        || rule_matches(seg, 1, &WHITELIST_ANY_PORT, 0)
}

/// A longest-prefix lookup of (family, `port`, destination) in `trie`, if
/// slot `active` of the rules' flags says it has entries. Any match is a
/// hit: every entry means "whitelisted".
#[inline(always)]
fn rule_matches(seg: &Segment, active: u32, trie: &RuleTrie, port: u16) -> bool {
    match WHITELIST_RULES_ACTIVE.get(active) {
        Some(n) if *n != 0 => {}
        _ => return false,
    }
    let key = WhitelistRuleKey::new(seg.family, bytes(seg.dst_addr), port);
    trie.get(Key::new(RULE_HEAD_BITS + 128, key)).is_some()
}

/// R4.6: is the source on the ignore list? Only looked up while the
/// family's list has entries (one array load otherwise).
#[inline(always)]
fn ignored(seg: &Segment) -> bool {
    let v6 = seg.family == AF_INET6;
    match IGNORE_ACTIVE.get(u32::from(v6)) {
        Some(n) if *n != 0 => {}
        _ => return false,
    }
    if v6 {
        IGNORE_V6.get(Key::new(128, seg.src_addr)).is_some()
    } else {
        IGNORE_V4.get(Key::new(32, seg.src_addr[0])).is_some()
    }
}

#[inline(always)]
fn flow(seg: &Segment) -> FlowKey {
    FlowKey {
        src_addr: bytes(seg.src_addr),
        dst_addr: bytes(seg.dst_addr),
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        family: seg.family,
        _pad0: 0,
        _pad1: 0,
    }
}

#[inline(always)]
fn emit(seg: &Segment, ts_ns: u64, status: u8, kind: Counter, counts: &mut Counts) {
    let rec = PacketRecord {
        ts_ns,
        src_addr: bytes(seg.src_addr),
        dst_addr: bytes(seg.dst_addr),
        seq: seg.seq,
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        family: seg.family,
        tcp_flags: seg.tcp_flags,
        status,
        vlan_tags: seg.vlan_tags,
        src_mac: seg.src_mac,
        _pad: [0; 6],
    };
    // A wakeup (an IPI, microseconds under a hypervisor) per record would
    // cost more than the record: wake the reader only when this record makes
    // the unread data cross WAKEUP_BYTES; it also polls on a short timer.
    let avail = RECORDS.query(u64::from(BPF_RB_AVAIL_DATA));
    let wakeup = if avail < WAKEUP_BYTES && avail + RECORD_BYTES >= WAKEUP_BYTES {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    if RECORDS
        .output::<PacketRecord>(&rec, u64::from(wakeup))
        .is_ok()
    {
        bump(counts, kind);
    } else {
        bump(counts, Counter::RingFull);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
