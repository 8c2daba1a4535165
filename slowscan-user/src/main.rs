//! `slowscan`: slow TCP SYN scan detection (METHOD.md) — live on an interface
//! with XDP, or offline over capture files.

mod cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cmd::init_logging();
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One clear line (with its causes) and a non-zero exit.
            eprintln!("slowscan: error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
