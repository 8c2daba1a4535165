//! The sensor under a SYN flood at the sender's ceiling (root; prints a
//! Markdown report for BENCHMARKS.md). Spoofed IPv6 SYNs from random sources
//! in 2001:db8::/32, one AF_PACKET sender thread per core, unthrottled, for
//! 60 s, into a 2-queue veth pair whose other end `slowscan run --mirror`
//! (release build, default 60 s handshake timeout, detector 1h:9) watches.
//! Inside the flood: a slow scanner (15 failed pairs) and a benign client
//! (30 completed handshakes to distinct ports).
//!
//! Reported beside their targets: frames/s, records lost (0), attempts the
//! kernel table forgot, the scanner found, the benign client quiet, the
//! daemon's CPU and peak RSS (≤ 1 GiB), and the ring reader's worst lag with
//! the ring size it implies at the measured record rate.

use std::{
    fs,
    time::{Duration, Instant},
};

use slowscan_testkit::procfs;
use slowscan_tests::{
    Netns,
    flood::{FLOOD_DST6, Flood, scanner_and_benign, start_sensor, veth_queues},
    lab::release_slowscan,
    unique,
};

const FLOOD: Duration = Duration::from_secs(60);
/// When the scanner and the benign client send, after the flood started.
const INSIDE: Duration = Duration::from_secs(10);
const TIMEOUT_S: u64 = 60;
/// Bytes a record takes in the ring: 56 + the ring's 8-byte header.
const RING_RECORD: f64 = 64.0;

fn main() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("flood bench: needs root (namespaces, XDP, AF_PACKET); skipped");
        return;
    }
    let bin = release_slowscan("flood bench");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (tx, rx) = (Netns::new("ssft"), Netns::new("ssfr"));
    let (tx_if, rx_if) = veth_queues(&tx, &rx, cpus);
    let dir = std::env::temp_dir().join(unique("slowscan-flood-"));
    fs::create_dir_all(&dir).unwrap();
    let sensor = start_sensor(
        &rx,
        &bin,
        &rx_if,
        &dir,
        TIMEOUT_S,
        slowscan_common::PENDING_MAX,
    );
    let pid = sensor.pid();
    eprintln!(
        "flood bench: {cpus} sender thread(s) for {} s; daemon {}",
        FLOOD.as_secs(),
        bin.display()
    );

    let (rx0, cpu0, t0) = (
        rx.rx_packets(&rx_if),
        procfs::cpu_ticks(pid),
        Instant::now(),
    );
    let flood = Flood::start(&tx, &tx_if, FLOOD_DST6, cpus, None);
    std::thread::sleep(INSIDE);
    // A handshake completing within a second (the LRU rule: C / R seconds),
    // sent from CPU 0 like the first sender's flood: the kernel's LRU only
    // moves a CPU's newest entries on with that CPU's own inserts.
    slowscan_testkit::inject::pin_to_cpu(0);
    scanner_and_benign(&tx, &tx_if, Duration::from_secs(1));
    let probed = Instant::now();
    std::thread::sleep(FLOOD.saturating_sub(t0.elapsed()));
    let sent = flood.sent();
    drop(flood);
    let secs = t0.elapsed().as_secs_f64();
    let (rx1, cpu1) = (rx.rx_packets(&rx_if), procfs::cpu_ticks(pid));
    // The scanner's attempts fail at their deadline; then a sweep.
    std::thread::sleep((Duration::from_secs(TIMEOUT_S + 6)).saturating_sub(probed.elapsed()));
    let hwm_kib = procfs::status_kib(pid, "VmHWM");
    sensor.signal(libc::SIGTERM);
    let r = sensor
        .wait(Duration::from_secs(60))
        .expect("the sensor stops");
    assert!(r.status.success(), "{}", r.log);

    let hz = procfs::ticks_per_second();
    let cpu_pct = (cpu1 - cpu0) as f64 / hz / secs * 100.0;
    let rx_fps = (rx1 - rx0) as f64 / secs;
    let counter = |name: &str| r.kernel_counter(name).unwrap_or(0);
    let field = |line: &str, name: &str| -> f64 {
        r.log
            .lines()
            .find(|l| l.trim_start().starts_with(line))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            })
            .unwrap_or(f64::NAN)
    };
    let lag_ms = field("sensor:", "reader_lag_max_ms");
    let attempts = counter("attempts_emitted");
    let record_rate = attempts as f64 / secs;
    let ring_needed = record_rate * RING_RECORD * lag_ms / 1e3;
    let sources: Vec<String> = r
        .alerts
        .iter()
        .map(|a| a["source"]["ip"].as_str().unwrap_or("").to_string())
        .collect();
    let scanner_found = sources.iter().any(|s| s == "198.51.100.66");
    let benign_quiet = !sources.iter().any(|s| s == "198.51.100.20");
    let lost = counter("records_lost");
    let met = |ok: bool| if ok { "met" } else { "missed" };

    println!("## SYN flood (`tests/benches/flood.rs`)\n");
    println!(
        "{cpus} AF_PACKET sender thread(s), unthrottled, {:.0} s; spoofed IPv6 SYNs from random sources in \
         2001:db8::/32; `slowscan run --mirror --detector 1h:9` (default 60 s handshake timeout). Inside: a \
         slow scanner (15 failed pairs) and a benign client (30 handshakes, each ACK 1 s after its SYN).\n",
        secs
    );
    println!("| measure | figure | target |");
    println!("|---|---|---|");
    println!(
        "| frames/s received (sender's ceiling with the sensor attached) | {} | |",
        thousands(rx_fps)
    );
    println!("| frames sent | {} | |", thousands(sent as f64));
    println!(
        "| records lost (ring full) | {lost} | 0: {} |",
        met(lost == 0)
    );
    println!(
        "| attempts the kernel table forgot (LRU) | {} | counted |",
        thousands(counter("pending_forgotten") as f64)
    );
    println!(
        "| attempts decided Failed early at the engine's cap | {} | counted |",
        thousands(field("engine:", "evicted_pending"))
    );
    println!(
        "| scanner found | {scanner_found} | yes: {} |",
        met(scanner_found)
    );
    println!(
        "| benign client quiet | {benign_quiet} | yes: {} |",
        met(benign_quiet)
    );
    println!("| alerts | {} ({}) | |", sources.len(), sources.join(", "));
    println!("| daemon CPU (% of one core, all threads) | {cpu_pct:.1} | |");
    println!(
        "| daemon peak RSS (VmHWM) | {:.1} MiB | ≤ 1024 MiB: {} |",
        hwm_kib as f64 / 1024.0,
        met(hwm_kib <= 1 << 20)
    );
    println!("| ring reader's worst lag | {lag_ms:.1} ms | |");
    println!("| records/s into the ring | {} | |", thousands(record_rate));
    println!(
        "| ring bytes the worst lag needs at that rate | {:.0} KiB (the ring: 16 MiB, {:.0}×) | |",
        ring_needed / 1024.0,
        16.0 * 1024.0 * 1024.0 / ring_needed
    );
    let _ = fs::remove_dir_all(&dir);
}

fn thousands(x: f64) -> String {
    let s = format!("{x:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
