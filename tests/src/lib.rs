//! Shared helpers for slowscan's privileged tests: the root/CI gate, test
//! frames, and network namespaces joined by veth pairs that each test creates
//! and removes itself. Live test hosts use documentation addresses only.

pub mod cases;
pub mod fixtures;
pub mod fleetlab;
pub mod flood;
pub mod frames;
pub mod lab;
pub mod redis;

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

/// True when the test may run. Without root it skips with a notice, except
/// under `CI=true`, where skipping a privileged test is a failure.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if is_ci() {
        panic!("{test}: needs root (BPF, namespaces); CI=true forbids skipping it");
    }
    eprintln!("SKIP {test}: needs root (BPF, namespaces)");
    false
}

pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The external captures directory, or None (skip with a notice). Under
/// `CI=true` a missing directory is a failure.
pub fn external_captures(test: &str) -> Option<PathBuf> {
    captures_dir(test, "SLOWSCAN_EXTERNAL_CAPTURES", "external")
}

/// The foreign captures directory (real captures from other projects' test
/// suites, `../shared/testdata/foreign`), or None (skip with a notice).
/// Under `CI=true` a missing directory is a failure.
pub fn foreign_captures(test: &str) -> Option<PathBuf> {
    captures_dir(test, "SLOWSCAN_FOREIGN_CAPTURES", "foreign")
}

fn captures_dir(test: &str, var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(d) if PathBuf::from(&d).is_dir() => Some(PathBuf::from(d)),
        Some(d) => panic!(
            "{test}: {var}={} is not a directory",
            PathBuf::from(d).display()
        ),
        None if is_ci() => {
            panic!("{test}: {var} is not set; CI=true requires the {what} captures")
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
    pub alerting: std::collections::BTreeSet<String>,
}

/// The foreign README's table (`| `file` | from | what | a / e / f | alerts |`).
pub fn foreign_rows(dir: &std::path::Path) -> Vec<ForeignRow> {
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
/// except under `CI=true`, where a missing tool is a failure.
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

/// A name unique to this process and call, short enough for an interface (≤ 15).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted on drop (also when the test panics).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// `ip netns exec NAME args…`
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// A command that will run inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered this namespace (setns), so that
    /// interface names and XDP attachment resolve inside it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// Spawns a thread inside this namespace; the caller joins it.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
    }
}

fn enter(path: &str) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Two namespaces joined by a veth pair: `a` (198.51.100.1/24) and `b`
/// (198.51.100.2/24). Deleting the namespaces removes the veth ends.
pub struct VethLab {
    pub a: Netns,
    pub b: Netns,
    pub if_a: String,
    pub if_b: String,
}

pub const LAB_A: &str = "198.51.100.1";
pub const LAB_B: &str = "198.51.100.2";

impl VethLab {
    pub fn new() -> Self {
        let a = Netns::new("ssa");
        let b = Netns::new("ssb");
        let if_a = unique("ssva");
        let if_b = unique("ssvb");
        sh(&[
            "ip", "link", "add", &if_a, "netns", &a.name, "type", "veth", "peer", "name", &if_b,
            "netns", &b.name,
        ]);
        a.exec(&["ip", "addr", "add", &format!("{LAB_A}/24"), "dev", &if_a]);
        b.exec(&["ip", "addr", "add", &format!("{LAB_B}/24"), "dev", &if_b]);
        a.exec(&["ip", "link", "set", &if_a, "up"]);
        b.exec(&["ip", "link", "set", &if_b, "up"]);
        Self { a, b, if_a, if_b }
    }
}

impl Default for VethLab {
    fn default() -> Self {
        Self::new()
    }
}

/// The `slowscan` binary built beside this test binary (`cargo xtask test`
/// builds the whole workspace first).
pub fn slowscan_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("slowscan");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (`cargo build`)",
        bin.display()
    );
    bin
}
