//! Per-packet cost of the XDP program by packet class, through
//! BPF_PROG_TEST_RUN (≥ 1M repeats), beside the empty `baseline_pass`
//! program measured in the same run; reported as ratios because these
//! machines are shared and noisy. Also records per TCP packet on a
//! realistic mix with the pre-filter on. Needs root.
//! `XDP_BENCH_CLASSES_ONLY=1` stops after the per-class table.

use std::time::Duration;

use slowscan::{
    ignore::{IgnoreList, Prefix},
    kernel::{DataPlane, ProgramOptions, RecordReader},
    whitelist::Whitelist,
};
use slowscan_common::{AF_INET, Counter, WhitelistKey, tcp, wire};
use slowscan_tests::{
    fixtures::pad4,
    frames::{self, DST4, DST6, Tcp},
};

const REPEAT: u32 = 1_000_000;
/// Attempts fill the ring buffer; run them in chunks it can hold, draining between.
const CHUNK: u32 = 100_000;
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// Mean ns per run of `frame` as the kernel reports it (whole nanoseconds
/// per run: wall time around the syscall would add the milliseconds the
/// kernel spends switching the XDP dispatcher for a repeated run), chunked so every attempt's record fits the ring.
fn cost(dp: &mut DataPlane, reader: &mut RecordReader, frame: &[u8]) -> f64 {
    let mut sink = Vec::with_capacity(CHUNK as usize);
    let mut total = 0.0;
    for _ in 0..REPEAT / CHUNK {
        let (_, d) = dp.test_run(frame, CHUNK).unwrap();
        total += ns(d);
        sink.clear();
        reader.drain(&mut sink);
    }
    total / f64::from(REPEAT / CHUNK)
}

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xdp bench: needs root (BPF_PROG_TEST_RUN); skipped");
        return;
    }
    let mut dp = DataPlane::load(ProgramOptions::default()).expect("load");
    let mut reader = dp.take_records().unwrap();

    let mut bulk = Tcp::new(tcp::PSH | tcp::ACK, 123_456);
    bulk.payload = 1400;
    let bulk = frames::tcp4(&bulk);
    let mut wl_syn = Tcp::syn(1);
    wl_syn.dst_port = 443;
    dp.whitelist()
        .unwrap()
        .insert(WhitelistKey::new(AF_INET, pad4(DST4), 443))
        .unwrap();
    let classes: Vec<(&str, Vec<u8>, f64)> = vec![
        (
            "bulk TCP data (not an attempt, not pending)",
            bulk.clone(),
            2.0,
        ),
        ("whitelisted SYN", frames::tcp4(&wl_syn), 2.5),
        (
            "attempt, IPv4, record emitted",
            frames::tcp4(&Tcp::syn(7)),
            6.0,
        ),
        (
            "attempt, IPv6, record emitted",
            frames::tcp6(&Tcp::syn(7)),
            6.0,
        ),
        ("UDP (not TCP)", frames::udp4(), f64::NAN),
        ("ARP (not IP)", frames::arp(), f64::NAN),
    ];
    // docs/parsing.md: what VLAN stacks and encapsulations cost when present.
    // An outer IPv4 header carrying `payload` as `proto` (UDP tunnels: 17).
    let over4 =
        |proto: u8, payload: &[u8]| frames::ethernet(&[], 0x0800, &frames::outer4(proto, payload));
    let over_udp = |port: u16, payload: &[u8]| over4(17, &frames::udp(port, payload));
    let vxlan = |inner: &[u8]| {
        over_udp(
            wire::UDP_PORT_VXLAN,
            &frames::vxlan(0x08, &frames::ethernet(&[], 0x0800, inner)),
        )
    };
    let mut bulk_tcp = Tcp::new(tcp::PSH | tcp::ACK, 123_456);
    bulk_tcp.payload = 1400;
    let syn = Tcp::syn(7);
    let encap_classes: Vec<(&str, Vec<u8>, f64)> = vec![
        (
            "attempt, IPv4, three VLAN tags",
            frames::ethernet_tags(
                &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)],
                0x0800,
                &frames::inner4(&syn),
            ),
            f64::NAN,
        ),
        (
            "bulk TCP data in VXLAN (not pending)",
            vxlan(&frames::inner4(&bulk_tcp)),
            f64::NAN,
        ),
        ("attempt in VXLAN", vxlan(&frames::inner4(&syn)), f64::NAN),
        (
            "attempt in ERSPAN type II (GRE)",
            over4(
                47,
                &frames::gre(
                    0x10,
                    wire::ETH_P_ERSPAN,
                    &frames::erspan2(&frames::ethernet(&[], 0x0800, &frames::inner4(&syn))),
                ),
            ),
            f64::NAN,
        ),
        (
            "attempt in GTP-U",
            over_udp(
                wire::UDP_PORT_GTPU,
                &frames::gtpu(0x30, 0xFF, 0, &[], &frames::inner4(&syn)),
            ),
            f64::NAN,
        ),
        (
            "attempt over MPLS (two labels)",
            frames::ethernet(&[], 0x8847, &frames::mpls(2, true, &frames::inner4(&syn))),
            f64::NAN,
        ),
        ("attempt, 6in4", over4(41, &frames::inner6(&syn)), f64::NAN),
        (
            "attempt in plain GRE",
            over4(47, &frames::gre(0, wire::ETH_P_IP, &frames::inner4(&syn))),
            f64::NAN,
        ),
        (
            "attempt in Geneve",
            over_udp(
                wire::UDP_PORT_GENEVE,
                &frames::geneve(0, wire::ETH_P_IP, &frames::inner4(&syn)),
            ),
            f64::NAN,
        ),
        (
            "attempt in a PPPoE session",
            frames::ethernet(
                &[],
                wire::ETH_P_PPP_SES,
                &frames::pppoe(&[0x00, 0x21], &frames::inner4(&syn)),
            ),
            f64::NAN,
        ),
        (
            "attempt in 802.1ah (PBB)",
            frames::ethernet_tags(
                &[(wire::ETH_P_8021AD, 100)],
                wire::ETH_P_8021AH,
                &frames::pbb(&frames::ethernet(&[], 0x0800, &frames::inner4(&syn))),
            ),
            f64::NAN,
        ),
        (
            "attempt, IPv4 first fragment",
            frames::ethernet(
                &[],
                0x0800,
                &frames::ipv4([198, 51, 100, 7], DST4, 6, &[], 0x2000, &syn.bytes()),
            ),
            f64::NAN,
        ),
    ];
    // Each encapsulated attempt must be read as one (a class the parser
    // skipped would measure the wrong path).
    for (name, frame, _) in &encap_classes {
        if name.starts_with("attempt") {
            let before = dp.counters().unwrap();
            dp.test_run(frame, 1).unwrap();
            let d = dp.counters().unwrap().since(&before);
            assert_eq!(
                d.get(Counter::AttemptsEmitted),
                1,
                "{name}: not read as an attempt"
            );
        }
    }
    let classes: Vec<(&str, Vec<u8>, f64)> = classes.into_iter().chain(encap_classes).collect();

    // R4.6: the same measured with an ignore list of both families loaded
    // (64 IPv4 and 16 IPv6 prefixes that do not cover the classes' source),
    // and attempts from sources it covers.
    let ignore = ignore_list();
    let ignored4 = frames::ethernet(
        &[],
        0x0800,
        &frames::ipv4([203, 0, 113, 50], DST4, 6, &[], 0, &Tcp::syn(7).bytes()),
    );
    let mut src6 = [0u8; 16];
    src6[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff]);
    src6[15] = 1;
    let ignored6 = frames::ethernet(
        &[],
        0x86dd,
        &frames::ipv6(src6, DST6, &[], 6, &Tcp::syn(7).bytes()),
    );
    let ignore_classes: Vec<(&str, Vec<u8>, f64)> = vec![
        (
            "bulk TCP data, ignore list loaded (no lookup: not an attempt)",
            bulk.clone(),
            2.0,
        ),
        (
            "attempt, IPv4, ignore list loaded, source not in it",
            frames::tcp4(&Tcp::syn(7)),
            6.0,
        ),
        (
            "attempt, IPv6, ignore list loaded, source not in it",
            frames::tcp6(&Tcp::syn(7)),
            6.0,
        ),
        ("attempt from an ignored IPv4 source", ignored4, f64::NAN),
        ("attempt from an ignored IPv6 source", ignored6, f64::NAN),
    ];

    // R4.4: the same with whitelist rules loaded (the LPM tries consulted)
    // that do not cover the classes' destination, and a SYN a rule covers.
    let rules = rule_list();
    let mut rule_syn = Tcp::syn(1);
    rule_syn.dst_port = 8080;
    let rule_classes: Vec<(&str, Vec<u8>, f64)> = vec![
        (
            "attempt, IPv4, whitelist rules loaded, destination not covered",
            frames::tcp4(&Tcp::syn(7)),
            f64::NAN,
        ),
        (
            "attempt, IPv6, whitelist rules loaded, destination not covered",
            frames::tcp6(&Tcp::syn(7)),
            f64::NAN,
        ),
        (
            "SYN whitelisted by a rule (prefix, port range)",
            frames::tcp4(&rule_syn),
            f64::NAN,
        ),
    ];

    let mut base = Vec::new();
    let n = classes.len() + ignore_classes.len() + rule_classes.len();
    let mut per_class: Vec<Vec<f64>> = vec![Vec::new(); n];
    for _ in 0..ROUNDS {
        base.push(ns(dp.test_run_baseline(&bulk, REPEAT).unwrap()));
        let mut i = 0;
        let mut measure = |dp: &mut DataPlane, set: &[(&str, Vec<u8>, f64)]| {
            for (_, frame, _) in set {
                per_class[i].push(cost(dp, &mut reader, frame));
                i += 1;
            }
        };
        measure(&mut dp, &classes);
        dp.ignore().unwrap().load(&ignore).unwrap();
        measure(&mut dp, &ignore_classes);
        let mut map = dp.ignore().unwrap();
        for p in ignore.iter() {
            map.remove(p).unwrap();
        }
        dp.whitelist().unwrap().load(&rules).unwrap();
        measure(&mut dp, &rule_classes);
        let mut map = dp.whitelist().unwrap();
        for r in rules.rules() {
            map.remove_rule(r).unwrap();
        }
    }
    let base = median(base);
    println!(
        "## XDP per-packet cost (BPF_PROG_TEST_RUN, {REPEAT} repeats, median of {ROUNDS} rounds)\n"
    );
    println!("| packet class | ns/packet | × empty program | target |");
    println!("|---|---|---|---|");
    println!("| empty XDP program (baseline) | {base:.1} | 1.00 | |");
    let all = classes.iter().chain(&ignore_classes).chain(&rule_classes);
    for (i, (name, _, target)) in all.enumerate() {
        let c = median(per_class[i].clone());
        let t = if target.is_nan() {
            String::new()
        } else {
            format!("≤ {target:.1}×")
        };
        println!("| {name} | {c:.1} | {:.2} | {t} |", c / base);
    }
    if std::env::var_os("XDP_BENCH_CLASSES_ONLY").is_some() {
        // Only the per-class table (while comparing builds).
        return;
    }
    new_attempts(&mut dp, &mut reader, false);
    let sweep_note = new_attempts(&mut dp, &mut reader, true);
    let lost = dp.counters().unwrap().get(Counter::RingFull);
    println!("\nring buffer full during the run: {lost} records");
    println!("{sweep_note}");
    mix(&mut dp, &mut reader);
}

/// 64 IPv4 and 16 IPv6 prefixes (documentation ranges), none covering the
/// fixture frames' sources (198.51.100.10, 2001:db8::10).
fn ignore_list() -> IgnoreList {
    let mut v: Vec<Prefix> = vec![
        "203.0.113.0/24".parse().unwrap(),
        "198.51.100.128/25".parse().unwrap(),
        "2001:db8:ffff::/48".parse().unwrap(),
    ];
    for i in 0..62u8 {
        v.push(format!("192.0.2.{}/32", i * 4).parse().unwrap());
    }
    for i in 0..15u16 {
        v.push(format!("2001:db8:{:x}::/64", 0x100 + i).parse().unwrap());
    }
    v.into_iter().collect()
}

/// 77 whitelist rules (documentation ranges): prefixes on port ranges and
/// on every port, one covering DST4:8000-8099, none covering the fixture
/// frames' destination on port 80 (203.0.113.20, 2001:db8:1::20).
fn rule_list() -> Whitelist {
    let mut wl = Whitelist::new();
    let mut add = |s: String| {
        wl.insert_rule(s.parse().unwrap());
    };
    add("203.0.113.0/24:8000-8099".into());
    add("[2001:db8:1::/48]:443".into());
    for i in 0..60u8 {
        add(format!("192.0.2.{}/30:80-81", i * 4));
    }
    for i in 0..15u16 {
        add(format!("[2001:db8:{:x}::/64]:*", 0x100 + i));
    }
    wl
}

/// Attempts on a new 5-tuple each (the insert path, not the retransmission
/// path a repeated frame takes): one run per frame, beside the baseline run
/// the same way, since BPF_PROG_TEST_RUN repeats only one frame. With
/// `full`, the pending table is first filled to its capacity, so every
/// insert makes the LRU evict.
fn new_attempts(dp: &mut DataPlane, reader: &mut RecordReader, full: bool) -> String {
    const N: u32 = 50_000;
    let mut sink = Vec::new();
    if full {
        for i in 0..slowscan_common::PENDING_MAX {
            let mut t = Tcp::syn(i);
            t.src_port = 1024 + (i % 60_000) as u16;
            t.dst_port = 10_000 + (i / 60_000) as u16;
            dp.test_run(&frames::tcp4(&t), 1).unwrap();
            if i % 100_000 == 0 {
                sink.clear();
                reader.drain(&mut sink);
            }
        }
        sink.clear();
        reader.drain(&mut sink);
    }
    let frames_new: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut t = Tcp::syn(i);
            t.src_port = 1024 + (i % 60_000) as u16;
            t.dst_port = 1 + (i / 60_000) as u16 + 2000;
            frames::tcp4(&t)
        })
        .collect();
    let mut base = 0.0;
    let mut cost = 0.0;
    let mut sweep_note = String::new();
    for f in &frames_new {
        base += ns(dp.test_run_baseline(f, 1).unwrap());
        cost += ns(dp.test_run(f, 1).unwrap().1);
        if std::env::var_os("DRAIN_EACH").is_some() {
            sink.clear();
            reader.drain(&mut sink);
        }
    }
    reader.drain(&mut sink);
    if full {
        // The daemon's sweep over a full table: a walk that expires nothing,
        // then one that expires everything (a syscall per entry).
        let entries = dp.pending_len().unwrap();
        let t = std::time::Instant::now();
        dp.sweep_pending(0, 0).unwrap();
        let walk = t.elapsed();
        let t = std::time::Instant::now();
        let swept = dp.sweep_pending(u64::MAX / 2, 0).unwrap();
        let all = t.elapsed();
        sweep_note = format!(
            "\nsweep of a full table ({entries} entries, wall clock, 2 ms of pauses included): \
             {:.1} ms expiring none, {:.1} ms expiring all {swept}",
            walk.as_secs_f64() * 1e3,
            all.as_secs_f64() * 1e3
        );
    }
    // Leave the table as found for what follows.
    dp.sweep_pending(u64::MAX / 2, 0).unwrap();
    let (base, cost) = (base / f64::from(N), cost / f64::from(N));
    let what = if full {
        "attempt on a new 5-tuple, table full (LRU evicting)"
    } else {
        "attempt on a new 5-tuple"
    };
    println!(
        "| {what} (one run per frame; its baseline {base:.1} ns) | {cost:.1} | {:.2} | ≤ 6.0× |",
        cost / base
    );
    sweep_note
}

/// A realistic mix: connections that establish and carry data, plus failed
/// attempts; ≥ 95% of packets are data. Records per TCP packet must stay
/// within 2 × the share of attempts (a SYN and at most one follow-up each).
fn mix(dp: &mut DataPlane, reader: &mut RecordReader) {
    let mut frames_mix = Vec::new();
    let mut attempts = 0u64;
    for c in 0..400u16 {
        let isn = 1_000_000u32.wrapping_mul(u32::from(c) + 1);
        let mk = |flags, seq| {
            let mut t = Tcp::new(flags, seq);
            t.src_port = 20_000 + c;
            t.dst_port = 8080;
            t
        };
        frames_mix.push(frames::tcp4(&mk(tcp::SYN, isn)));
        attempts += 1;
        if c % 10 == 0 {
            continue; // a failed attempt: no follow-up ever
        }
        frames_mix.push(frames::tcp4(&mk(tcp::ACK, isn.wrapping_add(1))));
        let mut seq = isn.wrapping_add(1);
        for _ in 0..40 {
            let mut t = mk(tcp::PSH | tcp::ACK, seq);
            t.payload = 1000;
            frames_mix.push(frames::tcp4(&t));
            seq = seq.wrapping_add(1000);
        }
        frames_mix.push(frames::tcp4(&mk(tcp::FIN | tcp::ACK, seq)));
    }
    let before = dp.counters().unwrap();
    let mut recs = Vec::new();
    for f in &frames_mix {
        dp.test_run(f, 1).unwrap();
        reader.drain(&mut recs);
    }
    let d = dp.counters().unwrap().since(&before);
    let tcp_packets = frames_mix.len() as f64;
    let share = attempts as f64 / tcp_packets;
    let per_packet = recs.len() as f64 / tcp_packets;
    let data_share =
        1.0 - (attempts as f64 + d.get(Counter::FollowUpsEmitted) as f64) / tcp_packets;
    println!("\n## Pre-filter on a realistic mix\n");
    println!(
        "| TCP packets | data share | attempts | records | records per TCP packet | 2 × attempt share |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {:.1}% | {attempts} | {} | {per_packet:.4} | {:.4} |",
        frames_mix.len(),
        data_share * 100.0,
        recs.len(),
        2.0 * share
    );
}
