//! An independent reference analysis of a generated network, from the
//! generator's own attempt list and not through the engine:
//!
//! - R5: an attempt is Established iff its follow-up segment carries the
//!   SYN's sequence + 1 (mod 2^32), flags exactly ACK, PSH+ACK, FIN or
//!   FIN+ACK once ECE, CWR and URG are ignored, and is stamped no earlier
//!   than the SYN and no later than the handshake timeout after it
//!   (R5.1, 60 s). Otherwise it Failed. Replies are not consulted (R3).
//! - R4.5: a failure to (IP, port) with an eligible port (R4.3: 1–1023,
//!   3128, 5666) is an *outage* when some attempt to that destination was
//!   Established (follow-up time) within the 30 days before the failure's
//!   SYN; outages count toward no detector.
//! - R6 with a sliding window W: at each counted failure at SYN time t, the
//!   count is the number of distinct (IP, port) pairs with a counted
//!   failure whose SYN time lies in (t − W, t]; a detector (W, threshold)
//!   fires at the first failure where count > threshold, when that failure
//!   is decided (SYN + handshake timeout, R7).
use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use super::{Attempt, SECOND_NS, THIRTY_DAYS_S};

pub const HANDSHAKE_TIMEOUT_NS: u64 = 60 * SECOND_NS;

const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

/// R4.3 with the default eligible high ports.
pub fn eligible(port: u16) -> bool {
    (1..1024).contains(&port) || port == 3128 || port == 5666
}

/// R5 for one attempt.
pub fn established(a: &Attempt, timeout_ns: u64) -> bool {
    a.follow_up.is_some_and(|f| {
        let flags = f.flags & !(ECE | CWR | URG);
        f.seq == a.seq.wrapping_add(1)
            && [ACK, PSH | ACK, FIN, FIN | ACK].contains(&flags)
            && f.at_ns >= a.syn_ns
            && f.at_ns - a.syn_ns <= timeout_ns
    })
}

/// One counted failure: SYN time and destination.
pub type Failure = (u64, (IpAddr, u16));

/// What one source did, by the reference's rules.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub attempts: u64,
    pub established: u64,
    /// Failures to live services (R4.5): counted apart.
    pub outages: u64,
    /// The failures that count (R6), in SYN order.
    pub counted: Vec<Failure>,
    /// Every failure, outages included (what a sensor without the service
    /// map would count).
    pub all_failures: Vec<Failure>,
}

impl Source {
    /// The largest number of distinct pairs in any sliding window of
    /// `window_ns` over `failures`.
    pub fn max_distinct_in(failures: &[Failure], window_ns: u64) -> usize {
        let mut best = 0;
        sweep(failures, window_ns, |_, count| {
            best = best.max(count);
            true
        });
        best
    }

    pub fn max_distinct(&self, window_ns: u64) -> usize {
        Self::max_distinct_in(&self.counted, window_ns)
    }

    pub fn max_distinct_without_service_map(&self, window_ns: u64) -> usize {
        Self::max_distinct_in(&self.all_failures, window_ns)
    }

    /// When the detector (window, threshold) first fires: the decision time
    /// of the failure that makes the count exceed the threshold.
    pub fn fires_at(&self, window_ns: u64, threshold: u32) -> Option<u64> {
        first_exceeding(&self.counted, window_ns, threshold)
    }
}

/// Calls `f(t, count)` at each failure in order with the distinct pairs in
/// (t − window, t]; stops when `f` returns false.
fn sweep(failures: &[Failure], window_ns: u64, mut f: impl FnMut(u64, usize) -> bool) {
    let mut latest: HashMap<(IpAddr, u16), u64> = HashMap::new();
    let mut lo = 0;
    // Failures in (t − W, t], kept as a multiset of pairs.
    let mut inside: HashMap<(IpAddr, u16), u32> = HashMap::new();
    for (i, &(t, pair)) in failures.iter().enumerate() {
        *inside.entry(pair).or_default() += 1;
        latest.insert(pair, t);
        while failures[lo].0.saturating_add(window_ns) <= t {
            let p = failures[lo].1;
            let n = inside.get_mut(&p).expect("counted");
            *n -= 1;
            if *n == 0 {
                inside.remove(&p);
            }
            lo += 1;
        }
        debug_assert!(lo <= i);
        if !f(t, inside.len()) {
            return;
        }
    }
}

/// The decision time of the first failure at which the distinct pairs in
/// the window exceed `threshold`.
pub fn first_exceeding(failures: &[Failure], window_ns: u64, threshold: u32) -> Option<u64> {
    let mut at = None;
    sweep(failures, window_ns, |t, count| {
        if count > threshold as usize {
            at = Some(t + HANDSHAKE_TIMEOUT_NS);
            false
        } else {
            true
        }
    });
    at
}

/// The reference analysis of a list of attempts (in SYN order).
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub attempts: u64,
    pub established: u64,
    pub failed: u64,
    pub outages: u64,
    pub sources: BTreeMap<IpAddr, Source>,
}

pub fn analyse(attempts: &[Attempt]) -> Analysis {
    let service_map_ns = THIRTY_DAYS_S * SECOND_NS;
    // Establishment times per destination (follow-up time), sorted.
    let mut live: HashMap<(IpAddr, u16), Vec<u64>> = HashMap::new();
    let decided: Vec<bool> = attempts
        .iter()
        .map(|a| established(a, HANDSHAKE_TIMEOUT_NS))
        .collect();
    for (a, &ok) in attempts.iter().zip(&decided) {
        if ok && eligible(a.dport) {
            let at = a.follow_up.expect("established").at_ns;
            live.entry((a.dst, a.dport)).or_default().push(at);
        }
    }
    for times in live.values_mut() {
        times.sort_unstable();
    }
    let is_live = |pair: (IpAddr, u16), t: u64| {
        live.get(&pair).is_some_and(|times| {
            // The latest establishment at or before t.
            let i = times.partition_point(|&e| e <= t);
            i > 0 && times[i - 1] + service_map_ns >= t
        })
    };
    let mut out = Analysis::default();
    let mut prev = 0;
    for (a, &ok) in attempts.iter().zip(&decided) {
        assert!(a.syn_ns >= prev, "attempts must be in SYN order");
        prev = a.syn_ns;
        let s = out.sources.entry(a.src).or_default();
        s.attempts += 1;
        out.attempts += 1;
        if ok {
            s.established += 1;
            out.established += 1;
            continue;
        }
        out.failed += 1;
        let pair = (a.dst, a.dport);
        s.all_failures.push((a.syn_ns, pair));
        if eligible(a.dport) && is_live(pair, a.syn_ns) {
            s.outages += 1;
            out.outages += 1;
        } else {
            s.counted.push((a.syn_ns, pair));
        }
    }
    out
}

/// `1h`, `6h`, `1d`, `7d`, `30d`, `90d`, `10m`, `300s`.
pub fn parse_duration_s(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(n * mul)
}

/// A detector (window, threshold), written `WINDOW:THRESHOLD` (`1h:9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detector {
    pub window_s: u64,
    pub threshold: u32,
}

impl Detector {
    pub fn parse(s: &str) -> Detector {
        let (w, t) = s
            .split_once(':')
            .unwrap_or_else(|| panic!("{s}: want WINDOW:THRESHOLD"));
        Detector {
            window_s: parse_duration_s(w).unwrap_or_else(|| panic!("{s}: bad window")),
            threshold: t.parse().unwrap_or_else(|_| panic!("{s}: bad threshold")),
        }
    }

    pub fn window_ns(self) -> u64 {
        self.window_s * SECOND_NS
    }

    pub fn label(self) -> String {
        format!("{}:{}", duration_label(self.window_s), self.threshold)
    }
}

pub fn ladder(s: &str) -> Vec<Detector> {
    s.split(',').map(|d| Detector::parse(d.trim())).collect()
}

/// `1h`, `7d`, `300s`: the largest whole unit.
pub fn duration_label(s: u64) -> String {
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A span in the clearest unit: `45 min`, `5.3 h`, `24.0 d`.
pub fn span_label(ns: u64) -> String {
    let s = ns as f64 / SECOND_NS as f64;
    if s < 2.0 * 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 2.0 * 86_400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// Failures of a scan: `probes` probes `interval_s` apart, each to a new pair.
pub fn paced_failures(interval_s: u64, probes: u32) -> Vec<Failure> {
    (0..probes)
        .map(|i| {
            let t = u64::from(i) * interval_s * SECOND_NS;
            let host = IpAddr::from([198, 51, 100, (i % 200) as u8]);
            (t, (host, 1 + (i / 200) as u16))
        })
        .collect()
}
