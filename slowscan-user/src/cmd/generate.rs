//! Hidden commands for packaging (`cargo xtask package`): shell completions
//! and man pages generated from the clap definitions, so they never drift
//! from the options. Also the version string with the git commit.
use std::{io, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// `slowscan --version`: the crate version and the commit it was built from
/// (`unknown` outside a git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SLOWSCAN_GIT_COMMIT"),
    ")"
);

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Args)]
pub struct ManpagesArgs {
    /// Directory to write slowscan.1 and one page per command (slowscan-run.1 …).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

fn command() -> clap::Command {
    super::Cli::command()
}

/// Completions for `shell` on stdout.
pub fn completions(a: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = command();
    clap_complete::generate(a.shell, &mut cmd, "slowscan", &mut io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Man pages (roff) into a directory: slowscan.1 and slowscan-COMMAND.1.
pub fn manpages(a: ManpagesArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("creating the directory {}", a.dir.display()))?;
    clap_mangen::generate_to(command(), &a.dir)
        .with_context(|| format!("writing man pages to {}", a.dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::Parser;

    use super::*;

    /// The packaged example configuration (`/etc/slowscan/slowscan.toml.example`).
    const EXAMPLE: &str = include_str!("../../../contrib/debian/slowscan.toml.example");

    fn run_options() -> Vec<clap::Arg> {
        let cmd = command();
        let run = cmd.find_subcommand("run").expect("run subcommand").clone();
        run.get_arguments()
            .filter(|a| a.get_long().is_some_and(|l| l != "help" && l != "config"))
            .cloned()
            .collect()
    }

    /// `key = value` lines of the example, commented out (`# key = …`) or not.
    fn example_settings() -> Vec<(String, toml::Value, bool)> {
        let mut out = Vec::new();
        for line in EXAMPLE.lines() {
            let (active, body) = match line.strip_prefix("# ") {
                Some(rest) => (false, rest),
                None => (true, line),
            };
            let Some((key, _)) = body.split_once(" = ") else {
                continue;
            };
            if !key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                continue;
            }
            let table: toml::Table = body
                .parse()
                .unwrap_or_else(|e| panic!("example line `{line}` is not TOML: {e}"));
            let (k, v) = table.into_iter().next().unwrap();
            out.push((k, v, active));
        }
        out
    }

    #[test]
    fn version_names_the_commit() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{VERSION}");
        let commit = env!("SLOWSCAN_GIT_COMMIT");
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{commit}"
        );
        assert!(VERSION.contains(&format!("(commit {commit})")), "{VERSION}");
    }

    #[test]
    fn example_config_lists_every_run_option_with_a_valid_value() {
        let settings = example_settings();
        let keys: BTreeSet<&str> = settings.iter().map(|(k, ..)| k.as_str()).collect();
        let options = run_options();
        let longs: BTreeSet<&str> = options.iter().filter_map(|a| a.get_long()).collect();
        // A `--no-…` flag (or `--service-map`, the negation of
        // `--no-service-map`) undoes its pair: the file shows the pair.
        let negation = |l: &&str| {
            l.strip_prefix("no-").is_some_and(|p| keys.contains(p))
                || keys.contains(format!("no-{l}").as_str())
        };
        let missing: Vec<_> = longs.difference(&keys).filter(|l| !negation(l)).collect();
        assert!(
            missing.is_empty(),
            "`slowscan run` options missing from contrib/debian/slowscan.toml.example: {missing:?}"
        );
        let unknown: Vec<_> = keys.difference(&longs).collect();
        assert!(
            unknown.is_empty(),
            "not `slowscan run` options: {unknown:?}"
        );
        // The active settings parse as one config file.
        let active: String = EXAMPLE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let active: toml::Table = active.parse().expect("the example parses as TOML");
        assert_eq!(
            active.get("iface").and_then(|v| v.as_str()),
            Some("eth0"),
            "the example watches eth0"
        );
        // Each value, as the flag it stands for, is accepted by clap.
        for (key, value, _) in &settings {
            let arg = options.iter().find(|a| a.get_long() == Some(key)).unwrap();
            let mut argv: Vec<String> = vec!["slowscan".into(), "run".into()];
            if key != "iface" {
                argv.push("--iface=eth0".into());
            }
            if key == "learn-out" {
                argv.push("--learn-for=9h".into());
            }
            if key == "state-reset" || key == "checkpoint-every" {
                argv.push("--state=/var/lib/slowscan/eth0.state".into());
            }
            match value {
                toml::Value::Boolean(b) => {
                    assert!(!arg.get_action().takes_values(), "{key} takes a value");
                    if *b {
                        argv.push(format!("--{key}"));
                    }
                }
                toml::Value::Array(items) if key == "detector" => {
                    for v in items {
                        argv.push(format!("--{key}={}", v.as_str().unwrap()));
                    }
                }
                toml::Value::Array(items) => {
                    let parts: Vec<String> = items.iter().map(|v| v.to_string()).collect();
                    argv.push(format!("--{key}={}", parts.join(",")));
                }
                toml::Value::String(s) => argv.push(format!("--{key}={s}")),
                other => argv.push(format!("--{key}={other}")),
            }
            if let Err(e) = super::super::Cli::try_parse_from(&argv) {
                panic!("example `{key} = {value}` is refused: {e}");
            }
        }
    }

    #[test]
    fn completions_and_man_pages_cover_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut cmd = command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "slowscan", &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["replay", "learn", "whitelist", "detector", "iface"] {
                assert!(text.contains(word), "{shell}: no {word}");
            }
        }
        let dir = std::env::temp_dir().join(format!("slowscan-man-{}", std::process::id()));
        manpages(ManpagesArgs { dir: dir.clone() }).unwrap();
        let run = std::fs::read_to_string(dir.join("slowscan-run.1")).unwrap();
        assert!(
            run.starts_with(".ie"),
            "not roff: {}",
            &run[..40.min(run.len())]
        );
        for long in run_options().iter().filter_map(|a| a.get_long()) {
            assert!(
                run.contains(&long.replace('-', "\\-")),
                "slowscan-run.1: no --{long}"
            );
        }
        let top = std::fs::read_to_string(dir.join("slowscan.1")).unwrap();
        assert!(
            top.contains(env!("SLOWSCAN_GIT_COMMIT")),
            "no version in slowscan.1"
        );
        // The hidden packaging commands get no page.
        assert!(!dir.join("slowscan-completions.1").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
