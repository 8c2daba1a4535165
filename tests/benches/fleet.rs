//! The fleet's store at speed (docs/fleet.md): a real 3-master Redis Cluster
//! on loopback, started and stopped (by PID) by this bench, and one `Fleet`
//! client as a sensor. Prints a Markdown report:
//!
//! * decided failures pushed per second by one sensor (pipelined, one
//!   function call per source and round), for scanners (many pairs per
//!   source) and for many sources with one pair each (a spoofed flood);
//! * latency from the push of a crossing failure to the fleet alert in the
//!   sensor's hands, idle and while the sensor pushes a flood;
//! * the store's memory per tracked source (`MEMORY USAGE` of its keys, over
//!   a sample of 50 sources), for the default ladder and for one
//!   detector, with one pair, 20 pairs (alerted) and 300 pairs (sketched).
//!
//! `cargo bench -p slowscan-tests --bench fleet` (needs redis-server and
//! redis-cli: `cargo xtask setup`). The machine is shared: figures vary by a
//! few tens of percent between runs.

use std::time::{Duration, Instant};

use slowscan::engine::{CountedFailure, DetectorConfig, HOUR_NS, Window};
use slowscan::fleet::{Fleet, FleetAlert, FleetConfig, FleetUrl};
use slowscan_tests::redis::RedisCluster;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_750_000_000 * S;

fn fleet(url: &str, name: &str, dets: &[DetectorConfig]) -> Fleet {
    let cfg = FleetConfig::new(FleetUrl::parse(url).unwrap(), name, dets).unwrap();
    Fleet::start(cfg).unwrap_or_else(|e| panic!("{e}"))
}

fn v6(prefix: u16, n: u32) -> std::net::IpAddr {
    format!("2001:db8:{prefix:x}::{:x}:{:x}", n >> 16, n & 0xffff)
        .parse()
        .unwrap()
}

fn failure(src: std::net::IpAddr, host: u32, port: u16, t: i64) -> CountedFailure {
    CountedFailure {
        source: src,
        identity: slowscan::engine::Identity::Address(src),
        destination: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0xcb00_7100 | (host & 0xff))),
        port,
        at_ns: t,
    }
}

/// Pushes `fs` as fast as the sensor takes them and waits until the store
/// has them all: failures per second.
fn push_rate(f: &Fleet, fs: Vec<CountedFailure>) -> f64 {
    let n = fs.len();
    let before = f.status().pushed;
    let start = Instant::now();
    for chunk in fs.chunks(4096) {
        f.push_all(&mut chunk.to_vec());
        // A sensor's queue is bounded: keep it from overflowing here.
        while f.status().queued > 200_000 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(f.flush(Duration::from_secs(300)), "{:?}", f.status());
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(f.status().pushed - before, n as u64, "{:?}", f.status());
    n as f64 / secs
}

/// FCALLs served by the masters, and the mean server time of one (µs).
fn fcall_stats(cluster: &RedisCluster) -> (u64, f64) {
    let (mut calls, mut usec) = (0u64, 0u64);
    for p in cluster.master_ports() {
        let s = slowscan_tests::redis::cli(p, &["info", "commandstats"]);
        if let Some(l) = s.lines().find(|l| l.starts_with("cmdstat_fcall:")) {
            for kv in l["cmdstat_fcall:".len()..].split(',') {
                match kv.split_once('=') {
                    Some(("calls", v)) => calls += v.trim().parse::<u64>().unwrap_or(0),
                    Some(("usec", v)) => usec += v.trim().parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
    (calls, usec as f64 / calls.max(1) as f64)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Crossing → alert: per probe, a fresh source's 10 failures (threshold 9)
/// pushed together; the lag of the alert the 10th one claims.
fn latency(f: &Fleet, prefix: u16, probes: u32) -> Vec<f64> {
    let mut lags = Vec::new();
    let mut got: Vec<FleetAlert> = Vec::new();
    for p in 0..probes {
        let src = v6(prefix, p);
        let mut fs: Vec<CountedFailure> = (0..10)
            .map(|i| failure(src, i, 22, T0 + i64::from(i) * S))
            .collect();
        f.push_all(&mut fs);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            f.drain_alerts(&mut got);
            if let Some(i) = got.iter().position(|a| a.source == src) {
                lags.push(got[i].lag.as_secs_f64() * 1e3);
                got.clear();
                break;
            }
            assert!(
                Instant::now() < end,
                "no alert for probe {p}: {:?}",
                f.status()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    lags
}

/// Store bytes per source, `sources` sources of `pairs` pairs each: the sum
/// of `MEMORY USAGE` (value, key and its dict entry, as Redis estimates them)
/// over every key of 50 of the sources, and the keys per source. (The
/// masters' `used_memory` moves by megabytes with buffers and allocator
/// state, more than these sources' keys.)
fn memory_per_source(
    cluster: &RedisCluster,
    url: &str,
    dets: &[DetectorConfig],
    prefix: u16,
    sources: u32,
    pairs: u32,
) -> (f64, f64) {
    let f = fleet(url, "mem", dets);
    let mut fs = Vec::with_capacity((sources * pairs) as usize);
    for s in 0..sources {
        for i in 0..pairs {
            fs.push(failure(
                v6(prefix, s),
                i % 250,
                1 + (i / 250) as u16,
                T0 + i64::from(i) * S,
            ));
        }
    }
    push_rate(&f, fs);
    let sample = 50u32.min(sources);
    let (mut bytes, mut keys) = (0u64, 0u64);
    for s in 0..sample {
        let src = v6(prefix, s * (sources / sample));
        let port = cluster.master_of(&format!("ss:{{{src}}}:s"));
        let pattern = format!("ss:{{{src}}}:*");
        let list = slowscan_tests::redis::cli(port, &["--scan", "--pattern", &pattern]);
        for k in list.lines().filter(|l| !l.is_empty()) {
            keys += 1;
            bytes += slowscan_tests::redis::cli(port, &["memory", "usage", k])
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    (
        bytes as f64 / f64::from(sample),
        keys as f64 / f64::from(sample),
    )
}

fn main() {
    // `cargo bench` passes --bench; a test run (`cargo test --benches`) does not.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !slowscan_tests::tools_present("bench fleet", &["redis-server", "redis-cli"]) {
        return;
    }
    // No append-only file: its buffers would blur the memory figures.
    let cluster = RedisCluster::start_with(3, 0, &["--appendonly", "no"]);
    let url = cluster.url();
    let ladder = DetectorConfig::default_ladder();
    let one = [DetectorConfig {
        window: Window::Sliding(HOUR_NS),
        threshold: 9,
    }];
    println!("## Fleet store (`tests/benches/fleet.rs`)\n");
    println!(
        "One sensor (`Fleet`), a 3-master Redis Cluster ({}) on loopback, same 2-core machine; default ladder.\n",
        String::from_utf8_lossy(
            &std::process::Command::new("redis-server")
                .arg("--version")
                .output()
                .unwrap()
                .stdout
        )
        .split_whitespace()
        .nth(2)
        .unwrap_or("?")
    );

    // Throughput.
    let f = fleet(&url, "bench", &ladder);
    let scan: Vec<CountedFailure> = (0..4_000u32)
        .flat_map(|s| {
            (0..50u32).map(move |i| failure(v6(1, s), i, 443, T0 + i64::from(i) * 60 * S))
        })
        .collect();
    // Interleave sources as a sensor decides them: round i of every source.
    let mut scan_il = Vec::with_capacity(scan.len());
    for i in 0..50usize {
        for s in 0..4_000usize {
            scan_il.push(scan[s * 50 + i]);
        }
    }
    let flood: Vec<CountedFailure> = (0..200_000u32)
        .map(|s| failure(v6(2, s), s, 80, T0 + i64::from(s) * 1_000_000))
        .collect();
    // Every pair of a source in one call (a fast scan).
    let burst: Vec<CountedFailure> = (0..2_000u32)
        .flat_map(|s| (0..100u32).map(move |i| failure(v6(3, s), i, 8080, T0 + i64::from(i) * S)))
        .collect();
    println!(
        "| workload | failures pushed/s | failures per call | masters' time per failure |\n|---|---|---|---|"
    );
    for (name, fs) in [
        ("scanners: 4,000 sources × 50 pairs, interleaved", scan_il),
        ("flood: 200,000 sources × 1 pair", flood),
        ("fast scans: 2,000 sources × 100 pairs, in order", burst),
    ] {
        for p in cluster.master_ports() {
            slowscan_tests::redis::cli(p, &["config", "resetstat"]);
        }
        let n = fs.len() as f64;
        let r = push_rate(&f, fs);
        let (calls, usec) = fcall_stats(&cluster);
        println!(
            "| {name} | {r:.0} | {:.1} | {:.1} µs |",
            n / calls as f64,
            usec * calls as f64 / n
        );
    }
    let st = f.status();
    println!(
        "\n(store errors {}, dropped {}, alerts claimed {}; the masters' time is Redis's own `INFO commandstats` for FCALL.)\n",
        st.store_errors, st.dropped, st.alerts
    );
    drop(f);
    if std::env::var("FLEET_BENCH_ONLY").is_ok_and(|v| v == "throughput") {
        return;
    }

    // Latency.
    let f = fleet(&url, "lat", &one);
    let mut idle = latency(&f, 10, 300);
    let load = fleet(&url, "load", &ladder);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            let mut pushed = 0u64;
            let start = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut fs: Vec<CountedFailure> = (0..2_000)
                    .map(|k| {
                        n += 1;
                        failure(v6(11, n), k, 80, T0 + i64::from(n) * 1_000)
                    })
                    .collect();
                pushed += fs.len() as u64;
                load.push_all(&mut fs);
                while load.status().queued > 50_000 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            load.flush(Duration::from_secs(60));
            pushed as f64 / start.elapsed().as_secs_f64()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut busy = latency(&f, 12, 300);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let load_rate = loader.join().unwrap();
    println!("| crossing failure → fleet alert | median | p99 |\n|---|---|---|");
    println!(
        "| idle | {:.2} ms | {:.2} ms |",
        percentile(&mut idle, 0.5),
        percentile(&mut idle, 0.99)
    );
    println!(
        "| while another sensor pushes a flood ({:.0} failures/s) | {:.2} ms | {:.2} ms |",
        load_rate,
        percentile(&mut busy, 0.5),
        percentile(&mut busy, 0.99)
    );
    drop(f);

    // Memory.
    println!(
        "\n| store memory per tracked source (MEMORY USAGE of its keys) | default ladder (4 detectors) | one detector (1h:9) | keys per source (ladder) |\n|---|---|---|---|"
    );
    for (label, sources, pairs, p) in [
        ("1 failed pair", 20_000u32, 1u32, 20u16),
        ("20 failed pairs (alerted)", 5_000, 20, 22),
        ("300 failed pairs (sketched)", 1_000, 300, 24),
    ] {
        let (ladder_b, keys) = memory_per_source(&cluster, &url, &ladder, p, sources, pairs);
        let (one_b, _) = memory_per_source(&cluster, &url, &one, p + 1, sources, pairs);
        println!(
            "| {label} | {:.0} B | {:.0} B | {:.1} |",
            ladder_b, one_b, keys
        );
    }
}
