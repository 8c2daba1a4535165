//! Checkpoint → bytes → restore continues exactly like the uninterrupted
//! engine; expired state is dropped; bad files are refused clearly.

use proptest::prelude::*;
use slowscan_common::{
    AF_INET, PacketRecord,
    tcp::{ACK, SYN},
};

use super::*;
use crate::engine::{Alert, SECOND_NS, Window};

const S: u64 = SECOND_NS;
/// 2014-06-25T09:00:00Z: a wall-clock offset that is not hour-aligned
/// relative to engine time 0.
const OFFSET: i64 = 1_403_686_800_000_000_000 + 1_234_567_891;

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

fn rec(ts: u64, src: u8, dst: u8, port: u16, flags: u8, seq: u32) -> PacketRecord {
    PacketRecord {
        ts_ns: ts,
        src_addr: v4([10, 0, 0, src]),
        dst_addr: v4([192, 0, 2, dst]),
        seq,
        src_port: 40000 + u16::from(src),
        dst_port: port,
        family: AF_INET,
        tcp_flags: flags,
        ..Default::default()
    }
}

fn cfg(detectors: &[(Window, u32)], offset: i64) -> EngineConfig {
    cfg_d(detectors, offset, (true, true))
}

/// `opts`: (R8 across detectors, R4.5 service map).
fn cfg_d(detectors: &[(Window, u32)], offset: i64, opts: (bool, bool)) -> EngineConfig {
    EngineConfig {
        dedup_across_detectors: opts.0,
        services: opts.1.then(Default::default),
        handshake_timeout_ns: 5 * S,
        detectors: detectors
            .iter()
            .map(|&(window, threshold)| DetectorConfig { window, threshold })
            .collect(),
        wall_clock_offset_ns: offset,
        report: true,
        ..EngineConfig::default()
    }
}

fn all_windows() -> Vec<(Window, u32)> {
    vec![
        (Window::Tumbling(60 * S), 3),
        (Window::Tumbling(60 * S), 5),
        (Window::Sliding(45 * S), 3),
        (Window::Sliding(120 * S), 4),
        (Window::None, 6),
    ]
}

/// Detector sets: with window `none` nothing is ever dropped at restore, so
/// the others matter too.
fn detector_sets() -> Vec<Vec<(Window, u32)>> {
    let all = all_windows();
    vec![
        all.clone(),
        all[..4].to_vec(),
        all[2..4].to_vec(),
        all[..2].to_vec(),
    ]
}

/// A random stream: a few sources probing a few hosts and ports, some
/// attempts Established, retransmissions, new-sequence SYNs, time gaps that
/// cross windows.
fn stream(seed: u64, n: usize) -> Vec<PacketRecord> {
    let mut x = seed | 1;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut t = 1_000 * S;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        t += match next(10) {
            0 => next(90) * S,
            1..=3 => next(5 * S),
            _ => next(S / 2),
        };
        let src = next(5) as u8 + 1;
        let dst = next(6) as u8 + 1;
        let port = 20 + next(12) as u16;
        let seq = next(3) as u32 * 1000;
        v.push(rec(t, src, dst, port, SYN, seq));
        match next(6) {
            0 => v.push(rec(t + next(4 * S), src, dst, port, ACK, seq + 1)),
            1 => v.push(rec(t + next(2 * S), src, dst, port, SYN, seq)),
            _ => {}
        }
    }
    v
}

fn feed(e: &mut Engine, recs: &[PacketRecord], shift: u64) -> Vec<Alert> {
    let mut out = Vec::new();
    for r in recs {
        let r = PacketRecord {
            ts_ns: r.ts_ns + shift,
            ..*r
        };
        e.process(&r, &mut out);
    }
    out
}

/// Splits `recs` at `k`: the uninterrupted engine's alerts after the split,
/// and those of an engine checkpointed at the split, serialised, and restored
/// with its clock shifted by `shift` (a reboot: monotonic time restarts,
/// the wall-clock offset changes by as much the other way).
fn split_run(
    dets: &[(Window, u32)],
    recs: &[PacketRecord],
    k: usize,
    shift: u64,
    opts: (bool, bool),
) -> (Vec<Alert>, Vec<Alert>) {
    let cfg = |d: &[(Window, u32)], o| cfg_d(d, o, opts);
    let mut whole = Engine::new(cfg(dets, OFFSET));
    feed(&mut whole, &recs[..k], 0);
    let mut want = feed(&mut whole, &recs[k..], 0);
    whole.finish(&mut want);

    let mut first = Engine::new(cfg(dets, OFFSET));
    feed(&mut first, &recs[..k], 0);
    let bytes = first.checkpoint().to_bytes();
    let state = EngineState::from_bytes(&bytes).expect("reads back");
    let now = first.now_ns() + shift;
    drop(first);
    let (mut second, _) = Engine::restore(cfg(dets, OFFSET - shift as i64), state, now);
    let mut got = feed(&mut second, &recs[k..], shift);
    second.finish(&mut got);
    assert_eq!(second.stats().alerts, whole.stats().alerts);
    assert_eq!(second.stats().failed, whole.stats().failed);
    assert_eq!(second.report(), whole.report());
    (want, got)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn restored_engine_alerts_like_the_uninterrupted_one(
        seed in any::<u64>(),
        n in 50usize..600,
        split in 0.0f64..1.0,
        reboot in any::<bool>(),
        set in 0usize..4,
        opts in any::<(bool, bool)>(),
    ) {
        let recs = stream(seed, n);
        let k = ((recs.len() as f64) * split) as usize;
        let shift = if reboot { 7_777 * S + 13 } else { 0 };
        let (want, got) = split_run(&detector_sets()[set], &recs, k, shift, opts);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn the_stream_raises_alerts_of_every_kind() {
    // The property above is not vacuous: the streams alert in every window
    // mode, re-alerts included.
    let recs = stream(42, 600);
    let (want, got) = split_run(&all_windows(), &recs, 300, 0, (false, false));
    assert_eq!(got, want);
    let (deduped, got) = split_run(&all_windows(), &recs, 300, 0, (true, false));
    assert_eq!(got, deduped);
    assert!(deduped.len() < want.len());
    let (with_services, got) = split_run(&all_windows(), &recs, 300, 0, (true, true));
    assert_eq!(got, with_services);
    assert!(with_services.len() < deduped.len());
    for w in all_windows() {
        assert!(want.iter().any(|a| a.window == w.0), "{w:?}: {want:#?}");
    }
    assert!(want.iter().any(|a| a.alert_seq > 1));
    // Without window `none`, pairs out of every window are forgotten.
    let mut e = Engine::new(cfg(&all_windows()[..4], OFFSET));
    feed(&mut e, &recs[..300], 0);
    let pairs = |st: &EngineState| st.sources.iter().map(|s| s.pairs.len()).sum::<usize>();
    let mut whole = Engine::new(cfg(&all_windows()[4..], OFFSET));
    feed(&mut whole, &recs[..300], 0);
    assert!(
        pairs(&e.checkpoint()) + 10 < pairs(&whole.checkpoint()),
        "{} vs {}",
        pairs(&e.checkpoint()),
        pairs(&whole.checkpoint())
    );
}

/// `n` failed probes from 10.0.0.9 to ports `from..from+n` of 192.0.2.1, one
/// every `step` from `t0`.
fn probes(t0: u64, step: u64, from: u16, n: u16) -> Vec<PacketRecord> {
    (0..n)
        .map(|i| rec(t0 + u64::from(i) * step, 9, 1, from + i, SYN, 7))
        .collect()
}

#[test]
fn a_scan_straddling_a_restart_is_detected() {
    let c = || cfg(&[(Window::Tumbling(3600 * S), 9)], 0);
    // Tumbling windows are aligned to the epoch: start at a full hour.
    let t0 = 1_403_686_800 * S;
    let mut e = Engine::new(c());
    let mut out = feed(&mut e, &probes(t0, 60 * S, 1, 6), 0);
    e.advance_to(t0 + 6 * 60 * S, &mut out);
    assert!(out.is_empty());
    let state = EngineState::from_bytes(&e.checkpoint().to_bytes()).unwrap();
    // Ten minutes later (the sensor was down), the scan goes on.
    let (mut e, r) = Engine::restore(c(), state, t0 + 16 * 60 * S);
    assert_eq!((r.sources, r.sources_dropped), (1, 0));
    let mut out = feed(&mut e, &probes(t0 + 16 * 60 * S, 60 * S, 7, 4), 0);
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].failed_pairs, 10);
    assert_eq!(out[0].first_failure_ns, t0 as i64);
}

#[test]
fn restore_drops_what_expired() {
    let c = |w| cfg(&[(w, 9)], 0);
    let t0 = 1_403_686_800 * S;
    for (w, later, kept) in [
        // Tumbling: the next hour forgets the pairs.
        (Window::Tumbling(3600 * S), 3600 * S, 0),
        (Window::Tumbling(3600 * S), 1800 * S, 3),
        // Sliding: pairs older than now − W go.
        (Window::Sliding(600 * S), 700 * S, 1),
        // None: nothing goes.
        (Window::None, 10 * 86_400 * S, 3),
    ] {
        let mut e = Engine::new(c(w));
        let mut out = feed(&mut e, &probes(t0, 60 * S, 1, 3), 0);
        // A new failure moves the failure clock `later` on (from another
        // source), then the state is saved.
        out.extend(feed(&mut e, &[rec(t0 + later, 2, 1, 99, SYN, 1)], 0));
        e.advance_to(t0 + later + 10 * S, &mut out);
        let state = e.checkpoint();
        let n_pairs: usize = state.sources.iter().map(|s| s.pairs.len()).sum();
        assert!(n_pairs > kept, "{w:?}");
        let (e2, r) = Engine::restore(c(w), state, t0 + later + 10 * S);
        assert_eq!(r.sources, if kept > 0 { 2 } else { 1 }, "{w:?}: {r:?}");
        let left: usize = e2.checkpoint().sources.iter().map(|s| s.pairs.len()).sum();
        assert_eq!(left, 1 + kept, "{w:?}");
    }
}

#[test]
fn pending_attempts_whose_deadline_passed_while_stopped_are_dropped() {
    let c = || cfg(&[(Window::None, 1)], OFFSET);
    let mut e = Engine::new(c());
    let mut out = Vec::new();
    e.process(&rec(100 * S, 1, 1, 80, SYN, 5), &mut out);
    e.process(&rec(103 * S, 1, 2, 80, SYN, 5), &mut out);
    let state = e.checkpoint();
    assert_eq!(state.pending.len(), 2);
    // Restored 4 s later: the first attempt's deadline (105 s) passed while
    // stopped; the second (108 s) is still pending.
    let (mut e2, r) = Engine::restore(c(), state.clone(), 107 * S);
    assert_eq!((r.pending, r.pending_dropped), (1, 1));
    // Its follow-up still establishes it.
    e2.process(&rec(107 * S, 1, 2, 80, ACK, 6), &mut out);
    e2.finish(&mut out);
    assert_eq!((e2.stats().established, e2.stats().failed), (1, 0));
    // Restored at once: both stay pending.
    let (e3, r) = Engine::restore(c(), state, 103 * S);
    assert_eq!((r.pending, r.pending_dropped), (2, 0));
    assert_eq!(e3.stats().pending, 2);
}

#[test]
fn another_configuration_keeps_what_matches() {
    let t0 = 1_403_686_800 * S;
    let mut e = Engine::new(cfg(&[(Window::Tumbling(3600 * S), 9)], 0));
    let mut out = feed(&mut e, &probes(t0, 60 * S, 1, 6), 0);
    e.advance_to(t0 + 7 * 60 * S, &mut out);
    let state = e.checkpoint();
    let dets = [
        (Window::Tumbling(3600 * S), 7),
        (Window::None, 9),
        (Window::Sliding(600 * S), 9),
    ];
    let (mut e2, r) = Engine::restore(cfg(&dets, 0), state, t0 + 7 * 60 * S);
    assert_eq!(
        r.new_detectors,
        dets.iter()
            .map(|&(window, threshold)| DetectorConfig { window, threshold })
            .collect::<Vec<_>>(),
        "{r:?}"
    );
    let mut out = feed(&mut e2, &probes(t0 + 8 * 60 * S, 60 * S, 7, 4), 0);
    e2.finish(&mut out);
    // Every window counts from the saved pairs: tumbling alerts at 8; none
    // reaches 10, but an alert of 8 was written inside its window, so it is
    // withheld (R8 across detectors); the sliding 600 s holds 9, not above 9.
    let by = |w: Window| out.iter().filter(|a| a.window == w).collect::<Vec<_>>();
    assert_eq!(by(Window::Tumbling(3600 * S))[0].failed_pairs, 8);
    assert!(by(Window::None).is_empty(), "{out:#?}");
    assert_eq!(e2.stats().alerts_suppressed, 1);
    assert!(by(Window::Sliding(600 * S)).is_empty());
}

#[test]
fn bad_states_are_refused_clearly() {
    let mut e = Engine::new(cfg(&all_windows(), 0));
    feed(&mut e, &probes(1_000 * S, S, 1, 20), 0);
    let good = e.checkpoint().to_bytes();
    assert_eq!(&good[..14], b"SLOWSCAN-STATE");
    let mut v99 = good.clone();
    v99[14..18].copy_from_slice(&99u32.to_le_bytes());
    let err = EngineState::from_bytes(&v99).unwrap_err();
    assert!(matches!(err, StateError::Version { found: 99 }), "{err}");
    assert!(
        err.to_string().contains(
            "engine state format 99 is not supported (this slowscan writes format 3 and also reads formats 1 and 2)"
        ),
        "{err}"
    );
    // Torn at every length, or a byte flipped: refused, never misread.
    for cut in (0..good.len()).step_by(7) {
        let err = EngineState::from_bytes(&good[..cut]).unwrap_err();
        assert!(matches!(err, StateError::Malformed(_)), "{cut}: {err}");
    }
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    let err = EngineState::from_bytes(&flipped).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let err = EngineState::from_bytes(b"garbage").unwrap_err();
    assert!(
        err.to_string().starts_with("not a slowscan engine state"),
        "{err}"
    );
    // Format 1 (JSON): another version is refused naming both …
    let err =
        EngineState::from_bytes(br#"{"kind":"slowscan-engine-state","format":7}"#).unwrap_err();
    assert!(matches!(err, StateError::Version { found: 7 }), "{err}");
    let err = EngineState::from_bytes(b"{\"format\":1}").unwrap_err();
    assert!(err.to_string().contains("slowscan-engine-state"), "{err}");
    let err = EngineState::from_bytes(b"{\"kind\":\"slowscan-engine-st").unwrap_err();
    assert!(
        err.to_string().starts_with("not a slowscan engine state"),
        "{err}"
    );
}

/// A state written by the previous release (format 1, JSON): a tumbling
/// hour with threshold 9, one source with 9 failed pairs and its alert state.
fn v1_state(t0_ns: i64) -> String {
    let pairs: Vec<String> = (1..=9)
        .map(|i| {
            format!(
                r#"{{"ip":"192.0.2.1","port":{i},"at_ns":{}}}"#,
                t0_ns + i * 60_000_000_000
            )
        })
        .collect();
    format!(
        r#"{{"kind":"slowscan-engine-state","format":1,"saved_at_ns":{saved},"failure_clock_ns":{clock},
"handshake_timeout_ns":5000000000,"windows":[{{"Tumbling":3600000000000}}],
"detectors":[{{"window":{{"Tumbling":3600000000000}},"threshold":9}}],
"stats":{{"records":9,"whitelisted_records":0,"attempts":9,"established":0,"failed":9,"untracked":0,
"retransmissions":0,"evicted_pending":0,"evicted_sources":0,"pending":0,"sources":1,"alerts":0}},
"pending":[],"sources":[{{"ip":"10.0.0.9","pairs":[{pairs}],
"windows":[{{"index":0,"count":9,"cursor":0,"first_ns":0,"last_ns":0}}],
"detectors":[{{"last_alert":0,"alert_seq":0}}]}}],"report":null}}"#,
        saved = t0_ns + 10 * 60_000_000_000,
        clock = t0_ns + 9 * 60_000_000_000,
        pairs = pairs.join(",")
    )
}

#[test]
fn a_format_1_state_is_migrated() {
    let t0 = 1_403_686_800 * S;
    let state = EngineState::from_bytes(v1_state(t0 as i64).as_bytes()).unwrap();
    assert_eq!(state.format, 1);
    let c = cfg(&[(Window::Tumbling(3600 * S), 9)], 0);
    let (mut e, r) = Engine::restore(c, state, t0 + 11 * 60 * S);
    assert_eq!((r.format, r.sources), (1, 1));
    // The tenth pair of the hour crosses the threshold: the nine saved ones
    // carried over.
    let mut out = feed(&mut e, &probes(t0 + 12 * 60 * S, S, 100, 1), 0);
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!((out[0].failed_pairs, out[0].alert_seq), (10, 1));
    // Written back in format 2.
    assert_eq!(e.checkpoint().to_bytes()[..14], *b"SLOWSCAN-STATE");
}

/// A format-2 state (written before identities, R9): with no pending attempt
/// its body is format 3's without the header's identities, so one is made by
/// patching the format number and the checksum.
#[test]
fn a_format_2_state_is_migrated() {
    let c = || cfg(&[(Window::Sliding(3600 * S), 9)], 0);
    let t0 = 1_403_686_800 * S;
    let mut e = Engine::new(c());
    let mut out = feed(&mut e, &probes(t0, 60 * S, 1, 6), 0);
    e.advance_to(t0 + 10 * 60 * S, &mut out);
    let mut bytes = e.checkpoint().to_bytes();
    bytes[14..18].copy_from_slice(&2u32.to_le_bytes());
    let n = bytes.len() - 8;
    let sum = fnv1a(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum.to_le_bytes());
    let state = EngineState::from_bytes(&bytes).unwrap();
    assert_eq!(state.format, 2);
    assert_eq!(
        state.sources[0].identity,
        Identity::Address("10.0.0.9".parse().unwrap())
    );
    let (mut e, r) = Engine::restore(c(), state, t0 + 11 * 60 * S);
    assert_eq!((r.format, r.sources), (2, 1));
    let mut out = feed(&mut e, &probes(t0 + 11 * 60 * S, 60 * S, 7, 4), 0);
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].failed_pairs, 10);
}

/// R9 across a restart: a host counted under its MAC, with the addresses it
/// used, and the MAC's router evidence, come back from a checkpoint.
#[test]
fn r9_identities_survive_a_checkpoint() {
    let c = || cfg(&[(Window::Sliding(3600 * S), 9)], 0);
    let t0 = 1_403_686_800 * S;
    let host = [2, 0x10, 0, 0, 0, 5];
    // A host on the segment rotating its address every probe (10.0.0.20–29).
    let scan = |from: u16, n: u16, t: u64| -> Vec<PacketRecord> {
        (0..n)
            .map(|i| PacketRecord {
                src_mac: host,
                ..rec(
                    t + u64::from(i) * 60 * S,
                    20 + (from + i) as u8 % 10,
                    1,
                    from + i,
                    SYN,
                    7,
                )
            })
            .collect()
    };
    let mut e = Engine::new(c());
    let mut out = feed(&mut e, &scan(1, 6, t0), 0);
    e.advance_to(t0 + 10 * 60 * S, &mut out);
    assert!(out.is_empty());
    let state = EngineState::from_bytes(&e.checkpoint().to_bytes()).unwrap();
    assert_eq!(state.sources.len(), 1);
    assert_eq!(state.sources[0].identity, Identity::Mac(host));
    let (mut e, r) = Engine::restore(c(), state, t0 + 11 * 60 * S);
    assert_eq!(r.sources, 1);
    let mut out = feed(&mut e, &scan(7, 4, t0 + 11 * 60 * S), 0);
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].identity, Identity::Mac(host));
    assert_eq!(out[0].failed_pairs, 10);
    // Every address it used, the ones before the restart too.
    assert_eq!(out[0].addresses_total, 10, "{:?}", out[0].addresses);
    let s = e
        .source_status("10.0.0.21".parse::<Identity>().unwrap())
        .expect("an address finds its MAC");
    assert_eq!(s.identity, Identity::Mac(host));
}

/// `slowscan run`'s engine time: CLOCK_MONOTONIC + 2^62, with the offset
/// to wall clock it sets at start (`wall − monotonic − bias`).
const RUN_BIAS: u64 = 1 << 62;

/// A failed attempt from 10.0.0.9 to port `port` of 192.0.2.1 as a flow
/// record decides it (`slowscan collect`), at engine time `ts`.
fn decided(ts: u64, port: u16) -> crate::engine::DecidedAttempt {
    crate::engine::DecidedAttempt {
        flow: slowscan_common::FlowKey {
            src_addr: v4([10, 0, 0, 9]),
            dst_addr: v4([192, 0, 2, 1]),
            src_port: 40009,
            dst_port: port,
            family: AF_INET,
            ..Default::default()
        },
        syn_ts_ns: ts,
        established: false,
        src_mac: [0; 6],
    }
}

#[test]
fn a_run_state_loads_in_collect_and_a_collect_state_in_run() {
    let dets = [(Window::Sliding(3600 * S), 9)];
    // The wall clock when the first engine starts, and the monotonic clock
    // of two boots (the second sensor runs on another boot).
    let wall0 = 1_750_000_123 * S;
    let (mono_a, mono_b) = (5_000 * S, 42 * S);
    let run_offset = |wall: u64, mono: u64| wall as i64 - (mono + RUN_BIAS) as i64;

    // run → collect: six probes under run's time base, four more as flow
    // records in Unix time ten minutes later.
    let off_a = run_offset(wall0, mono_a);
    let t0 = mono_a + RUN_BIAS;
    let mut run = Engine::new(cfg(&dets, off_a));
    let mut out = feed(&mut run, &probes(t0, 60 * S, 1, 6), 0);
    run.advance_to(t0 + 6 * 60 * S, &mut out);
    assert!(out.is_empty(), "{out:#?}");
    let state = EngineState::from_bytes(&run.checkpoint().to_bytes()).unwrap();
    let later = wall0 + 16 * 60 * S;
    let (mut collect, r) = Engine::restore(cfg(&dets, 0), state, later);
    assert_eq!((r.sources, r.sources_dropped), (1, 0));
    for i in 0..4 {
        collect.decided_attempt(&decided(later + i * 60 * S, 7 + i as u16), &mut out);
    }
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].failed_pairs, 10);
    assert_eq!(
        out[0].first_failure_ns, wall0 as i64,
        "the first probe's wall time"
    );
    assert_eq!(
        out[0].last_failure_ns,
        (later + 3 * 60 * S) as i64,
        "the last record's start"
    );

    // collect → run: six flow records in Unix time; a sensor on a freshly
    // booted machine (monotonic 42 s) ten minutes later sees four more.
    let mut collect = Engine::new(cfg(&dets, 0));
    let mut out = Vec::new();
    for i in 0..6 {
        collect.decided_attempt(&decided(wall0 + i * 60 * S, 1 + i as u16), &mut out);
    }
    collect.advance_to(wall0 + 6 * 60 * S, &mut out);
    assert!(out.is_empty(), "{out:#?}");
    let state = EngineState::from_bytes(&collect.checkpoint().to_bytes()).unwrap();
    let off_b = run_offset(later, mono_b);
    let now_b = mono_b + RUN_BIAS;
    let (mut run, r) = Engine::restore(cfg(&dets, off_b), state, now_b);
    assert_eq!((r.sources, r.sources_dropped), (1, 0));
    let mut out = feed(&mut run, &probes(now_b, 60 * S, 7, 4), 0);
    run.advance_to(now_b + 4 * 60 * S, &mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].failed_pairs, 10);
    assert_eq!(
        out[0].first_failure_ns, wall0 as i64,
        "the first record's wall time"
    );
    assert_eq!(out[0].last_failure_ns, (later + 3 * 60 * S) as i64);

    // Times are not mistaken across the bases: the same collect state
    // restored into a run an hour and a half later holds pairs out of the
    // 1 h window, and four new probes stay below the threshold.
    let state = EngineState::from_bytes(&collect.checkpoint().to_bytes()).unwrap();
    let off_c = run_offset(wall0 + 90 * 60 * S, mono_b);
    let (mut run, _) = Engine::restore(cfg(&dets, off_c), state, now_b);
    let mut out = feed(&mut run, &probes(now_b, 60 * S, 7, 4), 0);
    run.advance_to(now_b + 4 * 60 * S, &mut out);
    assert!(out.is_empty(), "{out:#?}");
}
