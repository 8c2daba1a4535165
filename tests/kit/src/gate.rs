//! Whether a test may run: root for the privileged tests, the tools it
//! needs, the capture directories it reads. Without them a test skips with a
//! notice, except under CI (`CI` set to `true` or `1`), where a skip is a
//! failure.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

/// True when the test may run. Without root it skips with a notice, except
/// under CI, where skipping a privileged test is a failure.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if is_ci() {
        panic!("{test}: needs root (BPF, namespaces); CI forbids skipping it");
    }
    eprintln!("SKIP {test}: needs root (BPF, namespaces)");
    false
}

/// True under CI: `CI` set to `true` or `1` (the one definition every test
/// crate uses).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The external captures directory (`SLOWSCAN_EXTERNAL_CAPTURES`), or None
/// (skip with a notice). Under CI a missing directory is a failure.
pub fn external_captures(test: &str) -> Option<PathBuf> {
    captures_dir(test, "SLOWSCAN_EXTERNAL_CAPTURES", "external")
}

/// The foreign captures directory (`SLOWSCAN_FOREIGN_CAPTURES`: real
/// captures from other projects' test suites, with a README giving each
/// one's expected outcome), or None (skip with a notice). Under CI a
/// missing directory is a failure.
pub fn foreign_captures(test: &str) -> Option<PathBuf> {
    captures_dir(test, "SLOWSCAN_FOREIGN_CAPTURES", "foreign")
}

/// Zeek's traces with the conn.log Zeek wrote for each
/// (`SLOWSCAN_ZEEK_TESTDATA`), or None (skip with a notice). Under CI a
/// missing directory is a failure.
pub fn zeek_testdata(test: &str) -> Option<PathBuf> {
    captures_dir(test, "SLOWSCAN_ZEEK_TESTDATA", "Zeek")
}

fn captures_dir(test: &str, var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(d) if PathBuf::from(&d).is_dir() => Some(PathBuf::from(d)),
        Some(d) => panic!(
            "{test}: {var}={} is not a directory (it should hold the {what} captures, see their README.md)",
            PathBuf::from(d).display()
        ),
        None if is_ci() => {
            panic!("{test}: {var} is not set; CI requires the {what} captures")
        }
        None => {
            eprintln!("SKIP {test}: set {var} to the {what} captures directory");
            None
        }
    }
}

/// One row of the foreign captures' README: a file, the attempts,
/// established and failed attempts, and the sources alerting (distinct
/// failed pairs above 9, window `none`, no whitelist, 60 s handshake timeout).
#[derive(Clone, Debug)]
pub struct ForeignRow {
    pub file: String,
    pub attempts: u64,
    pub established: u64,
    pub failed: u64,
    pub alerting: BTreeSet<String>,
}

/// The foreign README's table (`| `file` | from | what | a / e / f | alerts |`).
pub fn foreign_rows(dir: &Path) -> Vec<ForeignRow> {
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("the foreign README.md");
    let mut rows = Vec::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        assert_eq!(cells.len(), 5, "README row: {line}");
        let n: Vec<u64> = cells[3]
            .split('/')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("README row: {line}"))
            })
            .collect();
        assert_eq!(n.len(), 3, "README row: {line}");
        rows.push(ForeignRow {
            file: cells[0].trim_matches('`').to_string(),
            attempts: n[0],
            established: n[1],
            failed: n[2],
            alerting: match cells[4] {
                "—" | "-" | "" => Default::default(),
                list => list.split(',').map(|s| s.trim().to_string()).collect(),
            },
        });
    }
    rows
}

/// True when every tool is on PATH. Otherwise the test skips with a notice,
/// except under CI, where a missing tool is a failure.
pub fn tools_present(test: &str, tools: &[&str]) -> bool {
    let has = |tool: &&str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = tools.iter().filter(|t| !has(t)).copied().collect();
    if missing.is_empty() {
        return true;
    }
    if is_ci() {
        panic!("{test}: missing tools {missing:?} (`cargo xtask setup` installs them)");
    }
    eprintln!("SKIP {test}: missing tools {missing:?}");
    false
}
