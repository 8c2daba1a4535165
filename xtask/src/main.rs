//! Project tasks: `cargo xtask setup | build-ebpf | test | bench | demo | package`.
//!
//! Every task installs what it needs first (idempotently), so the README's
//! commands work on a fresh Debian machine as root.

mod demo;
mod package;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "slowscan project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the toolchain: apt packages, nightly rust-src, bpf-linker (idempotent).
    Setup,
    /// Build the XDP program (release, bpfel) that the userspace binary embeds.
    BuildEbpf,
    /// Setup, build, package, and run every test, privileged ones included
    /// (the package is installed and checked by tests/tests/package.rs).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks and print their figures.
    Bench {
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Lab demo: sensor on a mirror port, benign traffic, real nmap slow scans (root, < 3 min).
    Demo {
        /// Also save what the sensor saw as a pcap (for `slowscan replay`).
        #[arg(long, value_name = "FILE", conflicts_with = "fleet")]
        keep_capture: Option<std::path::PathBuf>,
        /// The fleet instead: two sensors share one Redis Cluster, and a scan
        /// split over their two segments alerts once (about 25 s).
        #[arg(long)]
        fleet: bool,
    },
    /// Debian package (target/debian/slowscan_VERSION-1_ARCH.deb): the release
    /// binary with the XDP object, a systemd unit per interface, example
    /// config, logrotate, man pages, completions.
    Package,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::BuildEbpf => {
            setup::run()?;
            build_ebpf()
        }
        Task::Test { args } => {
            setup::run()?;
            build_ebpf()?;
            test(&args)
        }
        Task::Demo {
            keep_capture,
            fleet,
        } => {
            let mut args: Vec<String> = Vec::new();
            if fleet {
                args.push("--fleet".into());
            }
            if let Some(p) = keep_capture {
                args.push("--keep-capture".into());
                args.push(std::path::absolute(p)?.display().to_string());
            }
            demo::demo(&args)
        }
        Task::Package => {
            setup::run()?;
            build_ebpf()?;
            package::package().map(|_| ())
        }
        Task::Bench { args } => {
            setup::run()?;
            build_ebpf()?;
            bench(&args)
        }
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo` from the host toolchain, without variables of the cargo that runs
/// xtask leaking into it.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn build_ebpf() -> anyhow::Result<()> {
    eprintln!("xtask: building the XDP program (nightly, bpfel-unknown-none, release)");
    let mut c = Command::new("rustup");
    c.args([
        "run",
        "nightly",
        "cargo",
        "build",
        "--release",
        "--target",
        "bpfel-unknown-none",
    ])
    .args(["-Z", "build-std=core"])
    .current_dir(root().join("slowscan-ebpf"))
    .env_remove("RUSTC")
    .env_remove("RUSTC_WORKSPACE_WRAPPER")
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("CARGO_TARGET_DIR")
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("CARGO");
    run(&mut c)?;
    let obj = root().join("slowscan-ebpf/target/bpfel-unknown-none/release/slowscan");
    if !obj.exists() {
        bail!("the build finished but {} is missing", obj.display());
    }
    eprintln!("xtask: XDP object at {}", obj.display());
    Ok(())
}

fn test(args: &[String]) -> anyhow::Result<()> {
    // The privileged tests need root; say so up front rather than fail later.
    if !is_root() {
        eprintln!(
            "xtask: not root: tests that need BPF or namespaces will skip (they fail under CI=true)"
        );
    }
    run(cargo().args(["build", "--workspace", "--all-targets"]))?;
    let deb = package::package()?;
    run(cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("SLOWSCAN_DEB", &deb)
        .arg("--")
        .args(args))
}

fn bench(args: &[String]) -> anyhow::Result<()> {
    run(cargo().args(["bench", "--workspace"]).arg("--").args(args))
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
