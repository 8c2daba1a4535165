//! Segments for the fleet: each a veth whose sensor end lives in a shared
//! namespace (beside the Redis Cluster the sensors use), the other end in a
//! namespace of its own from which frames are injected. Used by
//! `tests/tests/e2e_fleet.rs` and `cargo xtask demo --fleet`.

use std::{os::fd::OwnedFd, path::Path};

use slowscan_common::tcp;

use slowscan_testkit::frames::{Tcp, tcp_frame};

use crate::{
    Netns,
    flood::{raw_socket, send},
    lab::Sensor,
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

    /// `slowscan run` on this segment in `home`, named `name`, in the fleet
    /// at `url` (detector 1h:8, mirror mode, `--metrics metrics`: an
    /// address in `home`, or `off`), its alerts in `dir/NAME.jsonl` and its
    /// log beside them.
    #[allow(clippy::too_many_arguments)]
    pub fn start_sensor(
        &self,
        home: &Netns,
        slowscan: &Path,
        name: &str,
        url: &str,
        handshake_timeout: &str,
        metrics: &str,
        dir: &Path,
    ) -> anyhow::Result<Sensor> {
        let alerts = dir.join(format!("{name}.jsonl"));
        #[rustfmt::skip]
        let args = [
            "run", "--iface", &self.sensor_if, "--mirror", "--metrics", metrics,
            "--detector", "1h:8", "--handshake-timeout", handshake_timeout,
            "--sensor-name", name, "--fleet", url, "--alerts", alerts.to_str().unwrap(),
        ];
        Sensor::start_in(
            home,
            slowscan,
            &args,
            alerts.clone(),
            dir.join(format!("{name}.log")),
            "detecting on",
        )
    }

    /// A SYN never followed up: a failed attempt from `src` to 203.0.113.`host`:445.
    pub fn probe(&self, src: [u8; 4], host: u8) {
        let syn = Tcp::new(tcp::SYN, 0x1000 + u32::from(host)).ports(41_000, 445);
        send(&self.fd, &tcp_frame(src, [203, 0, 113, host], &syn));
    }
}
