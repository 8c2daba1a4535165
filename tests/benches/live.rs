//! The live sensor at speed: frames/s that a sender pushes through a veth
//! pair with `slowscan run` attached to the receiving end, beside the same
//! sender with nothing attached, in the same run (these machines are shared
//! and noisy: the ratio is the figure to trust). Also records lost, the
//! daemon's CPU share and resident memory at that rate, and alert latency
//! beyond the handshake timeout. Needs root; prints a Markdown report.
//!
//! ```text
//!   namespace "tx" ── txIF ═══ rxIF ── namespace "rx" (slowscan run --iface rxIF)
//!   one AF_PACKET sender per core (sendmmsg, qdisc bypass), both veth ends 2 queues
//! ```
//!
//! The traffic is a realistic mix addressed to 198.51.100.0/24 lab hosts
//! only: connections that establish and carry data both ways, a tenth that
//! fail (SYN only), and a few ARP and UDP frames; every pass over the
//! prepared frames gets new client ports, so SYNs are new attempts, not
//! retransmissions. Frames carry MAC addresses that are not the receiver's,
//! as on a mirror port: with nothing attached the receiving stack drops
//! them as "other host" at once. TCP checksums are left at zero (neither the
//! XDP program nor that drop looks at them).
//!
//! The daemon is the release build of `slowscan` beside this bench's target
//! directory (`cargo bench --workspace` builds it; for `--bench live` alone,
//! `cargo build --release -p slowscan-user` first). Every process the bench
//! starts is stopped by its PID; namespaces (and with them the veth pair)
//! are deleted on drop, also on panic.

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use slowscan_testkit::{
    inject::{SendBatch, pin_to_cpu},
    procfs,
};
use slowscan_tests::{
    Netns,
    flood::{raw_socket, veth_queues},
    frames::{self, Tcp},
    lab::release_slowscan,
    unique,
};

/// Measurement window per configuration and round.
const WINDOW: Duration = Duration::from_secs(3);
/// Sender running before the window opens.
const WARMUP: Duration = Duration::from_secs(1);
const ROUNDS: usize = 5;
/// Daemon settings for every run: a short handshake timeout so failures are
/// decided (and sources tracked) within the window, and a small threshold.
const TIMEOUT_S: u64 = 2;
const THRESHOLD: u32 = 5;
/// Alert-latency probes per condition (idle, under load).
const LATENCY_PROBES: usize = 5;
const METRICS: &str = "127.0.0.1:9464";

const TX_IP: [u8; 4] = [198, 51, 100, 1];
const RX_IP: [u8; 4] = [198, 51, 100, 2];

fn main() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("live bench: needs root (namespaces, XDP, AF_PACKET); skipped");
        return;
    }
    let bin = release_slowscan("live bench");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lab = Lab::new(cpus);
    let templates: Vec<Arc<Template>> = (0..cpus)
        .map(|t| Arc::new(Template::new(t as u8)))
        .collect();
    let mix = templates[0].mix;
    eprintln!(
        "live bench: {} on {} ⇄ {}; {cpus} sender thread(s); daemon {}",
        lab.dir.display(),
        lab.tx_if,
        lab.rx_if,
        bin.display()
    );

    // Throughput in rounds: (a) nothing attached, (b) --mirror, (c) without,
    // beside empty native XDP programs with the same verdicts (d), (e).
    let modes = [
        Mode::Bare,
        Mode::EmptyDrop,
        Mode::Mirror,
        Mode::EmptyPass,
        Mode::Pass,
    ];
    let mut results: Vec<Vec<Sample>> = vec![Vec::new(); modes.len()];
    for round in 0..ROUNDS {
        for (i, mode) in modes.iter().enumerate() {
            let s = measure(&lab, &bin, *mode, &templates);
            eprintln!(
                "round {}: {:<28} rx {:>10.0} frames/s, sent {:>10.0} frames/s, daemon cpu {:>5.1}% rss {:>6.1} MiB, lost {:?}, alerts {:?}",
                round + 1,
                mode.label(),
                s.rx_fps,
                s.sent_fps,
                s.cpu_pct.unwrap_or(f64::NAN),
                s.rss_kib.unwrap_or(0) as f64 / 1024.0,
                s.lost,
                s.alerts
            );
            results[i].push(s);
        }
    }

    // Alert latency beyond the handshake timeout: idle, then under load.
    let idle = alert_latency(&lab, &bin, None, 66);
    let loaded = alert_latency(&lab, &bin, Some(&templates), 66 + LATENCY_PROBES as u8);

    report(&modes, &results, &mix, cpus, &idle, &loaded);
}

// ───────────────────────────── the lab ─────────────────────────────

/// Two namespaces joined by a 2-queue veth pair, plus a scratch directory;
/// everything removed on drop.
struct Lab {
    tx: Netns,
    rx: Netns,
    tx_if: String,
    rx_if: String,
    dir: PathBuf,
}

impl Lab {
    fn new(queues: usize) -> Self {
        let tx = Netns::new("sslvt");
        let rx = Netns::new("sslvr");
        let (tx_if, rx_if) = veth_queues(&tx, &rx, queues);
        let cidr = |a: [u8; 4]| format!("{}.{}.{}.{}/24", a[0], a[1], a[2], a[3]);
        tx.exec(&["ip", "addr", "add", &cidr(TX_IP), "dev", &tx_if]);
        rx.exec(&["ip", "addr", "add", &cidr(RX_IP), "dev", &rx_if]);
        let dir = std::env::temp_dir().join(unique("slowscan-live-"));
        fs::create_dir_all(&dir).expect("scratch directory");
        Self {
            tx,
            rx,
            tx_if,
            rx_if,
            dir,
        }
    }

    /// The receiving end's rx packet counter.
    fn rx_packets(&self) -> u64 {
        self.rx.rx_packets(&self.rx_if)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        // The namespaces (and the veth pair) go with their fields.
    }
}

// ───────────────────────────── the mix ─────────────────────────────

/// Connections per sender thread and pass; client addresses per thread.
const CONNS: u32 = 320;
const CLIENTS: u32 = 64;
/// Connections interleaved with one another.
const GROUP: u32 = 16;
const SERVER_DATA: u32 = 60;
const DEAD_PORT: u16 = 8081;

/// What one pass over a template holds.
#[derive(Clone, Copy, Default, Debug)]
struct Mix {
    frames: u64,
    bytes: u64,
    syn_established: u64,
    syn_failed: u64,
    handshake_other: u64,
    data: u64,
    arp: u64,
    udp: u64,
}

struct FrameRef {
    off: usize,
    len: usize,
    /// Offset of the client port inside the frame, 0 for none.
    port_off: usize,
    conn: u32,
}

/// One sender thread's frames, client ports rewritten on every pass.
struct Template {
    buf: Vec<u8>,
    frames: Vec<FrameRef>,
    mix: Mix,
}

/// A TCP segment between two lab hosts (IPv4 header checksum filled in).
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: usize,
) -> Vec<u8> {
    let t = Tcp {
        ack,
        payload,
        ..Tcp::new(flags, seq).ports(sport, dport)
    };
    pad(frames::tcp_frame(src, dst, &t))
}

fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    a.extend_from_slice(&sender);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    let mut f = frames::ethernet(&[], frames::ETH_ARP, &a);
    f[0..6].copy_from_slice(&[0xff; 6]);
    pad(f)
}

fn udp_frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut u = vec![0u8; 8 + 40];
    u[0..2].copy_from_slice(&53_000u16.to_be_bytes());
    u[2..4].copy_from_slice(&53u16.to_be_bytes());
    u[4..6].copy_from_slice(&48u16.to_be_bytes());
    let mut ip = frames::ipv4(src, dst, 17, &[], 0x4000, &u);
    frames::set_ipv4_checksum(&mut ip);
    pad(frames::ethernet(&[], frames::ETH_IPV4, &ip))
}

const SYN: u8 = slowscan_common::tcp::SYN;
const ACK: u8 = slowscan_common::tcp::ACK;
const PSH: u8 = slowscan_common::tcp::PSH;
const FIN: u8 = slowscan_common::tcp::FIN;

impl Template {
    /// Sender `t`'s connections: clients 198.51.100.(100 + 64 t + i),
    /// servers 198.51.100.10–17.
    fn new(t: u8) -> Self {
        assert!(
            u32::from(t) * CLIENTS + CLIENTS + 100 <= 254,
            "too many sender threads"
        );
        let mut mix = Mix::default();
        // (frame, client-port offset, kind)
        let mut per_conn: Vec<Vec<(Vec<u8>, usize)>> = Vec::new();
        for c in 0..CONNS {
            let client = [198, 51, 100, 100 + t * CLIENTS as u8 + (c % CLIENTS) as u8];
            let mut v = Vec::new();
            let isn_c = 0x1000_0000u32.wrapping_add(c.wrapping_mul(2_654_435_761));
            if c % 10 == 0 {
                // A failed attempt: one dead port of one server, so each
                // client has a single failed (host, port) pair (no alert).
                v.push((
                    tcp_frame(client, [198, 51, 100, 10], 0, DEAD_PORT, isn_c, 0, SYN, 0),
                    34,
                ));
                mix.syn_failed += 1;
                per_conn.push(v);
                continue;
            }
            let server = [198, 51, 100, 10 + (c % 8) as u8];
            let sport = [80u16, 443, 8080, 22][(c / 8 % 4) as usize];
            let isn_s = isn_c.rotate_left(13) ^ 0x5a5a_5a5a;
            let (mut cs, mut ss) = (isn_c.wrapping_add(1), isn_s.wrapping_add(1));
            let c2s = |seq, ack, flags, len| {
                (
                    tcp_frame(client, server, 0, sport, seq, ack, flags, len),
                    34,
                )
            };
            let s2c = |seq, ack, flags, len| {
                (
                    tcp_frame(server, client, sport, 0, seq, ack, flags, len),
                    36,
                )
            };
            v.push(c2s(isn_c, 0, SYN, 0));
            mix.syn_established += 1;
            v.push(s2c(isn_s, cs, SYN | ACK, 0));
            v.push(c2s(cs, ss, ACK, 0));
            mix.handshake_other += 2;
            v.push(c2s(cs, ss, PSH | ACK, 100));
            cs = cs.wrapping_add(100);
            mix.data += 1;
            for i in 0..SERVER_DATA {
                let len = [64usize, 256, 512, 128][(i % 4) as usize];
                v.push(s2c(ss, cs, PSH | ACK, len));
                ss = ss.wrapping_add(len as u32);
                mix.data += 1;
                if i % 2 == 1 {
                    v.push(c2s(cs, ss, ACK, 0));
                    mix.data += 1;
                }
            }
            v.push(c2s(cs, ss, FIN | ACK, 0));
            v.push(s2c(ss, cs.wrapping_add(1), FIN | ACK, 0));
            v.push(c2s(cs.wrapping_add(1), ss.wrapping_add(1), ACK, 0));
            mix.data += 3;
            per_conn.push(v);
        }
        let mut buf = Vec::new();
        let mut frames_out = Vec::new();
        let mut push = |f: &[u8], port_off: usize, conn: u32, buf: &mut Vec<u8>| {
            frames_out.push(FrameRef {
                off: buf.len(),
                len: f.len(),
                port_off,
                conn,
            });
            buf.extend_from_slice(f);
        };
        for g in (0..CONNS).step_by(GROUP as usize) {
            let group = g..(g + GROUP).min(CONNS);
            let longest = group
                .clone()
                .map(|c| per_conn[c as usize].len())
                .max()
                .unwrap_or(0);
            for k in 0..longest {
                for c in group.clone() {
                    if let Some((f, off)) = per_conn[c as usize].get(k) {
                        push(f, *off, c, &mut buf);
                    }
                }
            }
            // A few non-TCP frames per group: ARP and DNS-like UDP.
            let client = [198, 51, 100, 100 + t * CLIENTS as u8 + (g % CLIENTS) as u8];
            push(&arp_request(client, [198, 51, 100, 10]), 0, 0, &mut buf);
            push(&udp_frame(client, [198, 51, 100, 53]), 0, 0, &mut buf);
            mix.arp += 1;
            mix.udp += 1;
        }
        mix.frames = frames_out.len() as u64;
        mix.bytes = buf.len() as u64;
        Self {
            buf,
            frames: frames_out,
            mix,
        }
    }
}

// ──────────────────────────── the sender ────────────────────────────

/// Sends `t`'s frames round and round until `stop`; new client ports on
/// every pass.
fn send_loop(ifname: &str, t: &Template, cpu: usize, stop: &AtomicBool, sent: &AtomicU64) {
    const BATCH: usize = 64;
    pin_to_cpu(cpu);
    let fd = raw_socket(ifname);
    let mut batch = SendBatch::new(t.buf.clone(), t.frames.iter().map(|f| (f.off, f.len)));
    let k = CONNS / CLIENTS;
    let rewrite = |batch: &mut SendBatch, pass: u32| {
        let buf = batch.buf_mut();
        for f in &t.frames {
            if f.port_off == 0 {
                continue;
            }
            let port = 1024 + ((pass.wrapping_mul(k) + f.conn / CLIENTS) % 64_000) as u16;
            let at = f.off + f.port_off;
            buf[at..at + 2].copy_from_slice(&port.to_be_bytes());
        }
    };
    let n = batch.len();
    let (mut i, mut pass) = (0usize, 0u32);
    rewrite(&mut batch, pass);
    while !stop.load(Ordering::Relaxed) {
        let r = batch.send_from(&fd, i, BATCH);
        i += r;
        sent.fetch_add(r as u64, Ordering::Relaxed);
        if i == n {
            i = 0;
            pass = pass.wrapping_add(1);
            rewrite(&mut batch, pass);
        }
    }
}

/// Sender threads inside the tx namespace, one per core; stopped and joined
/// on drop.
struct Senders {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Senders {
    fn start(lab: &Lab, templates: &[Arc<Template>]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let threads = templates
            .iter()
            .enumerate()
            .map(|(cpu, t)| {
                let (t, stop, sent, ifname) =
                    (t.clone(), stop.clone(), sent.clone(), lab.tx_if.clone());
                lab.tx
                    .spawn(move || send_loop(&ifname, &t, cpu, &stop, &sent))
            })
            .collect();
        Self {
            stop,
            sent,
            threads,
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            if let Err(e) = t.join()
                && !std::thread::panicking()
            {
                std::panic::resume_unwind(e);
            }
        }
    }
}

// ──────────────────────────── the daemon ────────────────────────────

/// A `slowscan run` this bench started, in the rx namespace; stopped by PID
/// (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
    /// Alert lines from stdout with their arrival time (when piped).
    alerts: Option<mpsc::Receiver<(Instant, String)>>,
}

impl Daemon {
    fn start(lab: &Lab, bin: &Path, args: &[&str], pipe_alerts: bool) -> Self {
        let log = lab.dir.join(unique("daemon-") + ".log");
        let mut c = lab.rx.command(bin.to_str().expect("UTF-8 path"));
        c.args(["run", "--iface", &lab.rx_if])
            .args([
                "--handshake-timeout",
                &TIMEOUT_S.to_string(),
                "--threshold",
                &THRESHOLD.to_string(),
            ])
            .args(args)
            .stderr(fs::File::create(&log).expect("daemon log"));
        if pipe_alerts {
            c.args(["--alerts", "-"]).stdout(Stdio::piped());
        } else {
            let alerts = lab.dir.join(unique("alerts-") + ".jsonl");
            c.arg("--alerts").arg(alerts).stdout(Stdio::null());
        }
        let mut child = c.spawn().expect("starting slowscan run");
        let alerts = child.stdout.take().map(|out| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((Instant::now(), line)).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let mut d = Self { child, log, alerts };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let text = fs::read_to_string(&d.log).unwrap_or_default();
            if text.contains("detecting on") {
                break;
            }
            if let Ok(Some(s)) = d.child.try_wait() {
                panic!("slowscan run exited ({s}) before attaching:\n{text}");
            }
            assert!(
                Instant::now() < end,
                "slowscan run did not attach within 20 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        procfs::cpu_ticks(self.pid())
    }

    fn rss_kib(&self) -> u64 {
        procfs::status_kib(self.pid(), "VmRSS")
    }

    /// SIGTERM, wait for the exit; its stderr (logs and final summary).
    fn stop(&mut self) -> String {
        terminate(&mut self.child);
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: signalling the child we started and have not reaped, by PID.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// `name=value` from the summary's `kernel:` line.
fn summary_counter(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .find(|l| l.trim_start().starts_with("kernel:"))?
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// Alerts from the summary's first line.
fn summary_alerts(log: &str) -> Option<u64> {
    let l = log.lines().find(|l| l.starts_with("slowscan summary:"))?;
    l.split_whitespace().nth(2)?.parse().ok()
}

/// One metric's value from the Prometheus endpoint in the rx namespace.
fn metric(lab: &Lab, name: &'static str) -> Option<u64> {
    let text = lab.rx.run(|| {
        let mut s = TcpStream::connect(METRICS).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut t = String::new();
        s.read_to_string(&mut t).ok()?;
        Some(t)
    })?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|v| v as u64)
}

// ─────────────────────────── measurements ───────────────────────────

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Bare,
    Mirror,
    Pass,
    EmptyDrop,
    EmptyPass,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Bare => "(a) nothing attached",
            Mode::Mirror => "(b) slowscan run --mirror",
            Mode::Pass => "(c) slowscan run (XDP_PASS)",
            Mode::EmptyDrop => "(d) empty program, XDP_DROP",
            Mode::EmptyPass => "(e) empty program, XDP_PASS",
        }
    }
}

#[derive(Clone, Debug)]
struct Sample {
    rx_fps: f64,
    sent_fps: f64,
    cpu_pct: Option<f64>,
    rss_kib: Option<u64>,
    lost: Option<u64>,
    alerts: Option<u64>,
    frames_seen: Option<u64>,
}

fn measure(lab: &Lab, bin: &Path, mode: Mode, templates: &[Arc<Template>]) -> Sample {
    let mut daemon = match mode {
        Mode::Bare => None,
        Mode::Mirror => Some(Daemon::start(
            lab,
            bin,
            &["--mirror", "--metrics", METRICS],
            false,
        )),
        Mode::Pass => Some(Daemon::start(lab, bin, &["--metrics", METRICS], false)),
        Mode::EmptyDrop | Mode::EmptyPass => None,
    };
    let _empty = match mode {
        Mode::EmptyDrop => Some(EmptyXdp::attach(lab, XDP_DROP)),
        Mode::EmptyPass => Some(EmptyXdp::attach(lab, XDP_PASS)),
        _ => None,
    };
    let senders = Senders::start(lab, templates);
    std::thread::sleep(WARMUP);
    let (rx0, sent0, t0) = (lab.rx_packets(), senders.sent(), Instant::now());
    let cpu0 = daemon.as_ref().map(Daemon::cpu_ticks);
    std::thread::sleep(WINDOW);
    let cpu1 = daemon.as_ref().map(Daemon::cpu_ticks);
    let (rx1, sent1, secs) = (lab.rx_packets(), senders.sent(), t0.elapsed().as_secs_f64());
    let rss = daemon.as_ref().map(Daemon::rss_kib);
    drop(senders);
    let hz = procfs::ticks_per_second();
    let cpu_pct = cpu0
        .zip(cpu1)
        .map(|(a, b)| (b - a) as f64 / hz / secs * 100.0);
    let (mut lost, mut alerts, mut frames_seen) = (None, None, None);
    if let Some(d) = daemon.as_mut() {
        let live_lost = metric(lab, "slowscan_records_lost_total");
        let log = d.stop();
        let at_exit = summary_counter(&log, "records_lost");
        assert!(
            at_exit.is_some(),
            "no summary from slowscan run; its log:\n{log}"
        );
        lost = live_lost.max(at_exit);
        alerts = summary_alerts(&log);
        frames_seen = summary_counter(&log, "frames");
    }
    drop(daemon);
    Sample {
        rx_fps: (rx1 - rx0) as f64 / secs,
        sent_fps: (sent1 - sent0) as f64 / secs,
        cpu_pct,
        rss_kib: rss,
        lost,
        alerts,
        frames_seen,
    }
}

const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;

/// An empty XDP program (`r0 = action; exit`) attached in native mode to the
/// receiving veth through a BPF link: the cost of native XDP on a veth by
/// itself, beside which slowscan's own share shows. Detached on drop (the
/// link's and program's fds close).
struct EmptyXdp {
    _link: OwnedFd,
    _prog: OwnedFd,
}

impl EmptyXdp {
    fn attach(lab: &Lab, action: i32) -> Self {
        let ifname = lab.rx_if.clone();
        lab.rx.run(move || {
            fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> OwnedFd {
                // SAFETY: bpf(2) with a zero-padded 128-byte attribute block.
                let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), 128usize) };
                assert!(fd >= 0, "bpf({cmd}): {}", std::io::Error::last_os_error());
                // SAFETY: a new fd the kernel just returned.
                unsafe { OwnedFd::from_raw_fd(fd as i32) }
            }
            let mut insns = [0u8; 16];
            insns[0] = 0xb7; // mov64 r0, imm
            insns[4..8].copy_from_slice(&action.to_le_bytes());
            insns[8] = 0x95; // exit
            let license = c"GPL";
            let mut attr = [0u64; 16];
            attr[0] = 6 | (2 << 32); // prog_type XDP, insn_cnt 2
            attr[1] = insns.as_ptr() as u64;
            attr[2] = license.as_ptr() as u64;
            attr[8] = 37 << 32; // expected_attach_type BPF_XDP
            let prog = bpf(5, &mut attr); // BPF_PROG_LOAD
            let name = std::ffi::CString::new(ifname).unwrap();
            // SAFETY: a NUL-terminated name.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            let mut attr = [0u64; 16];
            attr[0] = prog.as_raw_fd() as u64 | (u64::from(index) << 32);
            attr[1] = 37 | (4 << 32); // attach_type BPF_XDP, XDP_FLAGS_DRV_MODE
            let link = bpf(28, &mut attr); // BPF_LINK_CREATE
            Self {
                _link: link,
                _prog: prog,
            }
        })
    }
}

/// Sends one SYN from `src` to 198.51.100.10:`port`.
fn send_syn(fd: &OwnedFd, src: [u8; 4], sport: u16, port: u16) {
    let f = tcp_frame(
        src,
        [198, 51, 100, 10],
        sport,
        port,
        0x0bad_5eed ^ u32::from(port),
        0,
        SYN,
        0,
    );
    // SAFETY: a valid buffer on a bound AF_PACKET socket.
    let r = unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
    assert_eq!(
        r,
        f.len() as isize,
        "send: {}",
        std::io::Error::last_os_error()
    );
}

/// Alert latency beyond the handshake timeout, ms, one per probe: each
/// probe source first sends THRESHOLD failed SYNs to distinct ports (no
/// alert: not more than the threshold); once those are decided, one more
/// SYN to a new port decides the crossing; its sending time to the alert
/// line's arrival on the daemon's stdout, minus the handshake timeout.
fn alert_latency(lab: &Lab, bin: &Path, load: Option<&[Arc<Template>]>, first: u8) -> Vec<f64> {
    let mut d = Daemon::start(lab, bin, &["--mirror", "--metrics", "off"], true);
    let senders = load.map(|t| Senders::start(lab, t));
    let ifname = lab.tx_if.clone();
    let fd = lab.tx.run(move || raw_socket(&ifname));
    let sources: Vec<[u8; 4]> = (0..LATENCY_PROBES as u8)
        .map(|i| [198, 51, 100, first + i])
        .collect();
    for (i, src) in sources.iter().enumerate() {
        for p in 0..THRESHOLD as u16 {
            send_syn(&fd, *src, 40_000 + i as u16, 2_000 + p);
        }
    }
    std::thread::sleep(Duration::from_secs(TIMEOUT_S) + Duration::from_millis(2_500));
    let mut sent_at = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        sent_at.push(Instant::now());
        send_syn(&fd, *src, 40_000 + i as u16, 2_000 + THRESHOLD as u16);
        // Not a multiple of the daemon's 1 s tick: probes sample its phase.
        std::thread::sleep(Duration::from_millis(1_370));
    }
    let rx = d.alerts.take().expect("piped alerts");
    let mut got: Vec<Option<Instant>> = vec![None; sources.len()];
    let end = Instant::now() + Duration::from_secs(TIMEOUT_S + 5);
    while got.iter().any(Option::is_none) && Instant::now() < end {
        let Ok((at, line)) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("alert line is JSON");
        let ip = v["source"]["ip"].as_str().unwrap_or_default().to_string();
        if let Some(i) = sources
            .iter()
            .position(|s| format!("{}.{}.{}.{}", s[0], s[1], s[2], s[3]) == ip)
        {
            got[i].get_or_insert(at);
        }
    }
    drop(senders);
    let log = d.stop();
    let lost = summary_counter(&log, "records_lost");
    eprintln!(
        "alert latency ({}): records lost {lost:?}; alerts at {:?}",
        if load.is_some() { "under load" } else { "idle" },
        got.iter().map(Option::is_some).collect::<Vec<_>>()
    );
    got.iter()
        .zip(&sent_at)
        .filter_map(|(g, s)| g.map(|g| (g - *s).as_secs_f64() * 1e3 - (TIMEOUT_S * 1000) as f64))
        .collect()
}

// ───────────────────────────── report ─────────────────────────────

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(
    modes: &[Mode],
    results: &[Vec<Sample>],
    mix: &Mix,
    cpus: usize,
    idle: &[f64],
    loaded: &[f64],
) {
    let f = mix.frames as f64;
    println!("## Live sensor (`tests/benches/live.rs`)\n");
    println!(
        "Mix per sender pass: {} frames, mean {:.0} bytes; TCP data segments of established flows {:.1}%, \
         SYNs that establish {:.1}%, SYNs that fail {:.2}%, other handshake segments {:.1}%, ARP + UDP {:.2}%. \
         {cpus} sender thread(s) (AF_PACKET, sendmmsg); {ROUNDS} rounds of {} s each; \
         medians, ratios paired by round.\n",
        mix.frames,
        mix.bytes as f64 / f,
        mix.data as f64 / f * 100.0,
        mix.syn_established as f64 / f * 100.0,
        mix.syn_failed as f64 / f * 100.0,
        mix.handshake_other as f64 / f * 100.0,
        (mix.arp + mix.udp) as f64 / f * 100.0,
        WINDOW.as_secs()
    );
    let base = median(results[0].iter().map(|s| s.rx_fps).collect());
    // Ratios are paired by round (neighbouring windows), then the median:
    // the machine's load drifts between rounds far more than within one.
    let paired = |i: usize, j: usize| {
        median(
            results[i]
                .iter()
                .zip(&results[j])
                .map(|(x, y)| x.rx_fps / y.rx_fps)
                .collect(),
        )
    };
    println!(
        "| configuration | frames/s received | × nothing attached | frames/s sent | daemon CPU (% of one core) | daemon RSS (MiB) | records lost | alerts |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (mode, samples)) in modes.iter().zip(results).enumerate() {
        let rx = median(samples.iter().map(|s| s.rx_fps).collect());
        let sent = median(samples.iter().map(|s| s.sent_fps).collect());
        let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_pct).collect();
        let rss: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.rss_kib)
            .map(|k| k as f64 / 1024.0)
            .collect();
        let lost: Option<u64> = samples.iter().map(|s| s.lost).sum();
        let alerts: Option<u64> = samples.iter().map(|s| s.alerts).sum();
        let opt = |v: &[f64], p: usize| {
            if v.is_empty() {
                "–".to_string()
            } else {
                format!("{:.*}", p, median(v.to_vec()))
            }
        };
        println!(
            "| {} | {} | {:.3} | {} | {} | {} | {} | {} |",
            mode.label(),
            thousands(rx),
            paired(i, 0),
            thousands(sent),
            opt(&cpu, 1),
            opt(&rss, 1),
            lost.map_or("–".into(), |l| l.to_string()),
            alerts.map_or("–".into(), |l| l.to_string()),
        );
    }
    let at = |m: Mode| modes.iter().position(|x| *x == m).expect("mode measured");
    let (a, b, c, d, e) = (
        0,
        at(Mode::Mirror),
        at(Mode::Pass),
        at(Mode::EmptyDrop),
        at(Mode::EmptyPass),
    );
    let mirror_runs = &results[b];
    let mirror = median(mirror_runs.iter().map(|s| s.rx_fps).collect());
    let ratio = paired(b, a);
    let lost: u64 = results.iter().flatten().filter_map(|s| s.lost).sum();
    let seen: u64 = mirror_runs.iter().filter_map(|s| s.frames_seen).sum();
    println!(
        "\nPer-round ratios (b)/(a): {}. Frames the program saw in the (b) runs (whole daemon lifetimes): {}.",
        results[0]
            .iter()
            .zip(mirror_runs)
            .map(|(a, b)| format!("{:.3}", b.rx_fps / a.rx_fps))
            .collect::<Vec<_>>()
            .join(", "),
        thousands(seen as f64)
    );
    println!(
        "Beside an empty native program with the same verdict: (b)/(d) {:.3}, (c)/(e) {:.3}; \
         native XDP on this veth by itself: (d)/(a) {:.3}, (e)/(a) {:.3}.",
        paired(b, d),
        paired(c, e),
        paired(d, a),
        paired(e, a)
    );
    println!(
        "\nTargets: ratio (b)/(a) {ratio:.3} (≥ 0.9: {}); (b) {} frames/s (≥ 1,000,000: {}; sender ceiling (a) {} frames/s); \
         records lost {lost} (= 0: {}).",
        if ratio >= 0.9 { "met" } else { "missed" },
        thousands(mirror),
        if mirror >= 1e6 { "met" } else { "missed" },
        thousands(base),
        if lost == 0 { "met" } else { "missed" },
    );
    println!(
        "\n### Alert latency beyond the {TIMEOUT_S} s handshake timeout (threshold {THRESHOLD}, --mirror)\n"
    );
    println!("| condition | probes answered | median (ms) | min (ms) | max (ms) |");
    println!("|---|---|---|---|---|");
    for (name, v) in [("idle", idle), ("under the mix above", loaded)] {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        println!(
            "| {name} | {}/{LATENCY_PROBES} | {:.0} | {:.0} | {:.0} |",
            v.len(),
            median(v.to_vec()),
            min,
            max
        );
    }
}
