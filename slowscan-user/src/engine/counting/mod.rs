//! Counting (R6, R6.3) and the alert rule (R8): per source, the distinct
//! (destination IP, destination port) pairs among Failed attempts in each
//! detector's time window, one count per distinct [`Window`] shared by the
//! thresholds that use it.
//!
//! Every window is seen the same way: at time t it counts the pairs whose
//! latest failure is at or after its start — `t − W` exclusive for sliding
//! windows, the start of the current clock-aligned window for tumbling ones
//! (R6.1), the beginning for `none`. Failures arrive in SYN order with a time
//! that never goes backwards (see `Engine`), so starts only move forward.
//!
//! Per source, memory is bounded however many pairs it fails:
//! * one failed pair (the spoofed-SYN flood, the misconfigured client of the
//!   paper's Fig. 6) is held inline in the source's slot, nothing allocated;
//! * up to [`EXACT_CAP`] pairs: exactly, each with its latest failure — a
//!   plain list scanned for each count while there are few, then an index
//!   and a log over which counts are kept incrementally (`exact.rs`);
//! * beyond: a sliding HyperLogLog (`sketch.rs`, ≈ 13 KiB) answers every
//!   window at minute resolution; alerts then say their count is estimated.
//!   A source stays sketched until none of its pairs is left in any window
//!   (its longest window after its latest failure), then counts exactly
//!   again. So a crossing is exact for a source that has not held more than
//!   [`EXACT_CAP`] pairs since it was last empty, and estimated otherwise,
//!   whatever the threshold — each window's count then comes from the sketch.
//!
//! Pairs out of every window are forgotten, and sources with none left are
//! forgotten by [`Counting::sweep`]. The number of tracked sources is capped:
//! when full, the oldest source with a single failed pair is evicted (a FIFO
//! "tier 1", the flood case), otherwise the lowest count of 16 sampled.
//!
//! # R8 per detector, and across detectors
//! For each (source, detector): an alert when the count first exceeds the
//! threshold (`alert_seq` 1), then each time it reaches twice the count of
//! the detector's previous alert (`alert_seq` 2, 3 …); a count that falls
//! back to ≤ threshold (a sliding window moving on, a new tumbling window)
//! re-arms the first crossing.
//!
//! One scan is usually seen by several detectors at once. So that it does not
//! flood the sink, a detector's alert is *suppressed* (counted in
//! `alerts_suppressed`, and its `alert_seq` still advances) when an alert for
//! the same source was already written at a time inside this detector's
//! window with at least half this count. A detector therefore speaks only
//! when it knows at least twice as much as the last alert it can see.

mod exact;
pub(crate) mod sketch;

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

use self::exact::Exact;
use self::sketch::{RegisterSnapshot, SlidingHll, pair_hash};
use super::alert::{Alert, Shape, Target};
use super::identity::Identity;
use super::index::{SlotIndex, Stage, prefetch};
use super::{DetectorConfig, Window, ip_from};
use crate::rfc3339;

pub(crate) type Hasher = foldhash::fast::RandomState;

/// Distinct failed pairs a source keeps exactly; beyond, a sketch (R6.3).
pub const EXACT_CAP: usize = 128;
/// Pairs a source keeps in a plain list (counted by scanning it) before the
/// indexed exact set.
const SMALL_CAP: usize = 16;
/// Written alerts remembered per source for the cross-detector rule (a
/// frontier: newer ones have fewer failed pairs, so it stays short).
const WRITTEN_KEPT: usize = 16;
/// `Source::only_t` of a slot with no failure yet.
const NO_FAILURE: u64 = u64::MAX;

/// A destination of a failed attempt (R6 counts distinct ones per source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Pair {
    pub addr: [u8; 16],
    pub port: u16,
    /// The destination's family: one identity (a MAC, R9) may fail pairs of
    /// both.
    pub family: u8,
}

impl Pair {
    pub fn new(family: u8, addr: &[u8; 16], port: u16) -> Self {
        Pair {
            addr: crate::addr::canonical(family, addr),
            port,
            family,
        }
    }

    pub fn ip(&self) -> std::net::IpAddr {
        ip_from(self.family, &self.addr)
    }
}

/// What failures are counted under (R9, `identity`): an address or prefix
/// (IPv4 in the first 4 bytes, host bits zero, `len` its prefix length), or a
/// MAC (`family` `AF_MAC`, in the first 6 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SourceKey {
    pub addr: [u8; 16],
    pub family: u8,
    pub len: u8,
}

/// The earliest failure time `w` counts at time `t` (engine time; `offset`
/// turns it into wall-clock time for tumbling alignment).
pub(crate) fn window_start(w: Window, t: u64, offset_ns: i64) -> u64 {
    match w {
        Window::None => 0,
        // (t − W, t]
        Window::Sliding(len) => t.checked_sub(len).map_or(0, |s| s + 1),
        // Aligned to multiples of W since the Unix epoch, in wall-clock time.
        Window::Tumbling(len) => {
            let len = i128::from(len.max(1));
            let wall = i128::from(t) + i128::from(offset_ns);
            let start = wall.div_euclid(len) * len - i128::from(offset_ns);
            start.clamp(0, i128::from(u64::MAX)) as u64
        }
    }
}

#[derive(Clone, Copy, Default)]
struct GroupState {
    count: u32,
    /// Exact sets: absolute index of the first log entry in the window.
    cursor: u64,
}

/// Re-alert state of one (source, detector) (R8).
#[derive(Clone, Copy, Default)]
struct DetState {
    /// Count at the latest alert; 0 = armed for a first crossing.
    last_alert: u32,
    seq: u32,
}

enum Set {
    /// Up to [`SMALL_CAP`] pairs: scanned directly, no log.
    Small(Vec<(Pair, u64)>),
    Exact(Exact),
    Sketch(Box<Sketched>),
}

struct Sketched {
    hll: SlidingHll,
    /// The most recent distinct pairs, oldest first: the alert's sample.
    recent: VecDeque<(u64, Pair)>,
}

/// A source with more than one failed pair (or any, with a threshold of 0).
struct Detail {
    set: Set,
    groups: Box<[GroupState]>,
    dets: Box<[DetState]>,
    /// (count, time) of the latest alerts written for this source.
    written: Vec<(u32, u64)>,
    /// Its latest failure.
    latest: u64,
}

/// 64 bytes: the key (read by every lookup) first.
#[repr(C)]
struct Source {
    key: SourceKey,
    live: bool,
    generation: u32,
    /// With no `detail`: the single failed pair and its latest failure.
    only: Pair,
    only_t: u64,
    detail: Option<Box<Detail>>,
}

const _: () = assert!(std::mem::size_of::<Source>() <= 64);

pub(crate) struct Counting {
    /// Distinct windows, in the order of the first detector using each.
    windows: Vec<Window>,
    group_dets: Vec<Vec<usize>>,
    det_group: Vec<usize>,
    thresholds: Vec<u32>,
    min_threshold: u32,
    slab: Vec<Source>,
    free: Vec<u32>,
    index: SlotIndex,
    tier1: VecDeque<(u32, u32)>,
    live: usize,
    max_sources: usize,
    pub evicted: u64,
    /// Sources forgotten because no failed pair was left in any window.
    pub expired: u64,
    /// Alerts withheld by the cross-detector rule.
    pub suppressed: u64,
    /// Sources whose pairs are held in a sketch (gauge).
    pub sketched: usize,
    rng: u64,
    hasher: Hasher,
    offset_ns: i64,
    max_targets: usize,
    /// Apply the cross-detector rule (R8).
    dedup: bool,
    /// Scratch: each window's start at the failure being counted.
    starts: Vec<u64>,
    /// [`SMALL_CAP`] (tests vary it to compare both exact representations).
    small_cap: usize,
}

/// One tracked source in a checkpoint, times in engine time.
#[derive(Clone, Debug)]
pub(crate) struct SourceSnapshot {
    pub key: SourceKey,
    pub set: SetSnapshot,
    /// Per detector: (count at the latest alert, 0 = armed; alert_seq).
    pub dets: Vec<(u32, u32)>,
    /// (count, time) of the latest alerts written.
    pub written: Vec<(u32, u64)>,
}

#[derive(Clone, Debug)]
pub(crate) enum SetSnapshot {
    /// Distinct failed pairs with the time of each one's latest failure.
    Exact(Vec<(Pair, u64)>),
    Sketch {
        registers: Vec<RegisterSnapshot>,
        recent: Vec<(u64, Pair)>,
        overflowed: u32,
    },
}

/// What a source looks like now (for status and explain).
#[derive(Clone, Debug)]
pub(crate) struct SourceView {
    pub key: SourceKey,
    /// Per window: its count (estimated when `estimated`).
    pub counts: Vec<u32>,
    pub estimated: bool,
    /// Failed pairs with their latest failure, latest first (a sample when
    /// estimated).
    pub pairs: Vec<(Pair, u64)>,
}

impl Counting {
    pub fn new(
        detectors: &[DetectorConfig],
        max_sources: usize,
        offset_ns: i64,
        max_targets: usize,
        dedup: bool,
    ) -> Self {
        let mut windows: Vec<Window> = Vec::new();
        let mut group_dets: Vec<Vec<usize>> = Vec::new();
        let mut det_group = Vec::new();
        for (d, det) in detectors.iter().enumerate() {
            let g = match windows.iter().position(|w| *w == det.window) {
                Some(g) => g,
                None => {
                    windows.push(det.window);
                    group_dets.push(Vec::new());
                    windows.len() - 1
                }
            };
            group_dets[g].push(d);
            det_group.push(g);
        }
        Self {
            windows,
            group_dets,
            det_group,
            thresholds: detectors.iter().map(|d| d.threshold).collect(),
            min_threshold: detectors.iter().map(|d| d.threshold).min().unwrap_or(0),
            slab: Vec::new(),
            free: Vec::new(),
            index: SlotIndex::new(),
            tier1: VecDeque::new(),
            live: 0,
            max_sources: max_sources.max(1),
            evicted: 0,
            expired: 0,
            suppressed: 0,
            sketched: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            hasher: Hasher::default(),
            offset_ns,
            max_targets,
            dedup,
            starts: Vec::new(),
            small_cap: SMALL_CAP,
        }
    }

    pub fn sources(&self) -> usize {
        self.live
    }

    /// The counting windows, in group order.
    /// The earliest failure time any window still counts at `t`.
    pub fn longest_window_start(&self, t: u64) -> u64 {
        self.windows
            .iter()
            .map(|w| window_start(*w, t, self.offset_ns))
            .min()
            .unwrap_or(t)
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    fn start(&self, g: usize, t: u64) -> u64 {
        window_start(self.windows[g], t, self.offset_ns)
    }

    /// The earliest failure time any window counts at `t`: older pairs are
    /// forgotten.
    fn horizon(&self, t: u64) -> u64 {
        (0..self.windows.len())
            .map(|g| self.start(g, t))
            .min()
            .unwrap_or(u64::MAX)
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
        if self.windows.is_empty() {
            return;
        }
        let slot = self.slot_for(src) as usize;
        let s = &mut self.slab[slot];
        if s.detail.is_none() {
            if s.only_t == NO_FAILURE {
                s.only = pair;
                s.only_t = t;
                if self.min_threshold > 0 {
                    // One pair cannot exceed a threshold ≥ 1.
                    return;
                }
                self.promote(slot);
            } else if s.only == pair {
                s.only_t = t;
                return;
            } else {
                self.promote(slot);
            }
        }
        self.update(slot, Some(pair), t, decided_wall, out);
    }

    /// Moves a source's single pair into a [`Detail`].
    fn promote(&mut self, slot: usize) {
        let ng = self.windows.len();
        let s = &mut self.slab[slot];
        let mut set = Vec::with_capacity(4);
        let mut groups = vec![GroupState::default(); ng].into_boxed_slice();
        if s.only_t != NO_FAILURE {
            set.push((s.only, s.only_t));
            for g in groups.iter_mut() {
                g.count = 1;
            }
        }
        s.detail = Some(Box::new(Detail {
            set: Set::Small(set),
            groups,
            dets: vec![DetState::default(); self.thresholds.len()].into_boxed_slice(),
            written: Vec::new(),
            latest: s.only_t,
        }));
    }

    /// Moves the windows of a detailed source to `t` (re-arming detectors
    /// whose count falls to their threshold), then counts `pair`, if any, at
    /// `t` and pushes the alerts decided.
    fn update(
        &mut self,
        slot: usize,
        pair: Option<Pair>,
        t: u64,
        decided_wall: i64,
        out: &mut Vec<Alert>,
    ) {
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        starts.extend((0..self.windows.len()).map(|g| self.start(g, t)));
        let horizon = starts.iter().copied().min().unwrap_or(u64::MAX);
        let h = &self.hasher;
        let Detail {
            set,
            groups,
            dets,
            written,
            latest,
        } = self.slab[slot]
            .detail
            .as_deref_mut()
            .expect("a detailed source");
        // R8: a count back at or below a threshold re-arms its first crossing.
        let rearm = |g: usize, count: u32, dets: &mut [DetState]| {
            for &k in &self.group_dets[g] {
                if count <= self.thresholds[k] {
                    dets[k] = DetState::default();
                }
            }
        };
        let mut to_sketch = false;
        let mut to_exact = false;
        if matches!(set, Set::Sketch(_)) && *latest < horizon {
            // No pair of the sketch is left in any window: exact again.
            *set = Set::Small(Vec::new());
            groups.fill(GroupState::default());
            self.sketched -= 1;
        }
        match set {
            Set::Small(v) => {
                let count = |v: &[(Pair, u64)], start: u64| {
                    v.iter().filter(|&&(_, pt)| pt >= start).count() as u32
                };
                for (g, gs) in groups.iter_mut().enumerate() {
                    gs.count = count(v, starts[g]);
                    rearm(g, gs.count, dets);
                }
                if let Some(p) = pair {
                    match v.iter_mut().find(|(q, _)| *q == p) {
                        Some((_, pt)) => *pt = t,
                        None => v.push((p, t)),
                    }
                }
                v.retain(|&(_, pt)| pt >= horizon);
                for (g, gs) in groups.iter_mut().enumerate() {
                    gs.count = count(v, starts[g]);
                }
                to_exact = v.len() > self.small_cap;
            }
            Set::Exact(e) => {
                for (g, gs) in groups.iter_mut().enumerate() {
                    gs.count -= e.advance(h, &mut gs.cursor, starts[g]);
                    rearm(g, gs.count, dets);
                }
                if let Some(p) = pair {
                    let prev = e.upsert(h, p, t);
                    for (g, gs) in groups.iter_mut().enumerate() {
                        if prev.is_none_or(|pt| pt < starts[g]) {
                            gs.count += 1;
                        }
                    }
                }
                e.trim(h, groups.iter().map(|g| g.cursor).min().unwrap_or(0));
                if e.needs_compaction() {
                    e.compact(h);
                    for (g, gs) in groups.iter_mut().enumerate() {
                        gs.cursor = e.cursor_at(starts[g]);
                    }
                }
                to_sketch = e.len() > EXACT_CAP;
            }
            Set::Sketch(sk) => {
                for (g, gs) in groups.iter_mut().enumerate() {
                    if self.group_dets[g].iter().any(|&k| dets[k].last_alert != 0) {
                        gs.count = sk.hll.estimate(starts[g]) as u32;
                        rearm(g, gs.count, dets);
                    }
                }
                if let Some(p) = pair {
                    sk.hll.insert(pair_hash(&p.addr, p.port), t);
                    sk.recent.retain(|(_, q)| *q != p);
                    sk.recent.push_back((t, p));
                    if sk.recent.len() > 32 {
                        sk.recent.pop_front();
                    }
                }
                sk.hll.expire(horizon);
                while sk.recent.front().is_some_and(|&(rt, _)| rt < horizon) {
                    sk.recent.pop_front();
                }
                for (g, gs) in groups.iter_mut().enumerate() {
                    gs.count = sk.hll.estimate(starts[g]) as u32;
                }
            }
        }
        written.retain(|&(_, wt)| wt >= horizon);
        if to_exact && let Set::Small(v) = set {
            let e = Exact::from_pairs(h, std::mem::take(v));
            for (g, gs) in groups.iter_mut().enumerate() {
                gs.cursor = e.cursor_at(starts[g]);
            }
            *set = Set::Exact(e);
        }
        if pair.is_some() {
            *latest = t;
            self.decide_alerts(slot, &starts, t, decided_wall, out);
        }
        if to_sketch {
            self.switch_to_sketch(slot, t);
        }
        self.starts = starts;
    }

    /// R8 for every detector of a source that just failed at `t`, with the
    /// cross-detector rule (module documentation).
    fn decide_alerts(
        &mut self,
        slot: usize,
        starts: &[u64],
        t: u64,
        decided_wall: i64,
        out: &mut Vec<Alert>,
    ) {
        for k in 0..self.thresholds.len() {
            let g = self.det_group[k];
            let d = self.slab[slot].detail.as_mut().expect("a detailed source");
            let count = d.groups[g].count;
            let ds = &mut d.dets[k];
            let fire = if ds.last_alert == 0 {
                count > self.thresholds[k]
            } else {
                u64::from(count) >= 2 * u64::from(ds.last_alert)
            };
            if !fire {
                continue;
            }
            ds.last_alert = count;
            ds.seq += 1;
            let seq = ds.seq;
            let seen = self.dedup
                && d.written
                    .iter()
                    .any(|&(c, wt)| wt >= starts[g] && u64::from(count) < 2 * u64::from(c));
            if seen {
                self.suppressed += 1;
                continue;
            }
            // An alert written earlier with no more failed pairs can never
            // withhold one that this one would not: keep the frontier.
            d.written.retain(|&(c, _)| c > count);
            if d.written.len() == WRITTEN_KEPT {
                d.written.remove(0);
            }
            d.written.push((count, t));
            out.push(self.build_alert(slot, g, k, seq, starts[g], t, decided_wall));
        }
    }

    /// Replaces an exact set grown past the cap by a sketch.
    fn switch_to_sketch(&mut self, slot: usize, t: u64) {
        let ng = self.windows.len();
        let starts: Vec<u64> = (0..ng).map(|g| self.start(g, t)).collect();
        let d = self.slab[slot].detail.as_mut().expect("a detailed source");
        let Set::Exact(e) = &d.set else { return };
        let mut pairs: Vec<(u64, Pair)> = e.pairs().map(|(p, t)| (t, p)).collect();
        pairs.sort_unstable();
        let mut hll = SlidingHll::new(pairs.first().map_or(t, |p| p.0));
        for &(pt, p) in &pairs {
            hll.insert(pair_hash(&p.addr, p.port), pt);
        }
        let recent = pairs[pairs.len().saturating_sub(32)..]
            .iter()
            .copied()
            .collect();
        for (g, gs) in d.groups.iter_mut().enumerate() {
            gs.count = hll.estimate(starts[g]) as u32;
            gs.cursor = 0;
        }
        d.set = Set::Sketch(Box::new(Sketched { hll, recent }));
        self.sketched += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn build_alert(
        &self,
        slot: usize,
        g: usize,
        k: usize,
        seq: u32,
        start: u64,
        t: u64,
        decided_wall: i64,
    ) -> Alert {
        let source = &self.slab[slot];
        let d = source.detail.as_ref().expect("a detailed source");
        let (mut pairs, first, estimated): (Vec<(u64, Pair)>, u64, bool) = match &d.set {
            Set::Small(v) => {
                let v: Vec<(u64, Pair)> = v
                    .iter()
                    .filter(|&&(_, pt)| pt >= start)
                    .map(|&(p, pt)| (pt, p))
                    .collect();
                let first = v.iter().map(|&(pt, _)| pt).min().unwrap_or(t);
                (v, first, false)
            }
            Set::Exact(e) => {
                let v: Vec<(u64, Pair)> = e
                    .pairs()
                    .filter(|&(_, pt)| pt >= start)
                    .map(|(p, pt)| (pt, p))
                    .collect();
                let first = v.iter().map(|&(pt, _)| pt).min().unwrap_or(t);
                (v, first, false)
            }
            Set::Sketch(sk) => {
                let v: Vec<(u64, Pair)> = sk
                    .recent
                    .iter()
                    .copied()
                    .filter(|&(pt, _)| pt >= start)
                    .collect();
                let first = sk
                    .hll
                    .oldest_since(start)
                    .into_iter()
                    .chain(v.iter().map(|&(pt, _)| pt))
                    .min()
                    .unwrap_or(t)
                    .max(start);
                (v, first, true)
            }
        };
        let hosts: HashSet<[u8; 16]> = pairs.iter().map(|(_, p)| p.addr).collect();
        let ports: HashSet<u16> = pairs.iter().map(|(_, p)| p.port).collect();
        // The most recent targets, reported oldest first.
        pairs.sort_unstable_by(|a, b| b.cmp(a));
        pairs.truncate(self.max_targets);
        pairs.reverse();
        let window = self.windows[g];
        let identity = Identity::of_key(&source.key);
        Alert {
            timestamp_ns: decided_wall,
            // The engine names the deciding attempt's address and the
            // identity's recent addresses (R9).
            source: identity
                .address()
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            identity,
            addresses: Vec::new(),
            addresses_total: 1,
            detector: k,
            failed_pairs: d.groups[g].count,
            estimated,
            threshold: self.thresholds[k],
            window,
            window_start_ns: match window {
                Window::None => None,
                Window::Sliding(len) => Some(rfc3339::wall(t, self.offset_ns) - len as i64),
                Window::Tumbling(_) => Some(rfc3339::wall(start, self.offset_ns)),
            },
            first_failure_ns: rfc3339::wall(first, self.offset_ns),
            last_failure_ns: rfc3339::wall(t, self.offset_ns),
            shape: Shape::classify(hosts.len(), ports.len()),
            distinct_hosts: hosts.len() as u32,
            distinct_ports: ports.len() as u32,
            targets: pairs
                .iter()
                .map(|(_, p)| Target {
                    ip: p.ip(),
                    port: p.port,
                })
                .collect(),
            alert_seq: seq,
        }
    }

    /// Moves every source's windows to `t` (no failure is counted earlier
    /// than `t` afterwards): pairs out of every window are forgotten, and
    /// sources left with none. Returns the sources forgotten.
    pub fn sweep(&mut self, t: u64) -> usize {
        let before = self.live;
        for slot in 0..self.slab.len() {
            if self.slab[slot].live {
                self.expire_source(slot, t);
            }
        }
        before - self.live
    }

    /// [`Counting::sweep`] for one source.
    fn expire_source(&mut self, slot: usize, t: u64) {
        let horizon = self.horizon(t);
        let s = &self.slab[slot];
        if s.detail.is_none() {
            if s.only_t == NO_FAILURE || s.only_t < horizon {
                self.remove(slot as u32);
                self.evicted -= 1;
                self.expired += 1;
            }
            return;
        }
        let mut none = Vec::new();
        self.update(slot, None, t, 0, &mut none);
        let d = self.slab[slot].detail.as_ref().expect("a detailed source");
        let empty = match &d.set {
            Set::Small(v) => v.is_empty(),
            Set::Exact(e) => e.len() == 0,
            Set::Sketch(sk) => sk.recent.is_empty() && d.groups.iter().all(|g| g.count == 0),
        };
        if empty {
            self.remove(slot as u32);
            self.evicted -= 1;
            self.expired += 1;
        }
    }

    #[inline]
    pub fn hash(&self, key: &SourceKey) -> u64 {
        let w = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap());
        self.hasher.hash_one((
            w(&key.addr[..8]),
            w(&key.addr[8..]) ^ u64::from(key.family) ^ (u64::from(key.len) << 8),
        ))
    }

    /// Prefetches a source about to fail, one [`Stage`] at a time: its
    /// bucket, its slot, its details, the pairs counting reads behind them.
    #[inline]
    pub fn prefetch_at(&self, stage: Stage, hash: u64) {
        let detail = || {
            let s = self.index.peek(hash)?;
            self.slab[s as usize].detail.as_deref()
        };
        match stage {
            Stage::Bucket | Stage::Entry => self.index.prefetch_stage(hash, stage, &self.slab),
            Stage::Detail => {
                if let Some(d) = detail() {
                    prefetch(d as *const Detail);
                }
            }
            Stage::Pairs => {
                if let Some(d) = detail() {
                    prefetch(d.groups.as_ptr());
                    prefetch(d.dets.as_ptr());
                    if let Set::Small(v) = &d.set {
                        prefetch(v.as_ptr());
                    }
                }
            }
        }
    }

    fn find(&self, key: &SourceKey) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(self.hash(key), |i| slab[i as usize].key == *key)
    }

    fn slot_for(&mut self, key: SourceKey) -> u32 {
        if let Some(i) = self.find(&key) {
            return i;
        }
        if self.live >= self.max_sources {
            self.evict_one();
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slab.push(Source {
                    key,
                    live: false,
                    generation: 0,
                    only: Pair {
                        addr: [0; 16],
                        port: 0,
                        family: 0,
                    },
                    only_t: NO_FAILURE,
                    detail: None,
                });
                (self.slab.len() - 1) as u32
            }
        };
        let src = &mut self.slab[slot as usize];
        src.key = key;
        src.live = true;
        src.only_t = NO_FAILURE;
        src.detail = None;
        let generation = src.generation;
        self.index.insert(self.hash(&key), slot);
        self.live += 1;
        self.tier1.push_back((slot, generation));
        if self.tier1.len() > 2 * self.live + 1024 {
            let slab = &self.slab;
            self.tier1.retain(|&(s, g)| slab[s as usize].single(g));
        }
        slot
    }

    /// The largest count of any window: how much of a scanner it looks like.
    fn weight(&self, slot: usize) -> u32 {
        match &self.slab[slot].detail {
            None => 1,
            Some(d) => d.groups.iter().map(|g| g.count).max().unwrap_or(0),
        }
    }

    fn evict_one(&mut self) {
        while let Some((s, g)) = self.tier1.pop_front() {
            if self.slab[s as usize].single(g) {
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
        if let Some(d) = &src.detail
            && matches!(d.set, Set::Sketch(_))
        {
            self.sketched -= 1;
        }
        src.live = false;
        src.generation = src.generation.wrapping_add(1);
        src.only_t = NO_FAILURE;
        src.detail = None;
        self.free.push(slot);
        self.live -= 1;
        self.evicted += 1;
    }

    /// What is known of one source now (`None` if it is not tracked).
    pub fn view(&self, key: &SourceKey) -> Option<SourceView> {
        let s = &self.slab[self.find(key)? as usize];
        let ng = self.windows.len();
        let mut v = match &s.detail {
            None => SourceView {
                key: s.key,
                counts: (0..ng)
                    .map(|g| u32::from(s.only_t >= self.start(g, s.only_t)))
                    .collect(),
                estimated: false,
                pairs: vec![(s.only, s.only_t)],
            },
            Some(d) => SourceView {
                key: s.key,
                counts: d.groups.iter().map(|g| g.count).collect(),
                estimated: matches!(d.set, Set::Sketch(_)),
                pairs: match &d.set {
                    Set::Small(v) => v.clone(),
                    Set::Exact(e) => e.pairs().collect(),
                    Set::Sketch(sk) => sk.recent.iter().map(|&(t, p)| (p, t)).collect(),
                },
            },
        };
        v.pairs
            .sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(v)
    }

    /// Every tracked source's view, for `status` (its top sources).
    pub fn views(&self) -> impl Iterator<Item = SourceView> + '_ {
        self.slab
            .iter()
            .filter(|s| s.live)
            .filter_map(|s| self.view(&s.key))
    }

    /// Checkpoints: every tracked source, in slot order, times in engine time.
    pub fn snapshot(&self) -> Vec<SourceSnapshot> {
        let mut v = Vec::with_capacity(self.live);
        for src in self.slab.iter().filter(|s| s.live) {
            let snap = match &src.detail {
                None => SourceSnapshot {
                    key: src.key,
                    set: SetSnapshot::Exact(vec![(src.only, src.only_t)]),
                    dets: Vec::new(),
                    written: Vec::new(),
                },
                Some(d) => SourceSnapshot {
                    key: src.key,
                    set: match &d.set {
                        Set::Small(v) => {
                            let mut pairs = v.clone();
                            pairs.sort_unstable();
                            SetSnapshot::Exact(pairs)
                        }
                        Set::Exact(e) => {
                            let mut pairs: Vec<(Pair, u64)> = e.pairs().collect();
                            pairs.sort_unstable();
                            SetSnapshot::Exact(pairs)
                        }
                        Set::Sketch(sk) => SetSnapshot::Sketch {
                            registers: sk.hll.snapshot(),
                            recent: sk.recent.iter().copied().collect(),
                            overflowed: sk.hll.overflowed,
                        },
                    },
                    dets: d.dets.iter().map(|s| (s.last_alert, s.seq)).collect(),
                    written: d.written.clone(),
                },
            };
            v.push(snap);
        }
        v
    }

    /// Restores one source from a checkpoint (its detectors already mapped
    /// onto this configuration's), as it was after its latest failure, then
    /// moves it to `at` (the engine's failure clock), forgetting what no
    /// window holds any more. Returns whether the source is still tracked.
    pub fn restore(&mut self, s: SourceSnapshot, at: u64) -> bool {
        if self.windows.is_empty() {
            return false;
        }
        let slot = self.slot_for(s.key) as usize;
        let ng = self.windows.len();
        let nd = self.thresholds.len();
        let h = &self.hasher;
        let (set, latest) = match s.set {
            SetSnapshot::Exact(pairs) if pairs.is_empty() => {
                self.remove(slot as u32);
                self.evicted -= 1;
                return false;
            }
            SetSnapshot::Exact(pairs) => {
                let latest = pairs.iter().map(|&(_, t)| t).max().unwrap_or(0);
                if pairs.len() == 1 && s.dets.iter().all(|d| d.0 == 0) && self.min_threshold > 0 {
                    let src = &mut self.slab[slot];
                    src.only = pairs[0].0;
                    src.only_t = pairs[0].1;
                    self.expire_source(slot, at);
                    return self.slab[slot].live;
                }
                if pairs.len() <= self.small_cap {
                    (Set::Small(pairs), latest)
                } else {
                    (Set::Exact(Exact::from_pairs(h, pairs)), latest)
                }
            }
            SetSnapshot::Sketch {
                registers,
                recent,
                overflowed,
            } => {
                let Some(mut hll) = SlidingHll::from_snapshot(&registers) else {
                    self.remove(slot as u32);
                    self.evicted -= 1;
                    return false;
                };
                hll.overflowed = overflowed;
                self.sketched += 1;
                let latest = recent.iter().map(|&(t, _)| t).max().unwrap_or(0);
                (
                    Set::Sketch(Box::new(Sketched {
                        hll,
                        recent: recent.into(),
                    })),
                    latest,
                )
            }
        };
        let mut groups = vec![GroupState::default(); ng].into_boxed_slice();
        for (g, gs) in groups.iter_mut().enumerate() {
            let start = self.start(g, latest);
            match &set {
                Set::Small(v) => gs.count = v.iter().filter(|&&(_, t)| t >= start).count() as u32,
                Set::Exact(e) => {
                    gs.cursor = e.cursor_at(start);
                    gs.count = e.pairs().filter(|&(_, t)| t >= start).count() as u32;
                }
                Set::Sketch(sk) => gs.count = sk.hll.estimate(start) as u32,
            }
        }
        let mut dets = vec![DetState::default(); nd].into_boxed_slice();
        for (k, ds) in dets.iter_mut().enumerate() {
            let (last_alert, seq) = s.dets.get(k).copied().unwrap_or_default();
            *ds = DetState { last_alert, seq };
        }
        let to_sketch = matches!(&set, Set::Exact(e) if e.len() > EXACT_CAP);
        self.slab[slot].detail = Some(Box::new(Detail {
            set,
            groups,
            dets,
            written: s.written,
            latest,
        }));
        if to_sketch {
            self.switch_to_sketch(slot, latest);
        }
        self.expire_source(slot, at);
        self.slab[slot].live
    }

    /// Bytes allocated for tracked sources (slab, index, eviction FIFO and
    /// each source's own details).
    pub fn allocated_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Source>()
            + self.index.allocated_bytes()
            + self.tier1.capacity() * 8
            + self.free.capacity() * 4
            + self
                .slab
                .iter()
                .filter_map(|s| s.detail.as_ref())
                .map(|d| {
                    std::mem::size_of::<Detail>()
                        + d.groups.len() * std::mem::size_of::<GroupState>()
                        + d.dets.len() * std::mem::size_of::<DetState>()
                        + d.written.capacity() * 16
                        + match &d.set {
                            Set::Small(v) => v.capacity() * std::mem::size_of::<(Pair, u64)>(),
                            Set::Exact(e) => e.allocated_bytes(),
                            Set::Sketch(sk) => {
                                std::mem::size_of::<Sketched>()
                                    + sk.hll.allocated_bytes()
                                    + sk.recent.capacity() * std::mem::size_of::<(u64, Pair)>()
                            }
                        }
                })
                .sum::<usize>()
    }
}

impl Source {
    /// Still the same live source, with at most one failed pair.
    fn single(&self, generation: u32) -> bool {
        self.live && self.generation == generation && self.detail.is_none()
    }
}

#[cfg(test)]
mod tests;
