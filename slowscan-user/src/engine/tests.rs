//! Unit tests, one or more per rule (docs/method.md).

use super::*;
use slowscan_common::AF_INET;
use slowscan_common::tcp::{ACK, ECE, FIN, PSH, RST, SYN};
use std::net::Ipv6Addr;

const S: u64 = SECOND_NS;
const T: u64 = 60 * S; // handshake timeout used below

fn v4(last: u8, net: [u8; 3]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..3].copy_from_slice(&net);
    a[3] = last;
    a
}

/// A record from 10.0.0.`src`:40000+`sport_off` to 192.0.2.`dst`:`port`.
fn rec(ts: u64, src: u8, dst: u8, port: u16, flags: u8, seq: u32) -> PacketRecord {
    PacketRecord {
        ts_ns: ts,
        src_addr: v4(src, [10, 0, 0]),
        dst_addr: v4(dst, [192, 0, 2]),
        seq,
        src_port: 40000,
        dst_port: port,
        family: AF_INET,
        tcp_flags: flags,
        ..Default::default()
    }
}

fn syn(ts: u64, src: u8, dst: u8, port: u16, seq: u32) -> PacketRecord {
    rec(ts, src, dst, port, SYN, seq)
}

fn cfg(window: Window, threshold: u32) -> EngineConfig {
    EngineConfig {
        handshake_timeout_ns: T,
        detectors: vec![DetectorConfig { window, threshold }],
        report: true,
        ..Default::default()
    }
}

fn run(cfg: EngineConfig, recs: &[PacketRecord]) -> (Vec<Alert>, EngineStats, Engine) {
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    for r in recs {
        e.process(r, &mut out);
    }
    e.finish(&mut out);
    let st = e.stats();
    (out, st, e)
}

fn outcome(recs: &[PacketRecord]) -> (u64, u64) {
    let (_, st, _) = run(cfg(Window::None, 100), recs);
    assert_eq!(st.attempts, st.established + st.failed, "{st:?}");
    (st.established, st.failed)
}

/// `n` failed attempts from `src` to distinct ports of one host, one every
/// `step` starting at `t0`.
fn probes(t0: u64, step: u64, n: u16, src: u8) -> Vec<PacketRecord> {
    (0..n)
        .map(|i| syn(t0 + u64::from(i) * step, src, 1, 1000 + i, 7))
        .collect()
}

#[test]
fn r5_sequence_wraps_at_u32_max() {
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, u32::MAX), rec(S, 1, 1, 80, ACK, 0)]),
        (1, 0)
    );
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, u32::MAX), rec(S, 1, 1, 80, ACK, u32::MAX)]),
        (0, 1)
    );
}

#[test]
fn r5_equal_timestamps_establish() {
    assert_eq!(
        outcome(&[syn(5, 1, 1, 80, 100), rec(5, 1, 1, 80, ACK, 101)]),
        (1, 0)
    );
}

#[test]
fn r5_follow_up_flags_that_establish() {
    for flags in [ACK, PSH | ACK, FIN, FIN | ACK, ACK | ECE] {
        assert_eq!(
            outcome(&[syn(0, 1, 1, 80, 9), rec(S, 1, 1, 80, flags, 10)]),
            (1, 0),
            "{flags:#x}"
        );
    }
}

#[test]
fn r5_follow_up_before_syn_does_not_count() {
    assert_eq!(
        outcome(&[rec(0, 1, 1, 80, ACK, 101), syn(0, 1, 1, 80, 100)]),
        (0, 1)
    );
    assert_eq!(outcome(&[rec(0, 1, 1, 80, ACK, 101)]), (0, 0));
}

#[test]
fn r5_rst_and_syn_never_establish() {
    for flags in [RST, RST | ACK, SYN | ACK, PSH, 0] {
        assert_eq!(
            outcome(&[syn(0, 1, 1, 80, 9), rec(S, 1, 1, 80, flags, 10)]),
            (0, 1),
            "{flags:#x}"
        );
    }
}

#[test]
fn r5_wrong_sequence_or_other_flow_does_not_establish() {
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, 9), rec(S, 1, 1, 80, ACK, 9)]),
        (0, 1)
    );
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, 9), rec(S, 1, 1, 81, ACK, 10)]),
        (0, 1)
    );
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, 9), rec(S, 2, 1, 80, ACK, 10)]),
        (0, 1)
    );
    // R3: a reply (other direction) is never consulted.
    let mut reply = rec(S, 1, 1, 80, SYN | ACK, 500);
    std::mem::swap(&mut reply.src_addr, &mut reply.dst_addr);
    assert_eq!(outcome(&[syn(0, 1, 1, 80, 9), reply]), (0, 1));
}

#[test]
fn r5_1_deadline_is_inclusive() {
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, 9), rec(T, 1, 1, 80, ACK, 10)]),
        (1, 0)
    );
    assert_eq!(
        outcome(&[syn(0, 1, 1, 80, 9), rec(T + 1, 1, 1, 80, ACK, 10)]),
        (0, 1)
    );
}

#[test]
fn r5_1_failure_decided_when_time_passes_deadline() {
    let mut e = Engine::new(cfg(Window::None, 0));
    let mut out = Vec::new();
    e.process(&syn(0, 1, 1, 80, 9), &mut out);
    e.advance_to(T, &mut out);
    assert_eq!(e.stats().failed, 0);
    assert!(out.is_empty());
    e.advance_to(T + 1, &mut out);
    assert_eq!((e.stats().failed, e.stats().pending), (1, 0));
    assert_eq!(out.len(), 1, "threshold 0 alerts on the first failure");
    assert_eq!(out[0].timestamp_ns, T as i64, "@timestamp is the deadline");
    // A record on another flow moves time too.
    e.process(&syn(2 * T, 1, 1, 81, 9), &mut out);
    e.process(&rec(3 * T + 1, 9, 9, 9, ACK, 0), &mut out);
    assert_eq!(e.stats().failed, 2);
}

#[test]
fn r5_1_retransmission_is_same_attempt_and_keeps_deadline() {
    let recs = [
        syn(0, 1, 1, 80, 9),
        syn(3 * S, 1, 1, 80, 9),
        syn(9 * S, 1, 1, 80, 9),
    ];
    let (_, st, _) = run(cfg(Window::None, 100), &recs);
    assert_eq!((st.attempts, st.retransmissions, st.failed), (1, 2, 1));
    // The deadline stays first SYN + timeout: a follow-up after it is too late.
    let late = [
        syn(0, 1, 1, 80, 9),
        syn(30 * S, 1, 1, 80, 9),
        rec(T + S, 1, 1, 80, ACK, 10),
    ];
    assert_eq!(outcome(&late), (0, 1));
    // After the deadline the same sequence number is a new attempt.
    let again = [syn(0, 1, 1, 80, 9), syn(T + S, 1, 1, 80, 9)];
    let (_, st, _) = run(cfg(Window::None, 100), &again);
    assert_eq!((st.attempts, st.retransmissions, st.failed), (2, 0, 2));
}

#[test]
fn r5_1_new_seq_syn_closes_earlier_attempt_as_failed() {
    let mut e = Engine::new(cfg(Window::None, 100));
    let mut out = Vec::new();
    e.process(&syn(0, 1, 1, 80, 9), &mut out);
    e.process(&syn(S, 1, 1, 80, 500), &mut out);
    let st = e.stats();
    assert_eq!(
        (st.attempts, st.failed, st.pending),
        (2, 1, 1),
        "closed at once"
    );
    // The follow-up of the old attempt no longer matches; the new one does.
    e.process(&rec(2 * S, 1, 1, 80, ACK, 10), &mut out);
    assert_eq!(e.stats().established, 0);
    e.process(&rec(2 * S, 1, 1, 80, ACK, 501), &mut out);
    assert_eq!(e.stats().established, 1);
}

#[test]
fn r5_1_closed_attempts_are_counted_in_syn_order() {
    // Attempt A (port 80) is pending when B (port 81) is closed by a new SYN:
    // B is counted after A, so windows see failures in SYN order.
    let recs = [
        syn(0, 1, 1, 80, 1),
        syn(S, 1, 1, 81, 1),
        syn(2 * S, 1, 1, 81, 2),
    ];
    let mut e = Engine::new(cfg(Window::None, 100));
    let mut out = Vec::new();
    for r in &recs {
        e.process(r, &mut out);
    }
    assert_eq!(e.stats().failed, 0, "B waits behind pending A");
    e.advance_to(T + 1, &mut out);
    assert_eq!(e.stats().failed, 2);
}

#[test]
fn r5_untracked_attempts_are_neither_failed_nor_established() {
    let mut u = syn(0, 1, 1, 80, 9);
    u.status = STATUS_UNTRACKED;
    let (out, st, e) = run(cfg(Window::None, 0), &[u, rec(S, 1, 1, 80, ACK, 10)]);
    assert_eq!(
        (st.untracked, st.attempts, st.failed, st.established),
        (1, 0, 0, 0)
    );
    assert!(out.is_empty());
    assert_eq!(e.report().untracked, 1);
}

#[test]
fn r5_ipv6_flows_resolve() {
    let mut s = syn(0, 1, 1, 80, 9);
    s.family = slowscan_common::AF_INET6;
    s.src_addr = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
    s.dst_addr = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
    let mut a = s;
    a.tcp_flags = ACK;
    a.seq = 10;
    assert_eq!(outcome(&[s, a]), (1, 0));
    let (out, ..) = run(cfg(Window::None, 0), &[s]);
    assert_eq!(out[0].source_ip().to_string(), "2001:db8::1");
    assert_eq!(out[0].targets[0].ip.to_string(), "2001:db8::2");
}

#[test]
fn r6_threshold_must_be_exceeded() {
    let (out, ..) = run(cfg(Window::None, 5), &probes(0, S, 5, 1));
    assert!(out.is_empty(), "count == threshold does not alert");
    let (out, ..) = run(cfg(Window::None, 5), &probes(0, S, 6, 1));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].failed_pairs, out[0].alert_seq, out[0].threshold),
        (6, 1, 5)
    );
}

#[test]
fn r6_counts_distinct_pairs_per_source() {
    // Ten failures to the same (host, port) are one pair; another source's
    // failures are not added.
    let mut recs: Vec<_> = (0..10).map(|i| syn(i * 2 * T, 1, 1, 80, 7)).collect();
    recs.extend(probes(30 * T, S, 3, 2));
    let (out, st, e) = run(cfg(Window::None, 1), &recs);
    assert_eq!(st.failed, 13);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].source_ip().to_string(), "10.0.0.2");
    let r = e.report();
    let s1 = r.sources[&"10.0.0.1".parse::<IpAddr>().unwrap()];
    assert_eq!((s1.attempts, s1.failed, s1.failed_pairs), (10, 10, 1));
}

#[test]
fn r6_established_attempts_are_not_counted() {
    let mut recs = Vec::new();
    for i in 0..20u16 {
        recs.push(syn(u64::from(i) * S, 1, 1, 1000 + i, 7));
        recs.push(rec(u64::from(i) * S + 1, 1, 1, 1000 + i, ACK, 8));
    }
    let (out, st, _) = run(cfg(Window::None, 0), &recs);
    assert_eq!((st.established, st.failed, out.len()), (20, 0, 0));
}

#[test]
fn r6_1_tumbling_window_boundaries_are_multiples_of_w() {
    let w = 600 * S;
    // 3 failures just before 600 s and 3 at/after it: never more than 3 in a window.
    let mut recs = probes(w - 3 * S, S, 3, 1);
    recs.extend((0..3).map(|i| syn(w + i * S, 1, 2, 2000 + i as u16, 7)));
    let (out, ..) = run(cfg(Window::Tumbling(w), 3), &recs);
    assert!(out.is_empty(), "{out:?}");
    // The same 6 inside one window alert.
    let (out, ..) = run(cfg(Window::Tumbling(w), 3), &probes(w, S, 6, 1));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].failed_pairs, 4);
}

#[test]
fn r6_1_tumbling_alignment_follows_wall_clock() {
    // Failures at 594..604 s; with a -594 s offset (wall = ts - 594 s) the
    // window [0, 600) in wall time holds all six.
    let w = 600 * S;
    let mut c = cfg(Window::Tumbling(w), 3);
    c.wall_clock_offset_ns = -590 * S as i64;
    let (out, ..) = run(c, &probes(594 * S, 2 * S, 6, 1));
    assert_eq!(out.len(), 1);
    let (out, ..) = run(cfg(Window::Tumbling(w), 3), &probes(594 * S, 2 * S, 6, 1));
    assert!(
        out.is_empty(),
        "split by the 600 s boundary without the offset"
    );
}

#[test]
fn r6_failure_time_is_its_syn_time() {
    // SYNs at 597–599 s fail at 657–659 s, but count in the window [0, 600).
    let w = 600 * S;
    let mut recs = probes(597 * S, S, 3, 1);
    recs.push(syn(599 * S + 1, 1, 3, 3000, 1));
    recs.push(rec(700 * S, 9, 9, 9, ACK, 0)); // time passes the deadlines
    let (out, ..) = run(cfg(Window::Tumbling(w), 3), &recs);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].first_failure_ns, 597 * S as i64);
    assert_eq!(out[0].last_failure_ns, (599 * S + 1) as i64);
    assert_eq!(
        out[0].timestamp_ns,
        (599 * S + 1 + T) as i64,
        "decided at its deadline"
    );
    // At the end of input, pending attempts are decided at the last record time.
    let (out, ..) = run(cfg(Window::None, 0), &[syn(5 * S, 1, 1, 1, 1)]);
    assert_eq!(out[0].timestamp_ns, 5 * S as i64);
}

#[test]
fn r6_1_sliding_window_is_half_open() {
    let w = 100 * S;
    // Failures at 0, 50, 100: at t = 100 the window (0, 100] excludes 0.
    let recs = [
        syn(0, 1, 1, 1, 0),
        syn(50 * S, 1, 1, 2, 0),
        syn(100 * S, 1, 1, 3, 0),
    ];
    let (out, ..) = run(cfg(Window::Sliding(w), 2), &recs);
    assert!(out.is_empty(), "{out:?}");
    let recs = [
        syn(1, 1, 1, 1, 0),
        syn(50 * S, 1, 1, 2, 0),
        syn(100 * S, 1, 1, 3, 0),
    ];
    let (out, ..) = run(cfg(Window::Sliding(w), 2), &recs);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].first_failure_ns, 1);
}

#[test]
fn r6_1_sliding_repeated_pair_refreshes() {
    let w = 100 * S;
    // Pair 1 fails at 0 and 90; at t = 150 it is still in the window.
    let recs = [
        syn(0, 1, 1, 1, 0),
        syn(90 * S, 1, 1, 1, 5),
        syn(140 * S, 1, 1, 2, 0),
        syn(150 * S, 1, 1, 3, 0),
    ];
    let (out, ..) = run(cfg(Window::Sliding(w), 2), &recs);
    assert_eq!(out.len(), 1);
}

#[test]
fn r6_1_none_never_clears() {
    let (out, ..) = run(cfg(Window::None, 3), &probes(0, 10_000 * S, 4, 1));
    assert_eq!(out.len(), 1);
    let (out, ..) = run(
        cfg(Window::Tumbling(3600 * S), 3),
        &probes(0, 10_000 * S, 4, 1),
    );
    assert!(out.is_empty());
    let (out, ..) = run(
        cfg(Window::Sliding(3600 * S), 3),
        &probes(0, 10_000 * S, 4, 1),
    );
    assert!(out.is_empty());
}

#[test]
fn r8_realerts_at_each_doubling() {
    let (out, ..) = run(cfg(Window::None, 4), &probes(0, S, 45, 1));
    let counts: Vec<_> = out.iter().map(|a| (a.failed_pairs, a.alert_seq)).collect();
    assert_eq!(counts, vec![(5, 1), (10, 2), (20, 3), (40, 4)]);
}

#[test]
fn r8_new_tumbling_window_rearms() {
    let w = 3600 * S;
    let mut recs = probes(0, S, 6, 1);
    recs.extend(probes(w, S, 6, 1)); // same pairs, next window
    let (out, ..) = run(cfg(Window::Tumbling(w), 4), &recs);
    let seqs: Vec<_> = out.iter().map(|a| (a.failed_pairs, a.alert_seq)).collect();
    assert_eq!(seqs, vec![(5, 1), (5, 1)]);
}

#[test]
fn r8_sliding_count_dropping_to_threshold_rearms() {
    let w = 100 * S;
    let mut recs = probes(0, S, 5, 1); // 5 pairs at 0..4 s → alert (threshold 4)
    // From 103 s the first five leave; five new pairs at 103..107 s make 5 again.
    recs.extend((0..5).map(|i| syn(103 * S + i * S, 1, 2, 2000 + i as u16, 1)));
    let (out, ..) = run(cfg(Window::Sliding(w), 4), &recs);
    let seqs: Vec<_> = out.iter().map(|a| (a.failed_pairs, a.alert_seq)).collect();
    assert_eq!(seqs, vec![(5, 1), (5, 1)]);
    // Without the drop there is no second alert before the doubling.
    let (out, ..) = run(cfg(Window::Sliding(w), 4), &probes(0, S, 9, 1));
    assert_eq!(out.len(), 1);
}

#[test]
fn r6_detectors_share_one_pass() {
    let mut c = cfg(Window::None, 3);
    c.detectors = vec![
        DetectorConfig {
            window: Window::Tumbling(600 * S),
            threshold: 3,
        },
        DetectorConfig {
            window: Window::None,
            threshold: 3,
        },
        DetectorConfig {
            window: Window::Tumbling(600 * S),
            threshold: 4,
        },
    ];
    // 5 failures, 300 s apart: tumbling 600 s holds at most 2.
    let (out, ..) = run(c.clone(), &probes(0, 300 * S, 5, 1));
    let dets: Vec<_> = out.iter().map(|a| a.detector).collect();
    assert_eq!(dets, vec![1]);
    let (out, ..) = run(c.clone(), &probes(0, S, 5, 1));
    let mut dets: Vec<_> = out.iter().map(|a| a.detector).collect();
    dets.sort();
    // R8 across detectors: the first crossing (detector 0 at 4) is written;
    // detector 1 at 4 and detector 2 at 5 hold less than twice that.
    assert_eq!(dets, vec![0]);
    let (out, st, _) = run(
        EngineConfig {
            dedup_across_detectors: false,
            ..c
        },
        &probes(0, S, 5, 1),
    );
    let mut dets: Vec<_> = out.iter().map(|a| a.detector).collect();
    dets.sort();
    assert_eq!(dets, vec![0, 1, 2]);
    assert_eq!(st.alerts_suppressed, 0);
}

#[test]
fn r8_alert_json_is_ecs() {
    let mut c = cfg(Window::Tumbling(3600 * S), 2);
    c.wall_clock_offset_ns = 1_403_686_800 * S as i64; // 2014-06-25T09:00:00Z
    c.max_targets_in_alert = 2;
    let mut recs = probes(0, S, 3, 9);
    recs.push(rec(3600 * S, 9, 9, 9, ACK, 0)); // time passes the deadlines
    let (out, ..) = run(c, &recs);
    let v: serde_json::Value = serde_json::from_str(&out[0].to_json_line()).unwrap();
    assert!(!out[0].to_json_line().contains('\n'));
    assert_eq!(v["@timestamp"], "2014-06-25T09:01:02.000000000Z");
    assert_eq!(v["event"]["kind"], "alert");
    assert_eq!(
        v["event"]["category"],
        serde_json::json!(["network", "intrusion_detection"])
    );
    assert_eq!(v["event"]["action"], "slow-scan-detected");
    assert_eq!(v["event"]["dataset"], "slowscan.alert");
    assert_eq!(v["rule"]["name"], "slowscan.failed_attempts");
    assert_eq!(v["source"]["ip"], "10.0.0.9");
    assert_eq!(v["network"]["transport"], "tcp");
    let s = &v["slowscan"];
    assert_eq!(s["failed_pairs"], 3);
    assert_eq!(s["threshold"], 2);
    assert_eq!(
        s["window"],
        serde_json::json!({"mode": "tumbling", "seconds": 3600,
            "start": "2014-06-25T09:00:00.000000000Z", "end": "2014-06-25T09:00:02.000000000Z"})
    );
    assert_eq!(s["detector"], "1h:2");
    assert_eq!(s["count_estimated"], false);
    assert_eq!(s["first_failure"], "2014-06-25T09:00:00.000000000Z");
    assert_eq!(s["last_failure"], "2014-06-25T09:00:02.000000000Z");
    assert_eq!(s["shape"], "vertical");
    assert_eq!(
        (s["distinct_hosts"].clone(), s["distinct_ports"].clone()),
        (1.into(), 3.into())
    );
    assert_eq!(
        s["targets"],
        serde_json::json!([{"ip": "192.0.2.1", "port": 1001}, {"ip": "192.0.2.1", "port": 1002}])
    );
    assert_eq!(s["alert_seq"], 1);
    let (out, ..) = run(cfg(Window::None, 0), &[syn(0, 1, 1, 1, 1)]);
    let v: serde_json::Value = serde_json::from_str(&out[0].to_json_line()).unwrap();
    assert_eq!(
        v["slowscan"]["window"],
        serde_json::json!({"mode": "none", "seconds": null, "start": null,
            "end": "1970-01-01T00:00:00.000000000Z"})
    );
}

#[test]
fn r8_shape_classification() {
    let horiz: Vec<_> = (0..3).map(|i| syn(i * S, 1, i as u8 + 1, 445, 1)).collect();
    let mixed: Vec<_> = (0..3)
        .map(|i| syn(i * S, 1, i as u8 + 1, 445 + i as u16, 1))
        .collect();
    for (recs, shape) in [
        (horiz, Shape::Horizontal),
        (probes(0, S, 3, 1), Shape::Vertical),
        (mixed, Shape::Mixed),
    ] {
        let (out, ..) = run(cfg(Window::None, 2), &recs);
        assert_eq!(out[0].shape, shape);
    }
}

#[test]
fn r4_4_whitelisted_destinations_are_ignored() {
    let mut c = cfg(Window::None, 0);
    let wk = WhitelistKey::new(AF_INET, v4(1, [192, 0, 2]), 80);
    c.whitelist = Some([wk].into_iter().collect());
    let recs = [
        syn(0, 1, 1, 80, 1),
        rec(S, 1, 1, 80, ACK, 2),
        syn(0, 1, 1, 81, 1),
    ];
    let (out, st, _) = run(c, &recs);
    assert_eq!(
        (st.whitelisted_records, st.attempts, st.failed, st.records),
        (2, 1, 1, 3)
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].targets[0].port, 81);
}

#[test]
fn r4_2_learning_takes_established_attempts_to_eligible_ports() {
    let mut c = cfg(Window::None, 100);
    c.learn = Some(LearnConfig::default());
    c.wall_clock_offset_ns = 1_403_600_400 * S as i64;
    let mut recs = Vec::new();
    for (i, port) in [80u16, 80, 3128, 8080, 22].into_iter().enumerate() {
        let t = i as u64 * S;
        let mut s = syn(t, 1, 1, port, 1);
        s.src_port += i as u16;
        let mut a = rec(t + 1, 1, 1, port, ACK, 2);
        a.src_port = s.src_port;
        recs.extend([s, a]);
    }
    recs.push(syn(10 * S, 1, 1, 443, 1)); // failed: not learned
    let (_, _, e) = run(c, &recs);
    let wl = e.learned().unwrap();
    let port = |p| WhitelistKey::new(AF_INET, v4(1, [192, 0, 2]), p);
    assert_eq!(wl.len(), 3, "{}", wl.to_json());
    let e80 = wl.get(&port(80)).unwrap();
    assert_eq!(e80.established, 2);
    assert_eq!(e80.first_seen_ns, Some(1_403_600_400 * S as i64 + 1));
    assert_eq!(e80.last_seen_ns, Some(1_403_600_401 * S as i64 + 1));
    assert!(wl.contains(&port(3128)) && wl.contains(&port(22)));
    assert!(!wl.contains(&port(8080)) && !wl.contains(&port(443)));
    assert!(Engine::new(cfg(Window::None, 1)).learned().is_none());
}

#[test]
fn bounded_pending_evicts_oldest_as_failed() {
    let mut c = cfg(Window::None, 100);
    c.max_pending = 3;
    let recs: Vec<_> = (0..5).map(|i| syn(i, 1, 1, 1000 + i as u16, 1)).collect();
    let mut e = Engine::new(c);
    let mut out = Vec::new();
    for r in &recs {
        e.process(r, &mut out);
    }
    let st = e.stats();
    assert_eq!((st.pending, st.evicted_pending, st.failed), (3, 2, 2));
    // The evicted attempt can no longer be established; a kept one can.
    e.process(&rec(10, 1, 1, 1000, ACK, 2), &mut out);
    e.process(&rec(10, 1, 1, 1004, ACK, 2), &mut out);
    assert_eq!(e.stats().established, 1);
    assert!(e.memory_usage().pending_bytes > 0);
}

#[test]
fn bounded_sources_evict_single_failure_sources_first() {
    let mut c = cfg(Window::None, 4);
    c.max_sources = 10;
    let mut recs = Vec::new();
    let mut t = 0;
    // A scanner (source 200) probes once per 5 spoofed single failures.
    for i in 0..50u16 {
        if i % 5 == 0 {
            recs.push(syn(t, 200, 1, 1000 + i, 1));
        }
        recs.push(syn(t, (i % 100) as u8, 9, 80, u32::from(i)));
        t += S;
    }
    let (out, st, _) = run(c, &recs);
    assert!(st.evicted_sources > 0, "{st:?}");
    assert_eq!(st.sources, 10);
    let alerts: Vec<_> = out
        .iter()
        .map(|a| (a.source_ip().to_string(), a.failed_pairs))
        .collect();
    assert_eq!(
        alerts,
        vec![("10.0.0.200".to_owned(), 5), ("10.0.0.200".to_owned(), 10)]
    );
}

#[test]
fn disorder_is_tolerated_without_losing_counts() {
    let mut recs = Vec::new();
    for i in 0..2000u64 {
        let port = 1000 + (i % 300) as u16;
        recs.push(syn(
            i * S / 10,
            (i % 7) as u8,
            (i % 11) as u8,
            port,
            i as u32,
        ));
        if i % 3 == 0 {
            recs.push(rec(
                i * S / 10 + 5,
                (i % 7) as u8,
                (i % 11) as u8,
                port,
                ACK,
                i as u32 + 1,
            ));
        }
    }
    // Swap neighbours (two CPUs interleaving).
    for i in (0..recs.len() - 1).step_by(3) {
        recs.swap(i, i + 1);
    }
    for window in [
        Window::None,
        Window::Tumbling(10 * S),
        Window::Sliding(10 * S),
    ] {
        let (_, st, e) = run(cfg(window, 3), &recs);
        assert_eq!(st.attempts, st.established + st.failed, "{st:?}");
        assert_eq!(st.pending, 0);
        let r = e.report();
        let sum: u64 = r.sources.values().map(|s| s.failed).sum();
        assert_eq!(sum, st.failed);
    }
}

#[test]
fn report_serialises_with_address_keys() {
    let recs = [
        syn(0, 1, 1, 80, 1),
        rec(S, 1, 1, 80, ACK, 2),
        syn(0, 2, 1, 81, 1),
        syn(S, 2, 2, 81, 1),
    ];
    let (_, _, e) = run(cfg(Window::None, 100), &recs);
    let v = serde_json::to_value(e.report()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "attempts": 3, "established": 1, "failed": 2, "untracked": 0,
            "sources": {
                "10.0.0.1": {"attempts": 1, "established": 1, "failed": 0, "failed_pairs": 0},
                "10.0.0.2": {"attempts": 2, "established": 0, "failed": 2, "failed_pairs": 2},
            }
        })
    );
    // Without `report`, only the totals.
    let mut c = cfg(Window::None, 100);
    c.report = false;
    let (_, _, e) = run(c, &recs);
    assert!(e.report().sources.is_empty());
    assert_eq!(e.report().failed, 2);
}

#[test]
fn engine_is_send() {
    fn send<T: Send>() {}
    send::<Engine>();
    send::<Alert>();
}

#[test]
fn counted_failures_are_exported_for_a_fleet() {
    let mut c = cfg(Window::Sliding(3600 * S), 9);
    c.export_failures = true;
    // Port 80 of 192.0.2.1 is a live service (R4.5): its failure is an
    // outage and is not exported; the probes to other ports are.
    let mut recs = vec![syn(0, 2, 1, 80, 10), rec(S, 2, 1, 80, ACK, 11)];
    recs.extend(probes(10 * S, S, 3, 1));
    recs.push(syn(20 * S, 1, 1, 80, 99));
    let (_, st, mut e) = run(c, &recs);
    let mut out = Vec::new();
    e.drain_failures(&mut out);
    assert_eq!(st.outage_failures, 1);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0].port, 1000);
    assert_eq!(out[0].at_ns, (10 * S) as i64);
    e.drain_failures(&mut out);
    assert_eq!(out.len(), 3, "drained once");
}
