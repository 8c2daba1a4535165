//! The engine against a deliberately naive second implementation of R4.4,
//! R5, R6 and R8 that keeps every record and recomputes everything from
//! scratch (quadratic), on random streams with small address, port and
//! sequence spaces so that collisions, retransmissions, new-seq SYNs and
//! wrap-around happen often. Also: the kernel pre-filter's output (SYNs plus
//! the first matching follow-up) gives the same answers as the full stream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use proptest::prelude::*;
use slowscan::engine::{
    DetectorConfig, Engine, EngineConfig, Report, SourceTotals, Window, ip_from,
};
use slowscan::whitelist::Whitelist;
use slowscan_common::tcp::{self, ACK, CWR, ECE, FIN, PSH, RST, SYN};
use slowscan_common::{AF_INET, AF_INET6, FlowKey, PacketRecord, STATUS_UNTRACKED, WhitelistKey};

const TIMEOUT: u64 = 10;
const WINDOW: u64 = 25;
const THRESHOLDS: [u32; 4] = [0, 1, 2, 4];

fn detectors() -> Vec<DetectorConfig> {
    let mut d = Vec::new();
    for window in [
        Window::None,
        Window::Tumbling(WINDOW),
        Window::Sliding(WINDOW),
    ] {
        for threshold in THRESHOLDS {
            d.push(DetectorConfig { window, threshold });
        }
    }
    d
}

/// (source, detector, alert_seq, failed_pairs), sorted: a multiset.
type AlertKey = (IpAddr, usize, u32, u32);

#[derive(Debug, PartialEq, Eq, Default)]
struct Totals {
    attempts: u64,
    established: u64,
    failed: u64,
    untracked: u64,
    retransmissions: u64,
    whitelisted: u64,
}

fn whitelisted(wl: &[WhitelistKey], r: &PacketRecord) -> bool {
    wl.contains(&WhitelistKey::new(r.family, r.dst_addr, r.dst_port))
}

fn tracked_attempt(r: &PacketRecord) -> bool {
    tcp::is_attempt(r.tcp_flags) && r.status & STATUS_UNTRACKED == 0
}

struct Failure {
    src: IpAddr,
    pair: ([u8; 16], u16),
    t: u64,
}

/// The naive implementation. Input must be sorted by time (the engine clock
/// is then every record's own time).
fn naive(
    all: &[PacketRecord],
    wl: &[WhitelistKey],
    dedup: bool,
) -> (Totals, Vec<AlertKey>, BTreeMap<IpAddr, SourceTotals>) {
    let mut tot = Totals::default();
    let recs: Vec<&PacketRecord> = all.iter().filter(|r| !whitelisted(wl, r)).collect();
    tot.whitelisted = (all.len() - recs.len()) as u64;
    tot.untracked = recs
        .iter()
        .filter(|r| tcp::is_attempt(r.tcp_flags) && r.status & STATUS_UNTRACKED != 0)
        .count() as u64;

    // R5: is attempt start `s` still open just before record `i`?
    let open_at = |s: usize, i: usize| -> bool {
        let syn = recs[s];
        let deadline = syn.ts_ns + TIMEOUT;
        if recs[i].ts_ns > deadline {
            return false;
        }
        !(s + 1..i).any(|j| {
            let r = recs[j];
            r.flow() == syn.flow()
                && ((tcp::is_follow_up(r.tcp_flags)
                    && r.seq == syn.seq.wrapping_add(1)
                    && r.ts_ns >= syn.ts_ns
                    && r.ts_ns <= deadline)
                    || (tracked_attempt(r) && r.seq != syn.seq && r.ts_ns <= deadline))
        })
    };
    let mut starts: Vec<usize> = Vec::new();
    for i in 0..recs.len() {
        if !tracked_attempt(recs[i]) {
            continue;
        }
        let prev = starts
            .iter()
            .rev()
            .find(|&&s| recs[s].flow() == recs[i].flow());
        match prev {
            Some(&s) if open_at(s, i) && recs[s].seq == recs[i].seq => tot.retransmissions += 1,
            _ => starts.push(i),
        }
    }
    tot.attempts = starts.len() as u64;

    // Outcome of each start: the first deciding record on its flow.
    let mut failures = Vec::new();
    type PerSource = (SourceTotals, HashSet<([u8; 16], u16)>);
    let mut per_src: BTreeMap<IpAddr, PerSource> = BTreeMap::new();
    for &s in &starts {
        let syn = recs[s];
        let src = ip_from(syn.family, &syn.src_addr);
        per_src.entry(src).or_default().0.attempts += 1;
        let mut established = false;
        for r in &recs[s + 1..] {
            if r.flow() != syn.flow() {
                continue;
            }
            if r.ts_ns > syn.ts_ns + TIMEOUT {
                break;
            }
            if tcp::is_follow_up(r.tcp_flags)
                && r.seq == syn.seq.wrapping_add(1)
                && r.ts_ns >= syn.ts_ns
            {
                established = true;
                break;
            }
            if tracked_attempt(r) && r.seq != syn.seq {
                break;
            }
        }
        let e = per_src.get_mut(&src).unwrap();
        if established {
            tot.established += 1;
            e.0.established += 1;
        } else {
            tot.failed += 1;
            e.0.failed += 1;
            let pair = (syn.dst_addr, syn.dst_port);
            e.1.insert(pair);
            failures.push(Failure {
                src,
                pair,
                t: syn.ts_ns,
            });
        }
    }
    let report = per_src
        .into_iter()
        .map(|(ip, (mut t, pairs))| {
            t.failed_pairs = pairs.len() as u64;
            (ip, t)
        })
        .collect();

    // R6 + R8, from scratch for every failure: each detector's candidate
    // alerts as (failure index, detector, seq, count).
    let mut candidates = Vec::new();
    for (d, det) in detectors().iter().enumerate() {
        let in_window = |m: &Failure, t: u64| match det.window {
            Window::None => true,
            Window::Tumbling(w) => m.t / w == t / w,
            Window::Sliding(w) => m.t + w > t,
        };
        // (last alert count, seq, tumbling window of the previous failure)
        let mut state: HashMap<IpAddr, (u32, u32, u64)> = HashMap::new();
        for (k, f) in failures.iter().enumerate() {
            let distinct = |upto: usize| {
                failures[..upto]
                    .iter()
                    .filter(|m| m.src == f.src && in_window(m, f.t))
                    .map(|m| m.pair)
                    .collect::<HashSet<_>>()
                    .len() as u32
            };
            let count = distinct(k + 1);
            let st = state.entry(f.src).or_insert((0, 0, u64::MAX));
            match det.window {
                Window::Tumbling(w) if st.2 != f.t / w => {
                    *st = (0, 0, f.t / w);
                }
                Window::Sliding(_) if distinct(k) <= det.threshold => {
                    st.0 = 0;
                    st.1 = 0;
                }
                _ => {}
            }
            let fire = if st.0 == 0 {
                count > det.threshold
            } else {
                count >= 2 * st.0
            };
            if fire {
                st.0 = count;
                st.1 += 1;
                candidates.push((k, d, st.1, count));
            }
        }
    }
    // R8 across detectors: in failure order, then detector order, an alert
    // is withheld when one already written for its source inside its window
    // holds at least half its count.
    candidates.sort();
    let mut written: HashMap<IpAddr, Vec<(u32, u64)>> = HashMap::new();
    let mut alerts = Vec::new();
    for (k, d, seq, count) in candidates {
        let f = &failures[k];
        let start = match detectors()[d].window {
            Window::None => 0,
            Window::Tumbling(w) => f.t / w * w,
            Window::Sliding(w) => (f.t + 1).saturating_sub(w),
        };
        let w = written.entry(f.src).or_default();
        if dedup && w.iter().any(|&(c, t)| t >= start && count < 2 * c) {
            continue;
        }
        w.push((count, f.t));
        alerts.push((f.src, d, seq, count));
    }
    alerts.sort();
    (tot, alerts, report)
}

/// The service map (R4.5) is off: the reference does not model it.
fn engine_config(wl: &[WhitelistKey], dedup: bool) -> EngineConfig {
    EngineConfig {
        handshake_timeout_ns: TIMEOUT,
        detectors: detectors(),
        whitelist: Some(wl.iter().copied().collect::<Whitelist>()),
        report: true,
        services: None,
        dedup_across_detectors: dedup,
        // The reference counts per address (the paper's R6).
        identity: slowscan::engine::IdentityConfig::addresses_only(),
        ..Default::default()
    }
}

fn run_engine(recs: &[PacketRecord], wl: &[WhitelistKey]) -> (Totals, Vec<AlertKey>, Report) {
    run_engine_batched(recs, wl, 0, true)
}

/// `batch` 0: one `process` call per record; otherwise `process_batch` on
/// chunks of that many records.
fn run_engine_batched(
    recs: &[PacketRecord],
    wl: &[WhitelistKey],
    batch: usize,
    dedup: bool,
) -> (Totals, Vec<AlertKey>, Report) {
    let mut e = Engine::new(engine_config(wl, dedup));
    let mut out = Vec::new();
    if batch == 0 {
        for r in recs {
            e.process(r, &mut out);
        }
    } else {
        for chunk in recs.chunks(batch) {
            e.process_batch(chunk, &mut out);
        }
    }
    e.finish(&mut out);
    let st = e.stats();
    assert_eq!(st.pending, 0);
    assert_eq!(st.alerts as usize, out.len());
    let tot = Totals {
        attempts: st.attempts,
        established: st.established,
        failed: st.failed,
        untracked: st.untracked,
        retransmissions: st.retransmissions,
        whitelisted: st.whitelisted_records,
    };
    let mut alerts: Vec<AlertKey> = out
        .iter()
        .map(|a| (a.source_ip(), a.detector, a.alert_seq, a.failed_pairs))
        .collect();
    alerts.sort();
    (tot, alerts, e.report())
}

/// The kernel pre-filter: drop whitelisted records; forward every attempt;
/// forward a follow-up only if it is the first with seq S + 1 since the
/// tracked SYN (S) last seen on its flow.
fn prefilter(recs: &[PacketRecord], wl: &[WhitelistKey]) -> Vec<PacketRecord> {
    let mut pending: HashMap<FlowKey, u32> = HashMap::new();
    let mut out = Vec::new();
    for r in recs {
        if whitelisted(wl, r) {
            continue;
        }
        if tcp::is_attempt(r.tcp_flags) {
            if r.status & STATUS_UNTRACKED == 0 {
                pending.insert(r.flow(), r.seq);
            }
            out.push(*r);
        } else if tcp::is_follow_up(r.tcp_flags)
            && pending
                .get(&r.flow())
                .is_some_and(|&s| tcp::is_next_seq(s, r.seq))
        {
            pending.remove(&r.flow());
            out.push(*r);
        }
    }
    out
}

fn addr(family: u8, i: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    if family == AF_INET {
        a[..4].copy_from_slice(&[10, 0, 0, i]);
    } else {
        a[0] = 0x20;
        a[1] = 0x01;
        a[15] = i;
    }
    a
}

prop_compose! {
    fn record()(
        dt in prop_oneof![3 => Just(0u64), 5 => 1u64..4, 2 => 4u64..15, 1 => 15u64..40],
        src in 0u8..3,
        v6 in prop::bool::weighted(0.1),
        dst in 0u8..3,
        dport in prop::sample::select(vec![80u16, 81, 82]),
        sport in prop::sample::select(vec![1000u16, 1001]),
        flags in prop::sample::select(vec![
            SYN, SYN, SYN, SYN, SYN | ECE | CWR, ACK, ACK, PSH | ACK, FIN, FIN | ACK,
            RST, RST | ACK, SYN | ACK, PSH,
        ]),
        seq in prop::sample::select(vec![u32::MAX, 0, 1, 2]),
        untracked in prop::bool::weighted(0.08),
    ) -> (u64, PacketRecord) {
        let family = if v6 { AF_INET6 } else { AF_INET };
        (dt, PacketRecord {
            ts_ns: 0,
            src_addr: addr(family, src),
            dst_addr: addr(family, 100 + dst),
            seq,
            src_port: sport,
            dst_port: dport,
            family,
            tcp_flags: flags,
            status: if untracked { STATUS_UNTRACKED } else { 0 },
            ..Default::default()
        })
    }
}

fn stream() -> impl Strategy<Value = (Vec<PacketRecord>, Vec<WhitelistKey>)> {
    (
        prop::collection::vec(record(), 0..160),
        prop::bool::ANY,
        0u64..60,
    )
        .prop_map(|(recs, wl, start)| {
            let mut t = start;
            let recs = recs
                .into_iter()
                .map(|(dt, mut r)| {
                    t += dt;
                    r.ts_ns = t;
                    r
                })
                .collect();
            let wl = if wl {
                vec![WhitelistKey::new(AF_INET, addr(AF_INET, 102), 82)]
            } else {
                vec![]
            };
            (recs, wl)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn r5_r6_r8_engine_matches_naive_reference((recs, wl) in stream(), dedup in any::<bool>()) {
        let (nt, na, nr) = naive(&recs, &wl, dedup);
        let (et, ea, er) = run_engine_batched(&recs, &wl, 0, dedup);
        prop_assert_eq!(&et, &nt);
        prop_assert_eq!(&ea, &na);
        prop_assert_eq!(&er.sources, &nr);
        prop_assert_eq!((er.attempts, er.established, er.failed, er.untracked),
            (nt.attempts, nt.established, nt.failed, nt.untracked));
    }

    #[test]
    fn process_batch_gives_same_answers_as_process((recs, wl) in stream(), batch in 1usize..40) {
        let (bt, ba, br) = run_engine_batched(&recs, &wl, batch, true);
        let (et, ea, er) = run_engine(&recs, &wl);
        prop_assert_eq!(&bt, &et);
        prop_assert_eq!(&ba, &ea);
        prop_assert_eq!(&br, &er);
    }

    #[test]
    fn r5_prefiltered_stream_gives_same_answers((recs, wl) in stream()) {
        let (ft, fa, fr) = run_engine(&prefilter(&recs, &wl), &wl);
        let (et, ea, er) = run_engine(&recs, &wl);
        prop_assert_eq!(&fa, &ea);
        prop_assert_eq!(&fr, &er);
        prop_assert_eq!(
            (ft.attempts, ft.established, ft.failed, ft.untracked, ft.retransmissions),
            (et.attempts, et.established, et.failed, et.untracked, et.retransmissions));
    }
}

/// The reference itself must be able to disagree: a hand-made stream whose
/// answer is known.
#[test]
fn r5_reference_sanity() {
    let mk = |ts, flags, seq, port| PacketRecord {
        ts_ns: ts,
        src_addr: addr(AF_INET, 1),
        dst_addr: addr(AF_INET, 100),
        seq,
        src_port: 1000,
        dst_port: port,
        family: AF_INET,
        tcp_flags: flags,
        ..Default::default()
    };
    let recs = [
        mk(0, SYN, u32::MAX, 80),
        mk(1, ACK, 0, 80),
        mk(2, SYN, 5, 81),
        mk(3, SYN, 5, 82),
    ];
    let (t, a, _) = naive(&recs, &[], true);
    assert_eq!((t.attempts, t.established, t.failed), (3, 1, 2));
    // threshold 0 (detector 0, window none) alerts at 1 and 2 failed pairs.
    assert!(a.contains(&(ip_from(AF_INET, &addr(AF_INET, 1)), 0, 1, 1)));
    assert!(a.contains(&(ip_from(AF_INET, &addr(AF_INET, 1)), 0, 2, 2)));
    assert_eq!(run_engine(&recs, &[]).1, a);
}
