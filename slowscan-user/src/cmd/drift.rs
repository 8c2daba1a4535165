//! The documentation against the binary: every TOML example parses as a
//! config file, every option table names real options with the defaults
//! `--help` gives them (and lists every option of its command), and every
//! `slowscan …` command line in a code block parses. A new option, a
//! changed default or a renamed key fails here until the docs follow.
//!
//! An option table is a Markdown table whose header starts with `option`;
//! the line before it says whose options it lists:
//! `<!-- options: slowscan run -->` (several tables of one command together
//! must list all of its options).
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use clap::{CommandFactory, Parser};

use super::Cli;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md, docs/*.md, and the files under contrib/ (name, text).
fn documents() -> Vec<(String, String)> {
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs"), root().join("contrib")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "md" || x == "toml" || x == "example")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Fenced code blocks of a Markdown text: (language, first line number, body).
fn code_blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(lang)) => open = Some((lang.trim().to_string(), i + 2, String::new())),
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// `slowscan CMD`'s command.
fn subcommand(name: &str) -> clap::Command {
    let cmd = Cli::command();
    let name = name.trim_start_matches("slowscan").trim();
    cmd.find_subcommand(name)
        .unwrap_or_else(|| panic!("no command `slowscan {name}`"))
        .clone()
}

/// What `--help` says an option's default is: clap's default values, else
/// the `[default: …]` of its help text (up to a `;`), else none. A flag
/// without a value is `off`.
fn binary_default(arg: &clap::Arg) -> Option<String> {
    if !arg.get_action().takes_values() {
        return Some("off".into());
    }
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !values.is_empty() {
        return Some(values.join(","));
    }
    let help = arg.get_long_help().or(arg.get_help())?.to_string();
    let start = help.find("[default: ")? + "[default: ".len();
    let text = &help[start..];
    let end = text.find([';', ']']).unwrap_or(text.len());
    Some(text[..end].trim().to_string())
}

/// Backticks, emphasis and escaped bars gone, spaces collapsed.
fn plain(cell: &str) -> String {
    let s = cell.replace(['`', '*'], "").replace("\\|", "|");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `--flags` a table's first cell names.
fn flags_of(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split_whitespace().next())
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_start_matches("--").to_string())
        .collect()
}

/// The cells of a Markdown table row.
fn cells(row: &str) -> Vec<String> {
    // `\|` inside a cell is a bar, not a border.
    let row = row.trim().trim_matches('|').replace("\\|", "\u{0}");
    row.split('|')
        .map(|c| c.replace('\u{0}', "\\|").trim().to_string())
        .collect()
}

/// Words that say an option has no default.
const NO_DEFAULT: &[&str] = &["none", "—", "required"];

/// `doc`, a default column's cell, states `bin` (what `--help` gives), for
/// an option alone in its row.
fn states(doc: &str, bin: Option<&str>) -> bool {
    let doc = plain(doc).to_lowercase();
    match bin {
        None => NO_DEFAULT
            .iter()
            .any(|w| doc == *w || doc.starts_with(&format!("{w} "))),
        Some(b) => {
            let b = plain(b).to_lowercase();
            // Its first words: "beside --state" for "beside --state, …".
            let head = doc.split(" (").next().unwrap_or(&doc);
            doc == b
                || doc.starts_with(&format!("{b} "))
                || doc.starts_with(&format!("{b},"))
                || (head.len() >= 6 && b.starts_with(head))
        }
    }
}

/// A command's documented options, from its tables: flag → its row.
type Documented = BTreeMap<String, BTreeSet<String>>;

#[test]
fn option_tables_name_real_options_with_the_binarys_defaults() {
    let mut documented: Documented = BTreeMap::new();
    let mut wrong = Vec::new();
    for (name, text) in documents().iter().filter(|(n, _)| n.ends_with(".md")) {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let header = cells(line);
            if !line.starts_with('|') || header.first().map(String::as_str) != Some("option") {
                continue;
            }
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- options: "))
                .and_then(|l| l.strip_suffix("-->"))
                .unwrap_or_else(|| {
                    panic!(
                        "{name}:{}: an option table without `<!-- options: slowscan CMD -->` on the line before it",
                        i + 1
                    )
                })
                .trim()
                .to_string();
            let cmd = subcommand(&marker);
            let default_col = header.iter().position(|h| h == "default");
            for (j, row) in lines[i + 2..].iter().enumerate() {
                if !row.starts_with('|') {
                    break;
                }
                let at = format!("{name}:{}", i + 3 + j);
                let c = cells(row);
                let flags = flags_of(&c[0]);
                for f in &flags {
                    let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(f)) else {
                        wrong.push(format!("{at}: `{marker} --{f}` does not exist"));
                        continue;
                    };
                    documented
                        .entry(marker.clone())
                        .or_default()
                        .insert(f.clone());
                    let (Some(k), true) = (default_col, flags.len() == 1) else {
                        continue;
                    };
                    let bin = binary_default(arg);
                    if !states(&c[k], bin.as_deref()) {
                        wrong.push(format!(
                            "{at}: `--{f}` has the default `{}` in the docs, `{}` in `{marker} --help`",
                            c[k],
                            bin.as_deref().unwrap_or("none")
                        ));
                    }
                }
            }
        }
    }
    // Every option of a documented command is in its tables (a `--no-…`
    // flag with its pair).
    for (marker, flags) in &documented {
        for arg in subcommand(marker).get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let paired = long.strip_prefix("no-").is_some_and(|p| flags.contains(p))
                || flags.contains(&format!("no-{long}"));
            if !(flags.contains(long) || paired || arg.is_hide_set() || long == "help") {
                wrong.push(format!(
                    "`{marker} --{long}` is in no option table of the docs"
                ));
            }
        }
    }
    assert!(
        documented.contains_key("slowscan run") && documented.contains_key("slowscan replay"),
        "the option tables of `slowscan run` and `slowscan replay` are gone: {documented:?}"
    );
    assert!(
        wrong.is_empty(),
        "the docs and the binary disagree:\n{}",
        wrong.join("\n")
    );
}

/// TOML in the docs (```toml blocks) and the packaged example (every line,
/// the commented ones uncommented).
fn toml_examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, text) in documents() {
        if name.ends_with(".md") {
            for (lang, line, body) in code_blocks(&text) {
                if lang == "toml" {
                    out.push((format!("{name}:{line}"), body));
                }
            }
        } else if name.ends_with(".toml") || name.ends_with(".toml.example") {
            out.push((name.clone(), text.clone()));
            let uncommented: String = text
                .lines()
                .map(|l| match l.strip_prefix("# ") {
                    Some(rest)
                        if rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                        }) =>
                    {
                        format!("{rest}\n")
                    }
                    _ => format!("{l}\n"),
                })
                .collect();
            out.push((format!("{name} (commented keys set)"), uncommented));
        }
    }
    out
}

#[test]
fn every_toml_example_is_a_valid_config_file() {
    let examples = toml_examples();
    assert!(examples.len() >= 4, "{examples:?}");
    let mut wrong = Vec::new();
    for (at, text) in &examples {
        // Unset keys that exclude each other in the packaged example:
        // `window`/`threshold` and `detector`, `learn-out` needs `learn-for`.
        for variant in config_variants(text) {
            if let Err(e) = super::run::check_config(&variant) {
                wrong.push(format!("{at}: {e:#}"));
            }
        }
    }
    // Alert files under the packaged log directory are what the logrotate
    // snippet rotates (`/var/log/slowscan/*.jsonl`).
    for (at, text) in &examples {
        let table: toml::Table = text.parse().unwrap_or_default();
        if let Some(alerts) = table.get("alerts").and_then(|v| v.as_str())
            && alerts.starts_with("/var/log/slowscan/")
            && !alerts.ends_with(".jsonl")
        {
            wrong.push(format!(
                "{at}: alerts = {alerts:?} escapes the logrotate glob *.jsonl"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Unknown keys are refused, so a misspelt example cannot pass.
    let e = super::run::check_config("iface = \"eth1\"\ncolour = \"blue\"\n").unwrap_err();
    assert!(format!("{e:#}").contains("unknown key `colour`"), "{e:#}");
}

/// A text with both `detector` and `window`/`threshold` set is checked
/// once with each side (they are alternatives, shown together).
fn config_variants(text: &str) -> Vec<String> {
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .collect();
    let has = |k: &str| keys.contains(&k);
    if !(has("detector") && (has("window") || has("threshold"))) {
        return vec![text.to_string()];
    }
    let without = |drop: &[&str]| -> String {
        text.lines()
            .filter(|l| {
                !l.split_once(" = ")
                    .is_some_and(|(k, _)| drop.contains(&k.trim()))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    };
    vec![without(&["detector"]), without(&["window", "threshold"])]
}

/// Shell words of a command line (quotes removed), up to a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// `slowscan …` command lines in the shell blocks of the docs, joined over
/// `\` continuations and cut at `|`, `&&`, `;` and redirections.
fn command_lines() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (name, text) in documents().iter().filter(|(n, _)| n.ends_with(".md")) {
        for (lang, first, body) in code_blocks(text) {
            if !matches!(lang.as_str(), "sh" | "console" | "bash" | "") {
                continue;
            }
            let mut joined: Vec<(usize, String)> = Vec::new();
            let mut cont = false;
            for (k, line) in body.lines().enumerate() {
                let l = line
                    .trim()
                    .trim_start_matches("$ ")
                    .trim_start_matches("# ");
                match (cont, joined.last_mut()) {
                    (true, Some((_, prev))) => prev.push_str(l.trim_end_matches('\\')),
                    _ => joined.push((first + k, l.trim_end_matches('\\').to_string())),
                }
                cont = l.ends_with('\\');
            }
            for (at, line) in joined {
                let words = shell_words(&line);
                for segment in words.split(|w| ["|", "&&", "||", ";"].contains(&w.as_str())) {
                    let words: Vec<String> = segment
                        .iter()
                        .take_while(|w| !w.starts_with('>') && !w.starts_with('<'))
                        .cloned()
                        .collect();
                    if words.first().map(String::as_str) == Some("slowscan") && words.len() > 1 {
                        out.push((format!("{name}:{at}"), words));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_command_line_in_the_docs_parses() {
    let lines = command_lines();
    assert!(lines.len() >= 30, "{lines:?}");
    let mut wrong = Vec::new();
    for (at, words) in &lines {
        // `…` stands for options left out: each option given must exist.
        if words.iter().any(|w| w.contains('…') || w == "...") {
            let cmd = subcommand(&words[1]);
            for w in words.iter().filter(|w| w.starts_with("--")) {
                let long = w.trim_start_matches("--").split('=').next().unwrap();
                if cmd.get_arguments().all(|a| a.get_long() != Some(long)) && long != "help" {
                    wrong.push(format!("{at}: `slowscan {} {w}` does not exist", words[1]));
                }
            }
            continue;
        }
        if let Err(e) = Cli::try_parse_from(words) {
            let e = e.to_string();
            wrong.push(format!(
                "{at}: `{}`: {}",
                words.join(" "),
                e.lines().next().unwrap_or_default()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_drift_checks_catch_drift() {
    // A default stated wrongly, an option that does not exist, a bad line.
    assert!(!states("3600", None));
    assert!(!states("tumbling", Some("sliding")));
    assert!(states(
        "`sliding` (`tumbling` with `--sweep`)",
        Some("sliding")
    ));
    assert!(states(
        "beside `--state`",
        Some("beside --state, its name ending .learned.json")
    ));
    assert!(states("none", None) && states("— (the ladder)", None));
    assert_eq!(
        flags_of("`--window SECONDS\\|none`, `--threshold N`"),
        ["window", "threshold"]
    );
    assert_eq!(
        shell_words("slowscan whitelist add '198.51.100.0/24:8000-8099' --iface eth1 # push"),
        [
            "slowscan",
            "whitelist",
            "add",
            "198.51.100.0/24:8000-8099",
            "--iface",
            "eth1"
        ]
    );
    assert!(Cli::try_parse_from(["slowscan", "run", "--windw", "1h"]).is_err());
}
