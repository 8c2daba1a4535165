//! `cargo xtask demo [--keep-capture FILE]`: installs what is missing, builds
//! the XDP program and the release binaries, then runs the lab demo
//! (`tests/src/bin/demo.rs`, lab in `tests/src/lab.rs`): namespaces on a
//! bridge, the sensor on a mirror port, benign traffic, a misconfigured
//! client and two real nmap slow scans; prints the alerts and the summary and
//! tears the lab down. `cargo xtask demo --fleet`: two sensors on two
//! segments and a real Redis Cluster; a scan split over the segments alerts
//! once, fleet-wide (docs/fleet.md).
use anyhow::{Context, bail};

use crate::{build_ebpf, cargo, run, setup};

pub fn demo(args: &[String]) -> anyhow::Result<()> {
    if !crate::is_root() {
        bail!(
            "the demo builds network namespaces and loads an XDP program: run `cargo xtask demo` as root"
        );
    }
    setup::run()?;
    build_ebpf()?;
    eprintln!("xtask: building slowscan and the demo (release)");
    run(cargo()
        .args([
            "build",
            "--release",
            "-p",
            "slowscan-user",
            "-p",
            "slowscan-tests",
        ])
        .args(["--bin", "slowscan", "--bin", "demo"]))?;
    // Ctrl-C reaches the whole process group: the demo catches it and tears
    // its lab down; xtask must outlive it to report.
    ignore_sigint();
    let status = cargo()
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "slowscan-tests",
            "--bin",
            "demo",
            "--",
        ])
        .args(args)
        .status()
        .context("starting the demo")?;
    if !status.success() {
        bail!("the demo failed ({status})");
    }
    Ok(())
}

fn ignore_sigint() {
    const SIGINT: i32 = 2;
    const SIG_IGN: usize = 1;
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe { libc_signal(SIGINT, SIG_IGN) };
}

unsafe extern "C" {
    #[link_name = "signal"]
    fn libc_signal(sig: i32, handler: usize) -> usize;
}
