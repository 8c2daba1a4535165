//! Toolchain bootstrap as ../shared/TOOLCHAIN.md describes it. Each step
//! checks before it acts, so a second run does nothing and takes seconds.
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

// `crate::run` runs a command; this module's `run` is the setup task.

/// Debian packages: LLVM 22 for bpf-linker, the lab's tools, Redis for the
/// fleet's tests and OpenSSL for its TLS (`rediss://`), flow exporters.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "iproute2",
    "nmap",
    "tcpdump",
    "python3",
    // The package and its check (tests/tests/package.rs): objcopy,
    // systemd-analyze, logrotate.
    "binutils",
    "systemd",
    "logrotate",
    // The fleet: a real Redis Cluster in the tests, and TLS for rediss://.
    "redis-server",
    "redis-tools",
    "libssl-dev",
    "pkg-config",
    "openssl",
    // Flow exports (docs/flows.md): softflowd exports NetFlow v5/v9/IPFIX from
    // captures and a lab's veth; nfdump's nfcapd reads them as a second reader.
    "softflowd",
    "nfdump",
];

pub fn run() -> anyhow::Result<()> {
    apt()?;
    nightly()?;
    bpf_linker()
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn apt() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask setup: installing {}", missing.join(" "));
    crate::run(Command::new("apt-get").arg("update").arg("-qq"))
        .context("apt-get update (needs root)")?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("apt-get install (needs root)")
}

fn nightly() -> anyhow::Result<()> {
    let has_nightly = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("nightly"))
        })
        .unwrap_or(false);
    if !has_nightly {
        // Never `rustup update`: a newer nightly could outrun the aya pins.
        eprintln!("xtask setup: installing the nightly toolchain with rust-src");
        return crate::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]));
    }
    let has_src = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("rust-src"))
        })
        .unwrap_or(false);
    if !has_src {
        eprintln!("xtask setup: adding rust-src to nightly");
        crate::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    if quiet(Command::new("bpf-linker").arg("--version")) {
        return Ok(());
    }
    eprintln!("xtask setup: building bpf-linker 0.13.0 against LLVM 22 (a few minutes, once)");
    crate::run(
        Command::new("cargo")
            .args(["install", "bpf-linker", "--version", "0.13.0"])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22")
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    if !quiet(Command::new("bpf-linker").arg("--version")) {
        bail!("bpf-linker was installed but does not run: is ~/.cargo/bin on PATH?");
    }
    Ok(())
}
