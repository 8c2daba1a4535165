//! The SYN-flood scene of the flood test (`tests/tests/e2e_flood.rs`) and
//! benchmark (`tests/benches/flood.rs`): a `slowscan run --mirror` watching
//! one end of a veth pair, a flood sent into the other (the kit's
//! `inject::Flood`), and inside it a slow scanner and a benign client.
//! The senders are the test kit's, re-exported here.

use std::{os::fd::OwnedFd, path::Path};

use slowscan_common::tcp;
use slowscan_testkit::{
    Netns,
    frames::{Tcp, handshake, tcp_frame},
};
pub use slowscan_testkit::{
    inject::{Flood, raw_socket, send},
    veth_queues,
};

use crate::lab::Sensor;

/// The slow scanner: 15 failed pairs, above the detector's threshold of 9.
pub const SCANNER: [u8; 4] = [198, 51, 100, 66];
/// The benign client: 30 completed handshakes to distinct ports.
pub const BENIGN: [u8; 4] = [198, 51, 100, 20];
pub const TARGET: [u8; 4] = [198, 51, 100, 2];
/// Where the flood's spoofed SYNs go.
pub const FLOOD_DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];

/// `bin run --mirror --detector 1h:9` on `iface` in `ns`, alerts and log in
/// `dir`, with the handshake timeout `timeout_s`.
pub fn start_sensor(
    ns: &Netns,
    bin: &Path,
    iface: &str,
    dir: &Path,
    timeout_s: u64,
    pending_max: u32,
) -> Sensor {
    let alerts = dir.join("alerts.jsonl");
    let timeout = timeout_s.to_string();
    let pending_max = pending_max.to_string();
    Sensor::start_in(
        ns,
        bin,
        &[
            "run",
            "--kernel-pending-max",
            &pending_max,
            "--iface",
            iface,
            "--mirror",
            "--detector",
            "1h:9",
            "--handshake-timeout",
            &timeout,
            "--metrics",
            "off",
            "--alerts",
            alerts.to_str().unwrap(),
        ],
        alerts.clone(),
        dir.join("sensor.log"),
        "detecting on",
    )
    .expect("starting slowscan run")
}

/// Inside the flood, from `ns` on `ifname`: the benign client's 30
/// handshakes — the SYNs, then `ack_delay` later the ACKs of S + 1 (the
/// handshake time the LRU rule promises to keep: C / R seconds) — then the
/// scanner's probes.
pub fn scanner_and_benign(ns: &Netns, ifname: &str, ack_delay: std::time::Duration) {
    let ifname = ifname.to_string();
    let fd = ns.run(move || raw_socket(&ifname));
    let handshakes: Vec<_> = (0..30u16)
        .map(|i| {
            handshake(
                BENIGN,
                TARGET,
                50_000 + i,
                2_000 + i,
                0x7000_0000 + u32::from(i),
            )
        })
        .collect();
    for [syn, _] in &handshakes {
        send(&fd, syn);
    }
    std::thread::sleep(ack_delay);
    for [_, ack] in &handshakes {
        send(&fd, ack);
    }
    probe(&fd, SCANNER, TARGET, 1..=15);
}

/// Failed attempts (SYNs never followed up) from `src` port 41000 to each of
/// `dst`'s `ports`, sequence number 0x1000 + the port.
pub fn probe(fd: &OwnedFd, src: [u8; 4], dst: [u8; 4], ports: impl IntoIterator<Item = u16>) {
    for p in ports {
        let syn = Tcp::new(tcp::SYN, 0x1000 + u32::from(p)).ports(41_000, p);
        send(fd, &tcp_frame(src, dst, &syn));
    }
}
