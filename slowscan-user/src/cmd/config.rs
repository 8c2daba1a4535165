//! `--config FILE`: options from a TOML file under their flag names
//! (`threshold = 9`, `handshake-timeout = "60"`, `mirror = true`; `_` may
//! stand for `-`), for `run` (every option) and `replay` (the detection
//! options). Flags given on the command line override the file. Unknown keys
//! and bad values are errors naming the file and the key.
//!
//! The file's options and the flags are turned back into one command line
//! and parsed by the command's own definitions, so a value from the file is
//! checked exactly as the flag would be.
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{Context, anyhow};
use clap::{
    ArgMatches, Parser,
    error::{ContextKind, ContextValue},
    parser::ValueSource,
};

/// Which options came from a config file, to name them as its keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// (`--flag`, key as written) of each option taken from the file.
    pub keys: Vec<(String, String)>,
}

impl ConfigFile {
    /// `flag` (`--detector`) as a message names it: the file's key when the
    /// value came from there.
    pub fn name(&self, flag: &str) -> Option<String> {
        self.keys
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, key)| format!("config file {}: `{key}`", self.path.display()))
    }
}

/// The file at `path`, read.
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))
}

/// A clap error on one line, without its `error: ` prefix and usage hint.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// A TOML scalar as the text a flag would take.
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// `P` parsed from the options of the file `path` (holding `text`) that
/// were not given as flags, and the flags (`matches`: the subcommand's,
/// which must define every option of `P`). Keys in `skipped` (options of
/// another command sharing the file) are left alone; other keys that are not
/// `P`'s options are errors.
pub fn merge<P: Parser>(
    path: &Path,
    text: &str,
    matches: &ArgMatches,
    skipped: &[String],
) -> anyhow::Result<(P, ConfigFile)> {
    merge_matches(path, text, matches, skipped).map(|(p, file, _)| (p, file))
}

/// [`merge`], with the merged command line's matches (every option's value,
/// defaults included: what a reload compares).
pub fn merge_matches<P: Parser>(
    path: &Path,
    text: &str,
    matches: &ArgMatches,
    skipped: &[String],
) -> anyhow::Result<(P, ConfigFile, ArgMatches)> {
    let file = path.display();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
            .unwrap_or_default();
        anyhow!("config file {file}: {}{at}", e.message().trim_end())
    })?;
    let cmd = P::command();
    let options: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| l != "config"))
        .collect();
    let on_command_line =
        |a: &clap::Arg| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine);
    let mut argv: Vec<OsString> = vec![cmd.get_name().into()];
    let mut from_file: Vec<(String, String)> = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let Some(arg) = options.iter().find(|a| a.get_long() == Some(long.as_str())) else {
            if skipped.contains(&long) {
                continue;
            }
            let known: Vec<&str> = options.iter().filter_map(|a| a.get_long()).collect();
            return Err(anyhow!(
                "config file {file}: unknown key `{key}` (known keys: {})",
                known.join(", ")
            ));
        };
        let bad = |why: String| anyhow!("config file {file}: bad value for `{key}`: {why}");
        if on_command_line(arg) {
            continue;
        }
        if !arg.get_action().takes_values() {
            match value {
                toml::Value::Boolean(true) => argv.push(format!("--{long}").into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(bad("write true or false".into())),
            }
            continue;
        }
        let repeatable = matches!(arg.get_action(), clap::ArgAction::Append);
        if let (toml::Value::Array(items), true) = (value, repeatable) {
            // `detector = ["1h:9", "30d:24"]`: the flag once per item.
            for v in items {
                let v = scalar(v).ok_or_else(|| bad(format!("`{v}` is not a string")))?;
                argv.push(format!("--{long}={v}").into());
            }
            from_file.push((format!("--{long}"), key.clone()));
            continue;
        }
        let pieces: Vec<String> = match value {
            toml::Value::Array(items) if arg.get_value_delimiter().is_some() => items
                .iter()
                .map(|v| scalar(v).ok_or_else(|| bad(format!("`{v}` is not a number or string"))))
                .collect::<anyhow::Result<_>>()?,
            v => match scalar(v) {
                Some(s) if arg.get_value_delimiter().is_some() => {
                    s.split(',').map(|p| p.trim().to_string()).collect()
                }
                Some(s) => vec![s],
                None => return Err(bad(format!("`{v}` is not a number or string"))),
            },
        };
        argv.push(format!("--{long}={}", pieces.join(",")).into());
        from_file.push((format!("--{long}"), key.clone()));
    }
    for arg in options.iter().filter(|a| on_command_line(a)) {
        let long = arg.get_long().expect("options have a long name");
        let id = arg.get_id().as_str();
        if !arg.get_action().takes_values() {
            if matches.get_flag(id) {
                argv.push(format!("--{long}").into());
            }
            continue;
        }
        for v in matches.get_raw(id).into_iter().flatten() {
            let mut o = OsString::from(format!("--{long}="));
            o.push(v);
            argv.push(o);
        }
    }
    let parsed = P::command()
        .try_get_matches_from(argv)
        .and_then(|m| P::from_arg_matches(&m).map(|p| (p, m)));
    let (merged, merged_matches) = parsed.map_err(|e| {
        // The option clap names, if it came from the file: name its key.
        let named = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(s)) => s.split_whitespace().next().map(str::to_string),
            _ => None,
        };
        match from_file
            .iter()
            .find(|(flag, _)| named.as_deref() == Some(flag))
        {
            Some((_, key)) => anyhow!(
                "config file {file}: bad value for `{key}`: {}",
                clap_message(&e)
            ),
            None => anyhow!("{} (with the config file {file})", clap_message(&e)),
        }
    })?;
    Ok((
        merged,
        ConfigFile {
            path: path.to_path_buf(),
            keys: from_file,
        },
        merged_matches,
    ))
}
