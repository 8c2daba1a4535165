//! Per-packet cost of the XDP program by packet class, through
//! BPF_PROG_TEST_RUN (≥ 1M repeats), beside the empty `baseline_pass`
//! program measured in the same run; reported as ratios because these
//! machines are shared and noisy. Also records per TCP packet on a
//! realistic mix with the pre-filter on. Needs root.

use std::time::Duration;

use slowscan::kernel::{DataPlane, ProgramOptions, RecordReader};
use slowscan_common::{AF_INET, Counter, WhitelistKey, tcp};
use slowscan_tests::{
    fixtures::pad4,
    frames::{self, DST4, Tcp},
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

    let mut base = Vec::new();
    let mut per_class: Vec<Vec<f64>> = vec![Vec::new(); classes.len()];
    for _ in 0..ROUNDS {
        base.push(ns(dp.test_run_baseline(&bulk, REPEAT).unwrap()));
        for (i, (_, frame, _)) in classes.iter().enumerate() {
            per_class[i].push(cost(&mut dp, &mut reader, frame));
        }
    }
    let base = median(base);
    println!(
        "## XDP per-packet cost (BPF_PROG_TEST_RUN, {REPEAT} repeats, median of {ROUNDS} rounds)\n"
    );
    println!("| packet class | ns/packet | × empty program | target |");
    println!("|---|---|---|---|");
    println!("| empty XDP program (baseline) | {base:.1} | 1.00 | |");
    for (i, (name, _, target)) in classes.iter().enumerate() {
        let c = median(per_class[i].clone());
        let t = if target.is_nan() {
            String::new()
        } else {
            format!("≤ {target:.1}×")
        };
        println!("| {name} | {c:.1} | {:.2} | {t} |", c / base);
    }
    new_attempts(&mut dp, &mut reader);
    let lost = dp.counters().unwrap().get(Counter::RingFull);
    println!("\nring buffer full during the run: {lost} records");
    mix(&mut dp, &mut reader);
}

/// Attempts on a new 5-tuple each (the insert path, not the retransmission
/// path a repeated frame takes): one run per frame, beside the baseline run
/// the same way, since BPF_PROG_TEST_RUN repeats only one frame.
fn new_attempts(dp: &mut DataPlane, reader: &mut RecordReader) {
    const N: u32 = 50_000;
    let frames_new: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut t = Tcp::syn(i);
            t.src_port = 1024 + (i % 60_000) as u16;
            t.dst_port = 1 + (i / 60_000) as u16 + 2000;
            frames::tcp4(&t)
        })
        .collect();
    let mut sink = Vec::new();
    let mut base = 0.0;
    let mut cost = 0.0;
    for f in &frames_new {
        base += ns(dp.test_run_baseline(f, 1).unwrap());
        cost += ns(dp.test_run(f, 1).unwrap().1);
        if std::env::var_os("DRAIN_EACH").is_some() {
            sink.clear();
            reader.drain(&mut sink);
        }
    }
    reader.drain(&mut sink);
    // Leave the table as found for what follows.
    dp.sweep_pending(u64::MAX / 2, 0).unwrap();
    let (base, cost) = (base / f64::from(N), cost / f64::from(N));
    println!(
        "| attempt on a new 5-tuple (one run per frame; its baseline {base:.1} ns) | {cost:.1} | {:.2} | ≤ 6.0× |",
        cost / base
    );
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
