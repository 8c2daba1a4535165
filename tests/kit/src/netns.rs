//! Network namespaces joined by veth pairs, created and removed by the
//! test that uses them (also when it panics), and the commands that set
//! them up.

use std::{
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

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

    /// The packets interface `iface` (in this namespace) has received.
    pub fn rx_packets(&self, iface: &str) -> u64 {
        let path = format!("/sys/class/net/{iface}/statistics/rx_packets");
        let out = self.exec(&["cat", &path]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path} in {}: {e}", self.name))
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

/// A veth pair with `queues` queues each way, `tx_if` in `tx`, `rx_if` in
/// `rx`, both up (one sender thread per queue reaches the sender's ceiling).
pub fn veth_queues(tx: &Netns, rx: &Netns, queues: usize) -> (String, String) {
    let (tx_if, rx_if) = (unique("ssqt"), unique("ssqr"));
    let q = queues.max(1).to_string();
    sh(&[
        "ip",
        "link",
        "add",
        "name",
        &tx_if,
        "netns",
        &tx.name,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        &rx_if,
        "netns",
        &rx.name,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
    ]);
    tx.exec(&["ip", "link", "set", &tx_if, "up"]);
    rx.exec(&["ip", "link", "set", &rx_if, "up"]);
    (tx_if, rx_if)
}
