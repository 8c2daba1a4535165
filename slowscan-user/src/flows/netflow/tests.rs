use super::*;
use crate::engine::EngineConfig;

const S: u16 = SYN16;
const A: u16 = ACK16;
const F: u16 = 0x01;
const R: u16 = 0x04;

fn rec(flags: u16, reverse: Option<(u16, u64)>) -> FlowRecord {
    FlowRecord {
        src: "198.51.100.1".parse().unwrap(),
        dst: "198.51.100.2".parse().unwrap(),
        src_port: 40000,
        dst_port: 22,
        flags,
        start_ns: 1_000,
        reverse,
        src_mac: [0; 6],
    }
}

fn outcome(r: &FlowRecord) -> Option<(IpAddr, bool)> {
    judge(r).map(|j| {
        let k = j.attempt.flow;
        (
            crate::addr::ip_from(k.family, &k.src_addr),
            j.attempt.established,
        )
    })
}

#[test]
fn r5_3_syn_without_ack_failed_with_ack_established_without_syn_nothing() {
    let c: IpAddr = "198.51.100.1".parse().unwrap();
    assert_eq!(outcome(&rec(S, None)), Some((c, false)));
    // A stealth probe's SYN then RST (R5.2): Failed.
    assert_eq!(outcome(&rec(S | R, None)), Some((c, false)));
    assert_eq!(outcome(&rec(S | A | F, None)), Some((c, true)));
    assert_eq!(outcome(&rec(A | F, None)), None);
    // The known difference: a bare FIN adds a failure.
    assert_eq!(outcome(&rec(S | F, None)), Some((c, false)));
}

#[test]
fn r5_3_biflow_finds_the_client_in_either_direction() {
    let (c, srv): (IpAddr, IpAddr) = (
        "198.51.100.1".parse().unwrap(),
        "198.51.100.2".parse().unwrap(),
    );
    // Forward is the server (lower address first, as softflowd does).
    assert_eq!(outcome(&rec(S | A, Some((S, 900)))), Some((srv, false)));
    assert_eq!(outcome(&rec(R | A, Some((S, 900)))), Some((srv, false)));
    assert_eq!(
        outcome(&rec(S | A | F, Some((S | A | F, 900)))),
        Some((srv, true))
    );
    assert_eq!(
        outcome(&rec(S | A | F, Some((S | A | F, 1_100)))),
        Some((c, true))
    );
    // The client's SYN is not in this record: nothing.
    assert_eq!(outcome(&rec(S | A, Some((A, 900)))), None);
    // No reverse packets: read as uniflow.
    assert_eq!(outcome(&rec(S, Some((0, 0)))), Some((c, false)));
}

#[test]
fn r5_3_a_servers_syn_ack_record_is_its_clients_reply() {
    let mut e = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let mut o = Reorder::new(0, 1 << 20);
    let client = rec(S | A | F, None);
    let server = FlowRecord {
        src: client.dst,
        dst: client.src,
        src_port: client.dst_port,
        dst_port: client.src_port,
        start_ns: client.start_ns + 1,
        ..client
    };
    o.push(&server, &mut e, &mut out);
    o.push(&client, &mut e, &mut out);
    o.finish(&mut e, &mut out);
    assert_eq!(
        (o.stats.attempts, o.stats.established, o.stats.replies),
        (1, 1, 1)
    );
}

#[test]
fn records_are_counted_in_start_order_within_the_lateness() {
    let mut e = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let mut o = Reorder::new(10_000, 1 << 20);
    for t in [5_000, 1_000, 30_000, 2_000] {
        o.push(
            &FlowRecord {
                start_ns: t,
                ..rec(S, None)
            },
            &mut e,
            &mut out,
        );
    }
    // 2_000 came when 20_000 had been released (30_000 − 10_000): late.
    assert_eq!(o.stats.late, 1);
    assert_eq!(o.stats.buffered, 1);
    o.finish(&mut e, &mut out);
    assert_eq!((o.stats.failed, o.stats.buffered), (4, 0));
}
