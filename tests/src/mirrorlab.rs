//! The pieces of the mirror-port daemon tests (`e2e_daemon`,
//! `e2e_operator_daemon`): a scanner's frames injected at one end of the
//! lab's veth, the sensor's alert lines read back, the CLI run in the
//! sensor's network namespace.

use std::{fs, os::fd::OwnedFd, path::Path, process::Command, time::Duration};

use crate::{
    Netns, VethLab,
    flood::{self, raw_socket},
    slowscan_bin,
};

pub const SCANNER: [u8; 4] = [198, 51, 100, 66];
pub const TARGET: [u8; 4] = [198, 51, 100, 2];
/// How long a test waits for what a sensor does.
pub const WAIT: Duration = Duration::from_secs(15);

/// Failed attempts (SYNs never followed up) from the scanner to `ports`.
pub fn probe(fd: &OwnedFd, ports: std::ops::RangeInclusive<u16>) {
    flood::probe(fd, SCANNER, TARGET, ports);
}

/// A raw socket on the lab's injecting end.
pub fn injector(lab: &VethLab) -> OwnedFd {
    let ifname = lab.if_a.clone();
    lab.a.run(move || raw_socket(&ifname))
}

/// The alert lines written so far.
pub fn lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// At least `n` alert lines, within [`WAIT`].
pub fn wait_lines(path: &Path, n: usize) -> Vec<serde_json::Value> {
    let end = std::time::Instant::now() + WAIT;
    loop {
        let v = lines(path);
        if v.len() >= n {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "{} has {} alert lines, not {n}",
            path.display(),
            v.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `slowscan args…` in `ns`'s network namespace, to its end.
pub fn cli(ns: &Netns, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", ns.name))
        .arg(slowscan_bin())
        .args(args)
        .output()
        .unwrap()
}
