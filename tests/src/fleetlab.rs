//! Segments for the fleet: each a veth whose sensor end lives in a shared
//! namespace (beside the Redis Cluster the sensors use), the other end in a
//! namespace of its own from which frames are injected. Used by
//! `tests/tests/e2e_fleet.rs` and `cargo xtask demo --fleet`.

use std::os::fd::OwnedFd;

use slowscan_common::tcp;

use slowscan_testkit::frames::{Tcp, tcp_frame};

use crate::{
    Netns,
    flood::{raw_socket, send},
    sh, unique,
};

pub struct Segment {
    _inject: Netns,
    /// The interface a sensor watches (in the shared namespace).
    pub sensor_if: String,
    /// A raw socket on the injecting end.
    pub fd: OwnedFd,
}

impl Segment {
    pub fn new(home: &Netns) -> Segment {
        let inject = Netns::new("ssfi");
        let sensor_if = unique("ssfs");
        let inj_if = unique("ssfj");
        sh(&[
            "ip",
            "link",
            "add",
            &sensor_if,
            "netns",
            &home.name,
            "type",
            "veth",
            "peer",
            "name",
            &inj_if,
            "netns",
            &inject.name,
        ]);
        home.exec(&["ip", "link", "set", &sensor_if, "up"]);
        inject.exec(&["ip", "link", "set", &inj_if, "up"]);
        let ifname = inj_if.clone();
        let fd = inject.run(move || raw_socket(&ifname));
        Segment {
            _inject: inject,
            sensor_if,
            fd,
        }
    }

    /// A SYN never followed up: a failed attempt from `src` to 203.0.113.`host`:445.
    pub fn probe(&self, src: [u8; 4], host: u8) {
        let syn = Tcp::new(tcp::SYN, 0x1000 + u32::from(host)).ports(41_000, 445);
        send(&self.fd, &tcp_frame(src, [203, 0, 113, host], &syn));
    }
}
