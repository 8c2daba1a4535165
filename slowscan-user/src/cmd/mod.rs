//! Command-line front end. Logs go to stderr; alerts never do.

mod collect;
mod config;
#[cfg(test)]
mod drift;
mod flow_replay;
mod follow_zeek;
mod generate;
mod ignore;
mod learn;
mod listed;
mod live;
mod options;
mod plots;
mod replay;
mod replay_zeek;
mod run;
mod status;
mod whitelist;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "slowscan",
    version = generate::VERSION,
    about = "Detects slow TCP SYN scans (NICT 2014 method) with XDP",
    after_help = "The detection method, rule by rule: docs/method.md (R1–R8); detectors: docs/detectors.md."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Live sensor: XDP on an interface, detection, alerts (JSON lines), metrics.
    Run(Box<run::Args>),
    /// A running sensor's state: detectors and their top sources, pending
    /// attempts, live services, kernel counters, records lost, checkpoint age.
    Status(status::StatusArgs),
    /// What a running sensor holds about one source: its count per detector
    /// and its failed pairs with their times.
    Explain(status::ExplainArgs),
    /// Change a running sensor's kernel whitelist (R4.4) through its pinned maps. Items are
    /// destinations (198.51.100.7:80, [2001:db8::7]:443) or rules: a prefix, a port range,
    /// every port (198.51.100.0/24:80, [2001:db8::/32]:1000-2000, 198.51.100.7:*).
    Whitelist(whitelist::Args),
    /// Change a running sensor's kernel ignore list of sources (R4.6) through its pinned maps.
    /// Items are CIDR prefixes or addresses (198.51.100.0/24, 2001:db8::/32, 203.0.113.9).
    Ignore(ignore::Args),
    /// NetFlow v5/v9 and IPFIX collector: detection over exporters' flow
    /// records (docs/flows.md), with alerts, state and metrics.
    Collect(Box<collect::Args>),
    /// Follows a live Zeek conn.log across Zeek's rotations: detection over
    /// its lines (docs/flows.md), with alerts, state and metrics.
    FollowZeek(Box<follow_zeek::Args>),
    /// Offline detection over capture files (pcap, pcapng) or Zeek conn logs, gzipped or not:
    /// alerts, report, sweep.
    Replay(Box<replay::Args>),
    /// Learn a whitelist (R4.1–R4.3) from capture files.
    Learn(Box<learn::Args>),
    /// Shell completions from these definitions (for packaging).
    #[command(hide = true)]
    Completions(generate::CompletionsArgs),
    /// Man pages from these definitions (for packaging).
    #[command(hide = true)]
    Manpages(generate::ManpagesArgs),
}

/// Runs the command; `matches` (the whole command line's) tell `run` and
/// `replay` which options were given as flags, to override a `--config` file.
pub fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => run::run(*a, matches.subcommand_matches("run")),
        Command::Status(a) => status::status(a),
        Command::Explain(a) => status::explain(a),
        Command::Whitelist(a) => whitelist::run(a),
        Command::Ignore(a) => ignore::run(a),
        Command::Collect(a) => collect::run(*a),
        Command::FollowZeek(a) => follow_zeek::run(*a),
        Command::Replay(a) => replay::run(*a, matches.subcommand_matches("replay")),
        Command::Learn(a) => learn::run(*a),
        Command::Completions(a) => generate::completions(a),
        Command::Manpages(a) => generate::manpages(a),
    }
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLOWSCAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in log files or journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
