//! Counting (R6) and the alert rule (R8): per source, the distinct
//! (destination IP, destination port) pairs among Failed attempts in the
//! current time window, one state per distinct [`Window`] shared by all the
//! thresholds that use it.
//!
//! Failures arrive here in SYN order (the deadline queue guarantees it), with
//! an effective time that never goes backwards (see `Engine`), so every
//! window can be advanced incrementally:
//!
//! * one map per source, pair → time of its latest failure, shared by all
//!   windows (a pair is in a window iff its latest failure is);
//! * Tumbling (R6.1): a window index per source; a failure in a later
//!   window clears the count (the paper's "clear the accumulated state");
//! * Sliding: a per-source log of (time, pair) in time order and one cursor
//!   per sliding window; a log entry leaving the window decrements the count
//!   if it is still that pair's latest failure;
//! * None: the map's size.
//!
//! Memory per tracked source is bounded by a cap; when it is reached the
//! source least likely to be a scanner is evicted: first the oldest source
//! that has only one failed pair (a FIFO "tier 1" — the spoofed-SYN flood
//! case), otherwise the one with the lowest count among 16 sampled.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::alert::{Alert, Shape, Target};
use super::index::{SlotIndex, prefetch};
use super::{DetectorConfig, Window, ip_from, rfc3339};

/// A destination of a failed attempt (R6 counts distinct ones per source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Pair {
    pub addr: [u8; 16],
    pub port: u16,
}

/// A source address; IPv4 in the first 4 bytes, the rest zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SourceKey {
    pub addr: [u8; 16],
    pub family: u8,
}

type Hasher = foldhash::fast::RandomState;

/// Distinct failed pairs of one source with the time of each one's latest
/// failure. One or two pairs (the common case: a spoofed SYN, a host retrying
/// a dead server, Fig. 6) are stored inline, without allocating.
enum PairSet {
    Empty,
    One(Pair, u64),
    Two([(Pair, u64); 2]),
    Many(HashTable<(Pair, u64)>),
}

impl PairSet {
    fn len(&self) -> usize {
        match self {
            PairSet::Empty => 0,
            PairSet::One(..) => 1,
            PairSet::Two(..) => 2,
            PairSet::Many(t) => t.len(),
        }
    }

    fn get(&self, h: &Hasher, p: &Pair) -> Option<u64> {
        match self {
            PairSet::Empty => None,
            PairSet::One(q, t) => (q == p).then_some(*t),
            PairSet::Two(two) => two.iter().find(|(q, _)| q == p).map(|&(_, t)| t),
            PairSet::Many(tab) => tab.find(h.hash_one(p), |(q, _)| q == p).map(|&(_, t)| t),
        }
    }

    /// Records a failure of `p` at `t` (never earlier than before); returns
    /// the time of its previous latest failure.
    fn upsert(&mut self, h: &Hasher, p: Pair, t: u64) -> Option<u64> {
        match self {
            PairSet::Empty => {
                *self = PairSet::One(p, t);
                None
            }
            PairSet::One(q, qt) if *q == p => Some(std::mem::replace(qt, t)),
            PairSet::One(q, qt) => {
                *self = PairSet::Two([(*q, *qt), (p, t)]);
                None
            }
            PairSet::Two(two) => {
                if let Some((_, old)) = two.iter_mut().find(|(q, _)| *q == p) {
                    return Some(std::mem::replace(old, t));
                }
                let mut tab = HashTable::with_capacity(4);
                for (k, v) in [two[0], two[1], (p, t)] {
                    tab.insert_unique(h.hash_one(k), (k, v), |(k, _)| h.hash_one(k));
                }
                *self = PairSet::Many(tab);
                None
            }
            PairSet::Many(tab) => {
                let hash = h.hash_one(p);
                match tab.find_mut(hash, |(q, _)| *q == p) {
                    Some((_, old)) => Some(std::mem::replace(old, t)),
                    None => {
                        tab.insert_unique(hash, (p, t), |(k, _)| h.hash_one(k));
                        None
                    }
                }
            }
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Pair, u64)) {
        match self {
            PairSet::Empty => {}
            PairSet::One(p, t) => f(p, *t),
            PairSet::Two(two) => two.iter().for_each(|(p, t)| f(p, *t)),
            PairSet::Many(tab) => tab.iter().for_each(|(p, t)| f(p, *t)),
        }
    }

    fn allocated_bytes(&self) -> usize {
        match self {
            PairSet::Many(t) => t.allocation_size(),
            _ => 0,
        }
    }
}

/// One tracked source in a checkpoint (engine time; see `Counting::snapshot`).
#[derive(Clone, Debug)]
pub(crate) struct SourceSnapshot {
    pub key: SourceKey,
    /// Distinct failed pairs with the time of each one's latest failure.
    pub pairs: Vec<(Pair, u64)>,
    /// Per counting group; `None`: a window the checkpoint did not have.
    pub groups: Vec<Option<GroupSnapshot>>,
    /// Per detector: (count at the latest alert, 0 = armed; alert_seq).
    pub dets: Vec<(u32, u32)>,
    /// Sliding windows: the failure log from its first retained entry.
    pub log: Vec<(u64, Pair)>,
}

/// One (source, window) count in a checkpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupSnapshot {
    /// Tumbling: the window index (wall-clock aligned, `i64::MIN` = none yet).
    pub window: i64,
    pub count: u32,
    /// Sliding: the first log entry not yet expired, relative to the log.
    pub cursor: u64,
    pub first: u64,
    pub last: u64,
}

/// `repr(C)`: the key (read by every lookup) first, the inline pairs next.
#[repr(C)]
struct Source {
    key: SourceKey,
    generation: u32,
    live: bool,
    pairs: PairSet,
    /// Sliding windows only, allocated on the first failure.
    log: Option<Box<SlidingLog>>,
}

/// (time, pair) of failures in time order, for sliding windows.
#[derive(Default)]
struct SlidingLog {
    events: VecDeque<(u64, Pair)>,
    /// Absolute index of `events[0]` (cursors are absolute).
    base: u64,
}

#[derive(Clone, Copy)]
struct GroupState {
    /// Tumbling: index of the current window (`i64::MIN` before the first).
    window: i64,
    count: u32,
    /// Sliding: absolute index of the first log entry not yet expired.
    cursor: u64,
    first: u64,
    last: u64,
}

const GROUP_INIT: GroupState = GroupState {
    window: i64::MIN,
    count: 0,
    cursor: 0,
    first: 0,
    last: 0,
};

/// Re-alert state of one (source, detector) (R8).
#[derive(Clone, Copy, Default)]
struct DetState {
    /// Count at the latest alert; 0 = armed for a first crossing.
    last_alert: u32,
    seq: u32,
}

struct Group {
    window: Window,
    dets: Vec<usize>,
}

pub(crate) struct Counting {
    groups: Vec<Group>,
    thresholds: Vec<u32>,
    any_sliding: bool,
    slab: Vec<Source>,
    gstate: Vec<GroupState>,
    dstate: Vec<DetState>,
    free: Vec<u32>,
    index: SlotIndex,
    tier1: VecDeque<(u32, u32)>,
    live: usize,
    max_sources: usize,
    pub evicted: u64,
    rng: u64,
    hasher: Hasher,
    offset_ns: i64,
    max_targets: usize,
}

/// Tumbling window index (R6.1): windows are aligned to multiples of the
/// window length in wall-clock time (record time + wall-clock offset), i.e.
/// to the Unix epoch: a 3600 s window runs from one full UTC hour to the next,
/// in replay (offset 0, capture times) and live alike.
#[inline]
pub(crate) fn tumbling_index(t: u64, len_ns: u64, offset_ns: i64) -> i64 {
    let wall = i128::from(t) + i128::from(offset_ns);
    wall.div_euclid(i128::from(len_ns.max(1))) as i64
}

impl Counting {
    pub fn new(
        detectors: &[DetectorConfig],
        max_sources: usize,
        offset_ns: i64,
        max_targets: usize,
    ) -> Self {
        let mut groups: Vec<Group> = Vec::new();
        for (d, det) in detectors.iter().enumerate() {
            match groups.iter_mut().find(|g| g.window == det.window) {
                Some(g) => g.dets.push(d),
                None => groups.push(Group {
                    window: det.window,
                    dets: vec![d],
                }),
            }
        }
        Self {
            any_sliding: groups
                .iter()
                .any(|g| matches!(g.window, Window::Sliding(_))),
            groups,
            thresholds: detectors.iter().map(|d| d.threshold).collect(),
            slab: Vec::new(),
            gstate: Vec::new(),
            dstate: Vec::new(),
            free: Vec::new(),
            index: SlotIndex::new(),
            tier1: VecDeque::new(),
            live: 0,
            max_sources: max_sources.max(1),
            evicted: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            hasher: Hasher::default(),
            offset_ns,
            max_targets,
        }
    }

    pub fn sources(&self) -> usize {
        self.live
    }

    /// Counts one Failed attempt of `src` to `pair` at effective time `t`
    /// (its SYN time, R6) and pushes the alerts it decides. `decided_wall` is
    /// the alert's `@timestamp`.
    pub fn record_failure(
        &mut self,
        src: SourceKey,
        pair: Pair,
        t: u64,
        decided_wall: i64,
        out: &mut Vec<Alert>,
    ) {
        let slot = self.slot_for(src) as usize;
        let ng = self.groups.len();
        let nd = self.thresholds.len();
        if self.any_sliding {
            self.expire_sliding(slot, t);
        }
        let h = &self.hasher;
        let source = &mut self.slab[slot];
        let prev = source.pairs.upsert(h, pair, t);
        if self.any_sliding && prev != Some(t) {
            source
                .log
                .get_or_insert_default()
                .events
                .push_back((t, pair));
        }
        for g in 0..ng {
            let gs = &mut self.gstate[slot * ng + g];
            let new = match self.groups[g].window {
                Window::None => prev.is_none(),
                Window::Tumbling(len) => {
                    let k = tumbling_index(t, len, self.offset_ns);
                    if gs.window != k {
                        // R6.1: a new tumbling window clears the accumulated
                        // state and re-arms the first-crossing alert (R8).
                        *gs = GroupState {
                            window: k,
                            ..GROUP_INIT
                        };
                        for &d in &self.groups[g].dets {
                            self.dstate[slot * nd + d] = DetState::default();
                        }
                    }
                    prev.is_none_or(|p| tumbling_index(p, len, self.offset_ns) != k)
                }
                Window::Sliding(len) => prev.is_none_or(|p| p.saturating_add(len) <= t),
            };
            let gs = &mut self.gstate[slot * ng + g];
            if gs.count == 0 {
                gs.first = t;
            }
            gs.last = t;
            if !new {
                continue;
            }
            gs.count += 1;
            let count = gs.count;
            for i in 0..self.groups[g].dets.len() {
                let d = self.groups[g].dets[i];
                let ds = &mut self.dstate[slot * nd + d];
                // R8: first crossing (count > threshold), then each doubling.
                let fire = if ds.last_alert == 0 {
                    count > self.thresholds[d]
                } else {
                    u64::from(count) >= 2 * u64::from(ds.last_alert)
                };
                if fire {
                    ds.last_alert = count;
                    ds.seq += 1;
                    let seq = ds.seq;
                    out.push(self.build_alert(slot, g, d, seq, t, decided_wall));
                }
            }
        }
        if self.any_sliding {
            self.trim_events(slot);
        }
    }

    /// Sliding windows: forget failures at or before `t − W` (R6.1), and
    /// re-arm the first-crossing alert of thresholds the count falls to (R8).
    fn expire_sliding(&mut self, slot: usize, t: u64) {
        let ng = self.groups.len();
        let nd = self.thresholds.len();
        let source = &self.slab[slot];
        let Some(log) = &source.log else { return };
        for g in 0..ng {
            let Window::Sliding(len) = self.groups[g].window else {
                continue;
            };
            let gs = &mut self.gstate[slot * ng + g];
            while gs.cursor < log.base + log.events.len() as u64 {
                let (ts, p) = log.events[(gs.cursor - log.base) as usize];
                if ts.saturating_add(len) > t {
                    break;
                }
                gs.cursor += 1;
                if source.pairs.get(&self.hasher, &p) == Some(ts) {
                    gs.count -= 1;
                    for &d in &self.groups[g].dets {
                        if gs.count <= self.thresholds[d] {
                            self.dstate[slot * nd + d] = DetState::default();
                        }
                    }
                }
            }
        }
    }

    fn trim_events(&mut self, slot: usize) {
        let ng = self.groups.len();
        let min_cursor = (0..ng)
            .filter(|&g| matches!(self.groups[g].window, Window::Sliding(_)))
            .map(|g| self.gstate[slot * ng + g].cursor)
            .min()
            .unwrap_or(u64::MAX);
        let Some(log) = &mut self.slab[slot].log else {
            return;
        };
        while log.base < min_cursor && !log.events.is_empty() {
            log.events.pop_front();
            log.base += 1;
        }
        if log.events.capacity() > 64 && log.events.len() < log.events.capacity() / 4 {
            log.events.shrink_to(log.events.len() * 2);
        }
    }

    fn build_alert(
        &self,
        slot: usize,
        g: usize,
        d: usize,
        seq: u32,
        t: u64,
        decided_wall: i64,
    ) -> Alert {
        let source = &self.slab[slot];
        let ng = self.groups.len();
        let gs = &self.gstate[slot * ng + g];
        let window = self.groups[g].window;
        let in_window = |last: u64| match window {
            Window::None => true,
            Window::Tumbling(len) => tumbling_index(last, len, self.offset_ns) == gs.window,
            Window::Sliding(len) => last.saturating_add(len) > t,
        };
        let mut pairs: Vec<(u64, Pair)> = Vec::with_capacity(gs.count as usize);
        source.pairs.for_each(|p, last| {
            if in_window(last) {
                pairs.push((last, *p));
            }
        });
        let hosts: HashSet<[u8; 16]> = pairs.iter().map(|(_, p)| p.addr).collect();
        let ports: HashSet<u16> = pairs.iter().map(|(_, p)| p.port).collect();
        let first = match window {
            Window::Sliding(_) => pairs.iter().map(|&(l, _)| l).min().unwrap_or(t),
            _ => gs.first,
        };
        // The most recent targets, reported oldest first.
        pairs.sort_unstable_by(|a, b| b.cmp(a));
        pairs.truncate(self.max_targets);
        pairs.reverse();
        let family = source.key.family;
        Alert {
            timestamp_ns: decided_wall,
            source: ip_from(family, &source.key.addr),
            detector: d,
            failed_pairs: gs.count,
            threshold: self.thresholds[d],
            window,
            first_failure_ns: rfc3339::wall(first, self.offset_ns),
            last_failure_ns: rfc3339::wall(t, self.offset_ns),
            shape: Shape::classify(hosts.len(), ports.len()),
            distinct_hosts: hosts.len() as u32,
            distinct_ports: ports.len() as u32,
            targets: pairs
                .iter()
                .map(|(_, p)| Target {
                    ip: ip_from(family, &p.addr),
                    port: p.port,
                })
                .collect(),
            alert_seq: seq,
        }
    }

    #[inline]
    pub fn hash(&self, key: &SourceKey) -> u64 {
        let w = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap());
        self.hasher
            .hash_one((w(&key.addr[..8]), w(&key.addr[8..]) ^ u64::from(key.family)))
    }

    /// Prefetch stage 1: the index bucket of a source about to fail.
    #[inline]
    pub fn prefetch_bucket(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Prefetch stage 2 (bucket cached): the source and its window state.
    #[inline]
    pub fn prefetch_entry(&self, hash: u64) {
        if let Some(s) = self.index.peek(hash) {
            let s = s as usize;
            let p = &self.slab[s] as *const Source;
            prefetch(p);
            prefetch(p.wrapping_byte_add(64));
            prefetch(&self.gstate[s * self.groups.len()]);
        }
    }

    fn slot_for(&mut self, key: SourceKey) -> u32 {
        let hash = self.hash(&key);
        let slab = &self.slab;
        if let Some(i) = self.index.find(hash, |i| slab[i as usize].key == key) {
            return i;
        }
        if self.live >= self.max_sources {
            self.evict_one();
        }
        let ng = self.groups.len();
        let nd = self.thresholds.len();
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slab.push(Source {
                    key,
                    generation: 0,
                    live: false,
                    pairs: PairSet::Empty,
                    log: None,
                });
                self.gstate.extend(std::iter::repeat_n(GROUP_INIT, ng));
                self.dstate
                    .extend(std::iter::repeat_n(DetState::default(), nd));
                (self.slab.len() - 1) as u32
            }
        };
        let s = slot as usize;
        let src = &mut self.slab[s];
        src.key = key;
        src.live = true;
        src.log = None;
        let generation = src.generation;
        self.gstate[s * ng..(s + 1) * ng].fill(GROUP_INIT);
        self.dstate[s * nd..(s + 1) * nd].fill(DetState::default());
        self.index.insert(hash, slot);
        self.live += 1;
        self.tier1.push_back((slot, generation));
        if self.tier1.len() > 2 * self.live + 1024 {
            let slab = &self.slab;
            self.tier1.retain(|&(s, g)| {
                let src = &slab[s as usize];
                src.live && src.generation == g && src.pairs.len() <= 1
            });
        }
        slot
    }

    /// The windows of the counting groups, in group order (the order of the
    /// first detector using each window).
    pub fn windows(&self) -> Vec<Window> {
        self.groups.iter().map(|g| g.window).collect()
    }

    /// Checkpoints: every tracked source, in slot order, times in engine time.
    pub fn snapshot(&self) -> Vec<SourceSnapshot> {
        let ng = self.groups.len();
        let nd = self.thresholds.len();
        let mut v = Vec::with_capacity(self.live);
        for (slot, src) in self.slab.iter().enumerate().filter(|(_, s)| s.live) {
            let mut pairs = Vec::with_capacity(src.pairs.len());
            src.pairs.for_each(|p, t| pairs.push((*p, t)));
            pairs.sort_unstable();
            let (log, base) = match &src.log {
                Some(l) => (l.events.iter().copied().collect(), l.base),
                None => (Vec::new(), 0),
            };
            v.push(SourceSnapshot {
                key: src.key,
                pairs,
                groups: self.gstate[slot * ng..(slot + 1) * ng]
                    .iter()
                    .map(|g| {
                        Some(GroupSnapshot {
                            window: g.window,
                            count: g.count,
                            cursor: g.cursor.saturating_sub(base),
                            first: g.first,
                            last: g.last,
                        })
                    })
                    .collect(),
                dets: self.dstate[slot * nd..(slot + 1) * nd]
                    .iter()
                    .map(|d| (d.last_alert, d.seq))
                    .collect(),
                log,
            });
        }
        v
    }

    /// Restores one source from a checkpoint (already mapped onto this
    /// configuration's groups and detectors), then forgets what can no longer
    /// count at `at` (the engine's failure clock): sliding log entries out of
    /// every sliding window, and pairs out of every window. Returns the pairs
    /// forgotten; the source itself is forgotten when none is left.
    pub fn restore(&mut self, s: SourceSnapshot, at: u64) -> usize {
        let slot = self.slot_for(s.key);
        let si = slot as usize;
        let ng = self.groups.len();
        let nd = self.thresholds.len();
        let h = &self.hasher;
        let src = &mut self.slab[si];
        for &(p, t) in &s.pairs {
            src.pairs.upsert(h, p, t);
        }
        let log_len = s.log.len() as u64;
        if self.any_sliding && !s.log.is_empty() {
            src.log = Some(Box::new(SlidingLog {
                events: s.log.into(),
                base: 0,
            }));
        }
        for g in 0..ng {
            let window = self.groups[g].window;
            self.gstate[si * ng + g] = match s.groups.get(g).copied().flatten() {
                Some(gs) => GroupState {
                    window: gs.window,
                    count: gs.count,
                    cursor: gs.cursor.min(log_len),
                    first: gs.first,
                    last: gs.last,
                },
                // A window the checkpoint did not have: counted afresh from
                // the pairs (a sliding one starts empty: no log to expire).
                None => {
                    let counted: Vec<u64> = match window {
                        Window::None => s.pairs.iter().map(|&(_, t)| t).collect(),
                        Window::Tumbling(len) => {
                            let latest = s.pairs.iter().map(|&(_, t)| t).max().unwrap_or(0);
                            let k = tumbling_index(latest, len, self.offset_ns);
                            s.pairs
                                .iter()
                                .map(|&(_, t)| t)
                                .filter(|&t| tumbling_index(t, len, self.offset_ns) == k)
                                .collect()
                        }
                        Window::Sliding(_) => Vec::new(),
                    };
                    GroupState {
                        window: match window {
                            Window::Tumbling(len) => counted
                                .iter()
                                .max()
                                .map_or(i64::MIN, |&t| tumbling_index(t, len, self.offset_ns)),
                            _ => i64::MIN,
                        },
                        count: counted.len() as u32,
                        cursor: log_len,
                        first: counted.iter().copied().min().unwrap_or(0),
                        last: counted.iter().copied().max().unwrap_or(0),
                    }
                }
            };
        }
        for d in 0..nd {
            let (last_alert, seq) = s.dets.get(d).copied().unwrap_or_default();
            self.dstate[si * nd + d] = DetState { last_alert, seq };
        }
        if self.any_sliding {
            self.expire_sliding(si, at);
            self.trim_events(si);
        }
        let offset = self.offset_ns;
        let relevant = |t: u64| {
            self.groups.iter().any(|g| match g.window {
                Window::None => true,
                Window::Tumbling(len) => {
                    tumbling_index(t, len, offset) >= tumbling_index(at, len, offset)
                }
                Window::Sliding(len) => t.saturating_add(len) > at,
            })
        };
        let keep: Vec<(Pair, u64)> = s
            .pairs
            .iter()
            .copied()
            .filter(|&(_, t)| relevant(t))
            .collect();
        let dropped = s.pairs.len() - keep.len();
        if keep.is_empty() {
            self.remove(slot);
            self.evicted -= 1;
        } else if dropped > 0 {
            let mut pairs = PairSet::Empty;
            for (p, t) in keep {
                pairs.upsert(&self.hasher, p, t);
            }
            self.slab[si].pairs = pairs;
        }
        dropped
    }

    /// The largest count of any window: how much of a scanner it looks like.
    fn weight(&self, slot: usize) -> u32 {
        let ng = self.groups.len();
        self.gstate[slot * ng..(slot + 1) * ng]
            .iter()
            .map(|g| g.count)
            .max()
            .unwrap_or(0)
    }

    fn evict_one(&mut self) {
        while let Some((s, g)) = self.tier1.pop_front() {
            let src = &self.slab[s as usize];
            if src.live && src.generation == g && src.pairs.len() <= 1 {
                self.remove(s);
                return;
            }
        }
        let n = self.slab.len();
        let mut best: Option<(u32, usize)> = None;
        for _ in 0..16 {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let i = (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize;
            if !self.slab[i].live {
                continue;
            }
            let w = self.weight(i);
            if best.is_none_or(|(bw, _)| w < bw) {
                best = Some((w, i));
            }
        }
        let victim = match best {
            Some((_, i)) => i,
            None => match self.slab.iter().position(|s| s.live) {
                Some(i) => i,
                None => return,
            },
        };
        self.remove(victim as u32);
    }

    fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        let hash = self.hash(&self.slab[s].key);
        self.index.remove(hash, slot);
        let src = &mut self.slab[s];
        src.live = false;
        src.generation = src.generation.wrapping_add(1);
        src.pairs = PairSet::Empty;
        src.log = None;
        self.free.push(slot);
        self.live -= 1;
        self.evicted += 1;
    }

    /// Bytes allocated for tracked sources (slab, per-window state, index,
    /// eviction FIFO and each source's own pair table and log).
    pub fn allocated_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Source>()
            + self.gstate.capacity() * std::mem::size_of::<GroupState>()
            + self.dstate.capacity() * std::mem::size_of::<DetState>()
            + self.index.allocated_bytes()
            + self.tier1.capacity() * 8
            + self.free.capacity() * 4
            + self
                .slab
                .iter()
                .map(|s| {
                    s.pairs.allocated_bytes()
                        + s.log.as_ref().map_or(0, |l| {
                            std::mem::size_of::<SlidingLog>()
                                + l.events.capacity() * std::mem::size_of::<(u64, Pair)>()
                        })
                })
                .sum::<usize>()
    }
}
