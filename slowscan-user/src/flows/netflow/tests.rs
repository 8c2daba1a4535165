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

mod fuzz {
    use std::net::SocketAddr;

    use proptest::prelude::*;

    use super::super::Decoder;

    fn from() -> SocketAddr {
        "127.0.0.1:9995".parse().unwrap()
    }

    /// An IPFIX message: header, then `sets` (id, body) with lengths filled in.
    fn ipfix(export_s: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = vec![0, 10, 0, 0];
        m.extend_from_slice(&export_s.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        for (id, body) in sets {
            m.extend_from_slice(&id.to_be_bytes());
            m.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
            m.extend_from_slice(body);
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    /// Template 256: src, dst (IPv4), ports, protocol, flags, flowStartSeconds.
    fn template() -> (u16, Vec<u8>) {
        let mut t = vec![1, 0, 0, 7];
        for (id, len) in [
            (8u16, 4u16),
            (12, 4),
            (7, 2),
            (11, 2),
            (4, 1),
            (6, 1),
            (150, 4),
        ] {
            t.extend_from_slice(&id.to_be_bytes());
            t.extend_from_slice(&len.to_be_bytes());
        }
        (2, t)
    }

    fn syn_record(start_s: u32) -> (u16, Vec<u8>) {
        let mut d = vec![198, 51, 100, 1, 198, 51, 100, 2, 0x9c, 0x40, 0, 22, 6, 0x02];
        d.extend_from_slice(&start_s.to_be_bytes());
        (256, d)
    }

    #[test]
    fn absurd_start_times_take_the_export_time() {
        let mut d = Decoder::new(None);
        let mut out = Vec::new();
        let now = 1_800_000_000;
        d.datagram(from(), &ipfix(now, &[template(), syn_record(5)]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].start_ns, u64::from(now) * 1_000_000_000);
        assert_eq!(d.stats.bad_time, 1);
    }

    #[test]
    fn an_exporter_not_allowed_is_counted_and_dropped() {
        let allowed = crate::ignore::IgnoreList::parse_spec("203.0.113.0/24").unwrap();
        let mut d = Decoder::new(Some(allowed));
        let mut out = Vec::new();
        d.datagram(from(), &ipfix(1, &[template(), syn_record(1)]), &mut out);
        assert!(out.is_empty());
        assert_eq!((d.stats.datagrams, d.stats.not_allowed), (1, 1));
    }

    #[test]
    fn a_template_flood_stays_bounded_and_the_real_template_still_decodes() {
        let mut d = Decoder::new(None);
        let mut out = Vec::new();
        d.datagram(from(), &ipfix(1_800_000_000, &[template()]), &mut out);
        for id in 300..20_000u16 {
            let mut t = vec![0, 0, 0, 1, 0, 8, 0, 4];
            t[..2].copy_from_slice(&id.to_be_bytes());
            d.datagram(from(), &ipfix(1_800_000_000, &[(2, t)]), &mut out);
        }
        // The flood evicted template 256 (bounded cache): it is sent again.
        d.datagram(
            from(),
            &ipfix(1_800_000_000, &[template(), syn_record(1_800_000_000)]),
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Truncated and corrupted messages: counted, never a panic, and
        /// never a record with a start far from the export time.
        #[test]
        fn damaged_datagrams_never_panic(cut in 0usize..80, flip in 0usize..80, bit in 0u8..8, junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut d = Decoder::new(None);
            let mut out = Vec::new();
            let mut m = ipfix(1_800_000_000, &[template(), syn_record(1_800_000_000)]);
            if flip < m.len() { m[flip] ^= 1 << bit; }
            m.truncate(cut.max(1));
            d.datagram(from(), &m, &mut out);
            d.datagram(from(), &junk, &mut out);
            // Records come only from the whole message: within a year of its
            // (possibly flipped) export time.
            let export_s = m.get(4..8).map_or(0, |b| u32::from_be_bytes(b.try_into().unwrap()));
            let export_ns = u64::from(export_s) * 1_000_000_000;
            for r in &out {
                prop_assert!(r.start_ns.abs_diff(export_ns) <= 366 * 86_400 * 1_000_000_000);
            }
        }
    }
}
