//! The namespace lab shared by the end-to-end tests and `cargo xtask demo`.
//!
//! ```text
//!   server .10 (+ .100–.120)   benign .20   misconfigured .21   scanners .66 .67
//!        │ eth0                    │             │                 │     │
//!   ─────┴──────────────── br0 (switch namespace) ─────────────────┴─────┴──
//!        every port's ingress ── tc mirred egress mirror ──► mon ═══ span0 (sensor namespace)
//! ```
//!
//! Every host is a network namespace with one veth into a Linux bridge that
//! lives in its own "switch" namespace (the host's root namespace is never
//! touched). Each bridge port mirrors what it receives from its host to
//! `mon`, whose veth peer `span0` in the sensor namespace is the sensor's
//! mirror/SPAN port: the sensor sees every frame exactly once. Addresses are
//! 198.51.100.0/24 only (documentation range). Names are unique per run; the
//! namespaces (and with them every veth and the bridge) are deleted and every
//! process the lab started is killed, by PID, when the [`Lab`] is dropped —
//! also when a test panics.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{Netns, VethLab, unique};

pub const SERVER: &str = "198.51.100.10";
pub const BENIGN: &str = "198.51.100.20";
pub const MISCONFIGURED: &str = "198.51.100.21";
pub const SCANNER_V: &str = "198.51.100.66";
pub const SCANNER_H: &str = "198.51.100.67";
/// The server's secondary addresses, targets of the horizontal scan.
pub const HORIZONTAL_RANGE: &str = "198.51.100.100-120";
pub const HORIZONTAL_COUNT: u8 = 21;
/// Ports the server really serves (http.server on 80, accept-and-close
/// listeners on the others).
pub const SERVICES: [u16; 4] = [80, 22, 443, 8080];
/// The port the misconfigured client keeps retrying: nothing listens there.
pub const DEAD_PORT: u16 = 8081;
/// The sensor's interface in its namespace.
pub const SENSOR_IF: &str = "span0";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT/SIGTERM set a flag (see [`interrupted`]) instead of killing
/// the process, so a demo stopped with Ctrl-C still tears its lab down.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn check_interrupt() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps, waking early (with an error) on an interrupt.
pub fn sleep(d: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_interrupt()?;
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    Ok(())
}

/// Runs a command to completion; an error with its output if it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    run(Command::new("ip").args(args))
}

/// A process the lab started: killed by its PID (SIGTERM, then SIGKILL) on
/// drop unless it already ended.
pub struct Proc {
    pub what: String,
    child: Child,
}

impl Proc {
    pub fn spawn(what: &str, mut cmd: Command) -> anyhow::Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {what}: {cmd:?}"))?;
        Ok(Self {
            what: what.to_string(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (`ip netns exec` execs its program, so the PID is the
    /// program's), then waits up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(s) = self.child.try_wait()? {
            return Ok(s);
        }
        // SAFETY: signalling a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    /// Waits for the process to end by itself, up to `limit`.
    pub fn wait(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            check_interrupt()?;
            if Instant::now() >= end {
                bail!(
                    "{} (pid {}) still running after {} s",
                    self.what,
                    self.pid(),
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(2));
    }
}

/// One lab host: a namespace with `eth0` on the bridge.
pub struct Host {
    pub ns: Netns,
    pub addr: &'static str,
}

impl Host {
    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program)
    }
}

/// The lab. Field order is drop order: processes first, then namespaces.
pub struct Lab {
    procs: Vec<Proc>,
    pub server: Host,
    pub benign: Host,
    pub misconfigured: Host,
    pub scanner_v: Host,
    pub scanner_h: Host,
    pub sensor: Netns,
    pub switch: Netns,
    /// Scratch directory for logs and alerts, removed on drop.
    pub dir: PathBuf,
}

const LISTENER_PY: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(p))); s.listen(64); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.sendall(b"hello\n"); c.close()
        except OSError:
            pass
"#;

/// Benign client: real connections to the server's services, a GET on 80.
const BENIGN_PY: &str = r#"
import socket, sys, time, urllib.request
server = sys.argv[1]; ports = [int(p) for p in sys.argv[2:]]
while True:
    for p in ports:
        try:
            if p == 80:
                urllib.request.urlopen(f"http://{server}/", timeout=2).read()
            else:
                with socket.create_connection((server, p), timeout=2) as c:
                    c.recv(64)
        except OSError:
            pass
        time.sleep(0.25)
"#;

/// The misconfigured client: keeps retrying one dead port of one server.
const MISCONFIGURED_PY: &str = r#"
import socket, sys, time
server, port = sys.argv[1], int(sys.argv[2])
while True:
    try:
        socket.create_connection((server, port), timeout=2).close()
    except OSError:
        pass
    time.sleep(0.5)
"#;

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

impl Lab {
    /// Builds the namespaces, bridge and mirror; starts nothing yet.
    pub fn new() -> anyhow::Result<Self> {
        let switch = Netns::new("sslsw");
        let sensor = Netns::new("sslse");
        let sw = switch.name.clone();
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        // The sensor's SPAN port: mon (switch side) ═ span0 (sensor side).
        ip(&[
            "link",
            "add",
            "mon",
            "netns",
            &sw,
            "type",
            "veth",
            "peer",
            "name",
            SENSOR_IF,
            "netns",
            &sensor.name,
        ])?;
        ip(&["-n", &sw, "link", "set", "mon", "up"])?;
        ip(&["-n", &sensor.name, "link", "set", SENSOR_IF, "up"])?;
        let mut n = 0;
        let mut host = |prefix: &str, addr: &'static str| -> anyhow::Result<Host> {
            n += 1;
            let ns = Netns::new(prefix);
            let port = format!("h{n}");
            ip(&[
                "link", "add", "eth0", "netns", &ns.name, "type", "veth", "peer", "name", &port,
                "netns", &sw,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns.name, "link", "set", "eth0", "up"])?;
            // What the host sends enters the bridge here: mirror it to the sensor.
            run(Command::new("tc").args(["-n", &sw, "qdisc", "add", "dev", &port, "clsact"]))?;
            run(Command::new("tc").args([
                "-n", &sw, "filter", "add", "dev", &port, "ingress", "protocol", "all", "u32",
                "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "mon",
            ]))?;
            Ok(Host { ns, addr })
        };
        let server = host("sslsv", SERVER)?;
        let benign = host("sslbe", BENIGN)?;
        let misconfigured = host("sslmi", MISCONFIGURED)?;
        let scanner_v = host("sslsc", SCANNER_V)?;
        let scanner_h = host("sslsh", SCANNER_H)?;
        for i in 100..100 + HORIZONTAL_COUNT {
            ip(&[
                "-n",
                &server.ns.name,
                "addr",
                "add",
                &format!("198.51.100.{i}/24"),
                "dev",
                "eth0",
            ])?;
        }
        let dir = std::env::temp_dir().join(unique("slowscan-lab-"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            procs: Vec::new(),
            server,
            benign,
            misconfigured,
            scanner_v,
            scanner_h,
            sensor,
            switch,
            dir,
        })
    }

    /// Starts the server's services and waits until they accept connections.
    pub fn start_services(&mut self) -> anyhow::Result<()> {
        let mut http = self.server.command(python());
        http.args([
            "-m",
            "http.server",
            "80",
            "--bind",
            "0.0.0.0",
            "--directory",
        ])
        .arg(&self.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.procs.push(Proc::spawn("http.server", http)?);
        let mut l = self.server.command(python());
        l.arg("-c")
            .arg(LISTENER_PY)
            .args(SERVICES[1..].iter().map(u16::to_string));
        l.stdout(Stdio::null()).stderr(Stdio::null());
        self.procs.push(Proc::spawn("listeners", l)?);
        // Ready when every service answers from the benign host.
        let end = Instant::now() + Duration::from_secs(10);
        let probe = format!(
            "import socket\nfor p in {:?}: socket.create_connection(('{SERVER}', p), timeout=1).close()",
            SERVICES
        );
        loop {
            let ok = self
                .benign
                .command(python())
                .args(["-c", &probe])
                .output()?
                .status
                .success();
            if ok {
                return Ok(());
            }
            if Instant::now() > end {
                bail!("the lab server's services did not come up within 10 s");
            }
            sleep(Duration::from_millis(200))?;
        }
    }

    /// Starts the benign and the misconfigured client (they run until drop).
    pub fn start_clients(&mut self) -> anyhow::Result<()> {
        let mut b = self.benign.command(python());
        b.arg("-c")
            .arg(BENIGN_PY)
            .arg(SERVER)
            .args(SERVICES.iter().map(u16::to_string));
        b.stdout(Stdio::null()).stderr(Stdio::null());
        self.procs.push(Proc::spawn("benign client", b)?);
        let mut m = self.misconfigured.command(python());
        m.arg("-c")
            .arg(MISCONFIGURED_PY)
            .arg(SERVER)
            .arg(DEAD_PORT.to_string());
        m.stdout(Stdio::null()).stderr(Stdio::null());
        self.procs.push(Proc::spawn("misconfigured client", m)?);
        Ok(())
    }

    /// Records what the sensor's interface receives (tcpdump on `mon`, the
    /// mirror's egress, in the switch namespace: frames the sensor drops in
    /// mirror mode are still captured). Stopped (and flushed) on drop or by
    /// [`Lab::stop_capture`].
    pub fn start_capture(&mut self, file: &Path) -> anyhow::Result<()> {
        let mut t = self.switch.command("tcpdump");
        t.args(["-i", "mon", "-U", "-n", "-Z", "root", "-w"])
            .arg(file);
        t.stdout(Stdio::null()).stderr(Stdio::null());
        self.procs.push(Proc::spawn("tcpdump", t)?);
        sleep(Duration::from_millis(700))
    }

    pub fn stop_capture(&mut self) -> anyhow::Result<()> {
        for p in self.procs.iter_mut().filter(|p| p.what == "tcpdump") {
            p.stop(Duration::from_secs(3))?;
        }
        Ok(())
    }

    /// Starts `slowscan run --iface span0 --mirror --alerts <dir>/alerts.jsonl
    /// …extra` in the sensor namespace (stderr to `<dir>/sensor.log`) and
    /// waits until it is attached.
    pub fn start_sensor(&mut self, slowscan: &Path, extra: &[&str]) -> anyhow::Result<Sensor> {
        let alerts = self.dir.join("alerts.jsonl");
        let log = self.dir.join("sensor.log");
        let mut c = self
            .sensor
            .command(slowscan.to_str().context("slowscan path is not UTF-8")?);
        c.args([
            "run",
            "--iface",
            SENSOR_IF,
            "--mirror",
            "--source-totals",
            "--alerts",
        ])
        .arg(&alerts)
        .args(extra);
        c.stdout(Stdio::null()).stderr(fs::File::create(&log)?);
        let mut proc = Proc::spawn("slowscan run", c)?;
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("detecting on") || text.contains("learning the whitelist") {
                break;
            }
            if let Some(s) = proc.child.try_wait()? {
                bail!("slowscan run exited ({s}) before attaching:\n{text}");
            }
            if Instant::now() > end {
                bail!("slowscan run did not attach within 15 s:\n{text}");
            }
            sleep(Duration::from_millis(100))?;
        }
        Ok(Sensor { proc, alerts, log })
    }

    /// Starts `nmap -sS -n -Pn --max-retries 0 …args` from `scanner`; its
    /// output goes to `<dir>/nmap-<addr>.txt`.
    pub fn spawn_nmap(&self, scanner: Scanner, args: &[&str]) -> anyhow::Result<Proc> {
        let h = self.scanner(scanner);
        let out = self.dir.join(format!("nmap-{}.txt", h.addr));
        let mut c = h.command("nmap");
        c.args(["-sS", "-n", "-Pn", "--max-retries", "0"])
            .args(args);
        c.stdout(fs::File::create(&out)?).stderr(Stdio::null());
        Proc::spawn(&format!("nmap from {}", h.addr), c)
    }

    /// Waits for an nmap started by [`Lab::spawn_nmap`]; its output.
    pub fn wait_nmap(&self, scanner: Scanner, mut p: Proc) -> anyhow::Result<String> {
        let st = p.wait(Duration::from_secs(300))?;
        let h = self.scanner(scanner);
        let text =
            fs::read_to_string(self.dir.join(format!("nmap-{}.txt", h.addr))).unwrap_or_default();
        if !st.success() {
            bail!("nmap from {} failed ({st}):\n{text}", h.addr);
        }
        Ok(text)
    }

    pub fn scanner(&self, s: Scanner) -> &Host {
        match s {
            Scanner::Vertical => &self.scanner_v,
            Scanner::Horizontal => &self.scanner_h,
        }
    }

    /// Runs a command in the sensor namespace (e.g. curl on the metrics endpoint).
    pub fn in_sensor(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        run(self.sensor.command(program).args(args))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first (reverse start order), by PID; the namespaces go
        // with their fields afterwards.
        while let Some(mut p) = self.procs.pop() {
            let _ = p.stop(Duration::from_secs(2));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy)]
pub enum Scanner {
    /// 198.51.100.66: many ports of one host.
    Vertical,
    /// 198.51.100.67: one port of many hosts.
    Horizontal,
}

/// A place in a sensor's log (a byte offset): a wait from it sees only what
/// was logged after, not an earlier line with the same words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark(usize);

/// A running `slowscan run`.
pub struct Sensor {
    proc: Proc,
    pub alerts: PathBuf,
    pub log: PathBuf,
}

/// What a stopped sensor left behind.
pub struct SensorResult {
    pub status: ExitStatus,
    /// Alert lines, parsed.
    pub alerts: Vec<serde_json::Value>,
    /// Its whole stderr (logs and the final summary).
    pub log: String,
}

impl SensorResult {
    /// `name=value` from the summary's `kernel:` line.
    pub fn kernel_counter(&self, name: &str) -> Option<u64> {
        let line = self
            .log
            .lines()
            .find(|l| l.trim_start().starts_with("kernel:"))?;
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    }

    /// The final summary (from `slowscan summary:` to the end).
    pub fn summary(&self) -> &str {
        self.log
            .find("slowscan summary:")
            .map_or("", |i| &self.log[i..])
    }
}

/// The key of a namespace's runtime files and pins (`net<inode>`, see
/// `slowscan::netns`).
pub fn netns_key(ns: &Netns) -> String {
    use std::os::unix::fs::MetadataExt;
    let ino = fs::metadata(format!("/run/netns/{}", ns.name))
        .expect("namespace file")
        .ino();
    format!("net{ino}")
}

impl Sensor {
    /// Starts `slowscan args…` in `ns`'s network namespace only (`nsenter
    /// --net`: the test's mount namespace, so its pins and runtime file are
    /// visible here), stderr to `log`; waits until its log says `ready`.
    pub fn start_in(
        ns: &Netns,
        slowscan: &Path,
        args: &[&str],
        alerts: PathBuf,
        log: PathBuf,
        ready: &str,
    ) -> anyhow::Result<Self> {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", ns.name))
            .arg(slowscan)
            .args(args);
        Self::start_cmd(c, alerts, log, ready)
    }

    /// Starts `slowscan args…` with `ip netns exec`, as an operator would:
    /// in `ns` and in a mount namespace of its own (its /sys, so its bpffs,
    /// is not the test's); waits until its log says `ready`.
    pub fn start_ip_netns(
        ns: &Netns,
        slowscan: &Path,
        args: &[&str],
        alerts: PathBuf,
        log: PathBuf,
        ready: &str,
    ) -> anyhow::Result<Self> {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.name]).arg(slowscan).args(args);
        Self::start_cmd(c, alerts, log, ready)
    }

    /// Starts `c` (a sensor), stderr to `log`; waits until its log says `ready`.
    pub fn start_cmd(
        mut c: Command,
        alerts: PathBuf,
        log: PathBuf,
        ready: &str,
    ) -> anyhow::Result<Self> {
        c.stdout(Stdio::null()).stderr(fs::File::create(&log)?);
        let mut proc = Proc::spawn("slowscan", c)?;
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains(ready) {
                break;
            }
            if let Some(s) = proc.child.try_wait()? {
                bail!("slowscan exited ({s}) before `{ready}`:\n{text}");
            }
            if Instant::now() > end {
                bail!("slowscan did not say `{ready}` within 15 s:\n{text}");
            }
            sleep(Duration::from_millis(50))?;
        }
        Ok(Sensor { proc, alerts, log })
    }

    /// Sends signal `sig` to the sensor (by its PID).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling a child we started and have not reaped.
        unsafe { libc::kill(self.proc.pid() as libc::pid_t, sig) };
    }

    /// Waits until its log contains `text` (up to `limit`), anywhere: a line
    /// from before counts too (see [`Sensor::wait_log_after`]).
    pub fn wait_log(&self, text: &str, limit: Duration) -> anyhow::Result<String> {
        self.wait_log_after(LogMark(0), text, limit)?;
        Ok(self.log_so_far())
    }

    /// The end of its log now: what it logs from here on lies past the mark.
    pub fn mark(&self) -> LogMark {
        LogMark(fs::read(&self.log).map_or(0, |b| b.len()))
    }

    /// Waits until its log, past `mark`, contains `text` (up to `limit`);
    /// returns the mark just past that occurrence, to wait for what follows.
    pub fn wait_log_after(
        &self,
        mark: LogMark,
        text: &str,
        limit: Duration,
    ) -> anyhow::Result<LogMark> {
        let end = Instant::now() + limit;
        loop {
            let log = fs::read(&self.log).unwrap_or_default();
            let tail = log.get(mark.0..).unwrap_or_default();
            if let Some(i) = tail
                .windows(text.len().max(1))
                .position(|w| w == text.as_bytes())
            {
                return Ok(LogMark(mark.0 + i + text.len()));
            }
            if Instant::now() > end {
                bail!(
                    "the sensor's log has no `{text}` past byte {} after {} s:\n{}",
                    mark.0,
                    limit.as_secs(),
                    String::from_utf8_lossy(&log)
                );
            }
            sleep(Duration::from_millis(50))?;
        }
    }

    /// Waits for it to end by itself (after a signal), up to `limit`.
    pub fn wait(mut self, limit: Duration) -> anyhow::Result<SensorResult> {
        let status = self.proc.wait(limit)?;
        Ok(SensorResult {
            status,
            alerts: parse_alerts(&fs::read_to_string(&self.alerts).unwrap_or_default()),
            log: fs::read_to_string(&self.log).unwrap_or_default(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Alert lines so far.
    pub fn alerts_so_far(&self) -> Vec<serde_json::Value> {
        parse_alerts(&fs::read_to_string(&self.alerts).unwrap_or_default())
    }

    /// SIGKILL (a crash: no final checkpoint, no clean detach), then reap it.
    pub fn kill(mut self) -> anyhow::Result<SensorResult> {
        // SAFETY: signalling a child we started and have not reaped.
        unsafe { libc::kill(self.proc.pid() as libc::pid_t, libc::SIGKILL) };
        let status = self.proc.wait(Duration::from_secs(10))?;
        Ok(SensorResult {
            status,
            alerts: parse_alerts(&fs::read_to_string(&self.alerts).unwrap_or_default()),
            log: fs::read_to_string(&self.log).unwrap_or_default(),
        })
    }

    /// Its stderr so far.
    pub fn log_so_far(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, wait for the final summary.
    pub fn stop(mut self) -> anyhow::Result<SensorResult> {
        let status = self.proc.stop(Duration::from_secs(10))?;
        Ok(SensorResult {
            status,
            alerts: parse_alerts(&fs::read_to_string(&self.alerts).unwrap_or_default()),
            log: fs::read_to_string(&self.log).unwrap_or_default(),
        })
    }
}

fn parse_alerts(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("alert line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// The `slowscan` binary beside the running executable (a test in
/// `target/<profile>/deps/`, or the demo in `target/<profile>/`).
pub fn slowscan_beside_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let p = dir.join("slowscan");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no slowscan binary beside {}: build it first (`cargo build -p slowscan-user`, with \
         `--release` for a bench, and the same CARGO_TARGET_DIR)",
        exe.display()
    )
}

/// The release `slowscan` a bench runs (beside its binary, in
/// `target/release/`); without it the bench stops, saying how to build it.
pub fn release_slowscan(bench: &str) -> PathBuf {
    slowscan_beside_exe().unwrap_or_else(|e| {
        eprintln!("{bench}: {e}");
        std::process::exit(1)
    })
}

/// A fresh scratch directory under the temp dir, unique to this run.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    fs::create_dir_all(&d).unwrap();
    d
}

/// The test's lab (a veth pair in two namespaces) and scratch directory,
/// or None when it may not run here: it needs root, `nsenter` and `tools`
/// (under CI a missing one fails the test instead).
pub fn setup(test: &str, dir: &str, tools: &[&str]) -> Option<(VethLab, PathBuf)> {
    let mut need = vec!["nsenter"];
    need.extend_from_slice(tools);
    if !crate::privileged(test) || !crate::tools_present(test, &need) {
        return None;
    }
    Some((VethLab::new(), scratch(dir)))
}
