//! `slowscan`: slow TCP SYN scan detection (docs/method.md) — live on an interface
//! with XDP, or offline over capture files.

mod cmd;

use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    cmd::init_logging();
    let matches = cmd::Cli::command().get_matches();
    let cli = cmd::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cmd::run(cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            // One clear line (with its causes) and a non-zero exit.
            eprintln!("slowscan: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
