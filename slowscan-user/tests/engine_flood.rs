//! Bounded memory: a slow scanner hidden in a large spoofed-SYN flood is still
//! detected with small caps, and what is evicted is counted.

use slowscan::engine::{DetectorConfig, Engine, EngineConfig, SECOND_NS, Window};
use slowscan_common::tcp::SYN;
use slowscan_common::{AF_INET, PacketRecord};

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a);
    out
}

fn syn(ts: u64, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32) -> PacketRecord {
    PacketRecord {
        ts_ns: ts,
        src_addr: v4(src),
        dst_addr: v4(dst),
        seq,
        src_port: sport,
        dst_port: dport,
        family: AF_INET,
        tcp_flags: SYN,
        ..Default::default()
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn bounded_memory_scanner_detected_inside_2m_spoofed_syn_flood() {
    const FLOOD: u64 = 2_000_000;
    const MAX_PENDING: usize = 50_000;
    const MAX_SOURCES: usize = 100_000;
    let cfg = EngineConfig {
        max_pending: MAX_PENDING,
        max_sources: MAX_SOURCES,
        detectors: vec![DetectorConfig {
            window: Window::Tumbling(3600 * SECOND_NS),
            threshold: 9,
        }],
        ..Default::default()
    };
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let scanner = [10, 9, 9, 9];
    let mut probes = 0u16;
    // One spoofed SYN per millisecond (1,000/s: 60,000 would be pending within
    // the 60 s timeout, more than the cap); the scanner probes a new port of
    // one host every 10 s (every 10,000 flood records).
    for i in 0..FLOOD {
        let ts = 1_403_686_800 * SECOND_NS + i * 1_000_000;
        let r = rng.next();
        let src = (r as u32).to_be_bytes();
        let dst = [10, 1, (r >> 32) as u8, (r >> 40) as u8];
        e.process(
            &syn(ts, src, (r >> 48) as u16, dst, 80, (r >> 16) as u32),
            &mut out,
        );
        if i % 10_000 == 5_000 {
            e.process(
                &syn(ts, scanner, 40_000, [10, 2, 0, 1], 1 + probes, 7),
                &mut out,
            );
            probes += 1;
        }
        if i % 100_000 == 0 {
            let st = e.stats();
            assert!(
                st.pending as usize <= MAX_PENDING && st.sources as usize <= MAX_SOURCES,
                "{st:?}"
            );
        }
    }
    let mem = e.memory_usage();
    e.finish(&mut out);
    let st = e.stats();
    assert_eq!(st.attempts, FLOOD + u64::from(probes));
    assert_eq!(st.failed, st.attempts, "every SYN failed");
    assert!(st.evicted_pending > 1_000_000, "{st:?}");
    assert!(st.evicted_sources > 1_500_000, "{st:?}");
    assert!(mem.pending_bytes < MAX_PENDING * 128, "{mem:?}");
    assert!(mem.source_bytes < MAX_SOURCES * 512, "{mem:?}");
    let scanner_ip = std::net::IpAddr::from(scanner);
    let seen: Vec<_> = out
        .iter()
        .map(|a| (a.source_ip(), a.failed_pairs, a.alert_seq))
        .collect();
    assert!(
        out.iter().all(|a| a.source_ip() == scanner_ip),
        "only the scanner alerts: {seen:?}"
    );
    assert_eq!(
        seen,
        vec![
            (scanner_ip, 10, 1),
            (scanner_ip, 20, 2),
            (scanner_ip, 40, 3),
            (scanner_ip, 80, 4),
            (scanner_ip, 160, 5)
        ]
    );
}

#[test]
fn bounded_memory_at_most_128_bytes_per_pending_attempt() {
    let n: u64 = 1_000_000;
    let mut e = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for i in 0..n {
        let src = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        e.process(&syn(i, src, 40_000, [192, 0, 2, 1], 80, i as u32), &mut out);
    }
    let st = e.stats();
    assert_eq!(st.pending, n);
    let per = e.memory_usage().pending_bytes as f64 / n as f64;
    println!("bytes per pending attempt: {per:.1}");
    assert!(per <= 128.0, "{per:.1} bytes per pending attempt");
}
