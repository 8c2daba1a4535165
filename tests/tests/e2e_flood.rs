//! End to end under a SYN flood (root; a failure under `CI=true`): spoofed
//! IPv6 SYNs from random sources in 2001:db8::/32 at a rate that overflows
//! the kernel's LRU pending table within the handshake timeout, injected into
//! a veth pair whose other end a `slowscan run --mirror` watches. Inside the
//! flood, a slow scanner (15 failed pairs, threshold 9) and a benign client
//! (30 completed handshakes to distinct ports). The outcomes, not the times:
//! no record lost, attempts forgotten counted, the scanner alerts, the
//! benign client does not. (The figures at the sender's ceiling are the
//! flood benchmark's: `tests/benches/flood.rs`.)

use std::{fs, time::Duration};

use slowscan_tests::{
    VethLab,
    flood::{FLOOD_DST6, Flood, scanner_and_benign, start_sensor},
    privileged, slowscan_bin, tools_present, unique,
};

/// New attempts per second: with the 5 s handshake timeout below, 400,000
/// would be pending, more than the kernel table holds (PENDING_CAP), so the
/// LRU must give way.
const RATE: u64 = 80_000;
const PENDING_CAP: u32 = 131_072;
/// The benign client's ACKs come this long after their SYNs: within the
/// 1.6 s (PENDING_CAP / RATE) an entry lasts, so they must be recognised.
const ACK_DELAY: Duration = Duration::from_millis(800);
const TIMEOUT_S: u64 = 5;

#[test]
fn a_scanner_inside_a_syn_flood_is_found_and_nothing_is_lost() {
    let name = "a_scanner_inside_a_syn_flood_is_found_and_nothing_is_lost";
    if !privileged(name) || !tools_present(name, &["nsenter"]) {
        return;
    }
    let lab = VethLab::new();
    let dir = std::env::temp_dir().join(unique("ssflood"));
    fs::create_dir_all(&dir).unwrap();
    let sensor = start_sensor(
        &lab.b,
        &slowscan_bin(),
        &lab.if_b,
        &dir,
        TIMEOUT_S,
        PENDING_CAP,
    );
    // The flood and the benign client on one CPU: the kernel's LRU keeps
    // each CPU's newest entries on a per-CPU list that only that CPU's
    // inserts move on, so a client on an idle CPU would be kept however long
    // the flood, and the test could not fail.
    slowscan_testkit::inject::pin_to_cpu(0);
    let flood = Flood::start(&lab.a, &lab.if_a, FLOOD_DST6, 1, Some(RATE));
    std::thread::sleep(Duration::from_secs(3));
    scanner_and_benign(&lab.a, &lab.if_a, ACK_DELAY);
    std::thread::sleep(Duration::from_secs(4));
    let sent = flood.sent();
    drop(flood);
    // Every attempt decided (the timeout), and a sweep of the kernel table.
    std::thread::sleep(Duration::from_secs(TIMEOUT_S + 3));
    sensor.signal(libc::SIGTERM);
    let r = sensor.wait(Duration::from_secs(30)).unwrap();
    let ctx = format!("flood frames sent: {sent}\n{}", r.log);
    assert!(r.status.success(), "{ctx}");
    assert_eq!(r.kernel_counter("records_lost"), Some(0), "{ctx}");
    assert_eq!(r.kernel_counter("ring_full"), Some(0), "{ctx}");
    assert!(
        r.kernel_counter("pending_forgotten").unwrap_or(0) > 0,
        "the flood overflowed the table: forgotten attempts must be counted; {ctx}"
    );
    let sources: Vec<&str> = r
        .alerts
        .iter()
        .map(|a| a["source"]["ip"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        sources,
        ["198.51.100.66"],
        "exactly the scanner alerts; {ctx}"
    );
    // The first crossing: 10 failed pairs > 9.
    assert_eq!(r.alerts[0]["slowscan"]["failed_pairs"], 10, "{ctx}");
    let established: u64 = r
        .log
        .lines()
        .find(|l| l.trim_start().starts_with("engine:"))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("established=")?.parse().ok())
        })
        .unwrap_or(0);
    assert!(
        established >= 30,
        "the benign handshakes were recognised; {ctx}"
    );
    fs::remove_dir_all(&dir).unwrap();
}
