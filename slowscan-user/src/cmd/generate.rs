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
    // What the options alone do not say: signals, files, the config file.
    let run = a.dir.join("slowscan-run.1");
    let mut page =
        std::fs::read_to_string(&run).with_context(|| format!("reading {}", run.display()))?;
    page.push_str(&run_sections());
    std::fs::write(&run, page).with_context(|| format!("writing {}", run.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Text as roff: backslashes and hyphens escaped, no line starting a request.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|l| {
            if l.starts_with(['.', '\'']) {
                format!("\\&{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// `.TP` items: (tag, text).
fn items(list: &[(&str, &str)]) -> String {
    list.iter()
        .map(|(tag, text)| format!(".TP\n\\fB{}\\fR\n{}", roff(tag).trim_end(), roff(text)))
        .collect()
}

const SIGNALS: &[(&str, &str)] = &[
    (
        "SIGHUP",
        "Reload. With --config, the file is read again and compared with the running options key \
         by key: changed detection options (detector, window, threshold, window-mode, \
         handshake-timeout, the service map and the memory caps), whitelist, ignore-sources, \
         alerts, summary-every and checkpoint-every are applied and logged (the engine's state \
         carries over); any other changed key is logged as \"restart needed for: KEY (OLD -> NEW)\" \
         and keeps its running value. Then the alerts file is reopened (logrotate) and the \
         whitelist and ignore files are reread into the kernel maps.",
    ),
    (
        "SIGUSR1",
        "Checkpoint the engine state now (with --state) and log a summary line.",
    ),
    (
        "SIGTERM, SIGINT, SIGQUIT and the other terminating signals",
        "Clean stop: the ring buffer is drained, the last alerts written, the state checkpointed, \
         the program detached, the pins and runtime file removed, a summary printed; exit status 0.",
    ),
    (
        "SIGKILL",
        "The kernel detaches the program with the process; the next start replaces the stale pins \
         and runtime file.",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "/etc/slowscan/IFACE.toml",
        "Configuration of the slowscan@IFACE unit (see CONFIGURATION FILE); start from \
         /etc/slowscan/slowscan.toml.example.",
    ),
    (
        "/var/log/slowscan/IFACE.alerts.jsonl",
        "Alerts, one JSON line each (0640 root:adm in a 0750 root:adm directory); rotated by \
         /etc/logrotate.d/slowscan.",
    ),
    (
        "/usr/share/doc/slowscan/alert.schema.json",
        "JSON Schema of an alert line.",
    ),
    (
        "/var/lib/slowscan/IFACE.state",
        "Engine state (--state), checkpointed atomically. dpkg --purge removes /var/lib/slowscan: \
         keep learned whitelists in /etc/slowscan (--learn-out).",
    ),
    (
        "/run/slowscan/netN/IFACE.json, /run/slowscan/netN/IFACE.sock",
        "A running sensor's runtime file (its PID and whitelist and ignore files) and control \
         socket (slowscan status, slowscan explain); netN is its network namespace.",
    ),
    (
        "/sys/fs/bpf/slowscan/netN/IFACE/",
        "Its pinned maps (slowscan whitelist, slowscan ignore).",
    ),
];

/// SIGNALS, FILES and CONFIGURATION FILE (every `run` option as a key)
/// for slowscan-run(1).
fn run_sections() -> String {
    let mut out = String::from(".SH SIGNALS\n");
    out.push_str(&items(SIGNALS));
    out.push_str(".SH FILES\n");
    out.push_str(&items(FILES));
    out.push_str(".SH \"CONFIGURATION FILE\"\n");
    out.push_str(&roff(
        "--config FILE reads a TOML file whose keys are the long option names without the \
         leading dashes (_ may stand for -). Flags take true or false; durations and windows \
         numbers or strings (\"5m\"); lists TOML arrays or comma-separated strings. Options \
         given on the command line override the file. An unknown key or a bad value stops the \
         start, naming the file and the key. The keys:",
    ));
    let cmd = command();
    let run = cmd.find_subcommand("run").expect("run subcommand");
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long().filter(|l| !["help", "config"].contains(l)) else {
            continue;
        };
        let value = if arg.get_action().takes_values() {
            arg.get_value_names()
                .and_then(|v| v.first())
                .map_or("VALUE".to_string(), |v| v.to_string())
        } else {
            "true|false".into()
        };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let help = if defaults.is_empty() {
            help
        } else {
            format!("{help} [default: {}]", defaults.join(","))
        };
        out.push_str(&items(&[(&format!("{long} = {value}"), &help)]));
    }
    out
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
            if key == "fleet-site" {
                argv.push("--fleet=redis://127.0.0.1:7000".into());
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
        // Signals, files and the config file's keys.
        for section in [".SH SIGNALS", ".SH FILES", ".SH \"CONFIGURATION FILE\""] {
            assert!(run.contains(section), "slowscan-run.1: no {section}");
        }
        let config = &run[run.find("CONFIGURATION FILE").unwrap()..];
        for long in run_options().iter().filter_map(|a| a.get_long()) {
            let key = format!("\\fB{} = ", long.replace('-', "\\-"));
            assert!(config.contains(&key), "slowscan-run.1: no key {long}");
        }
        assert!(run.contains("SIGHUP") && run.contains("alert.schema.json"));
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
