//! The flow collector at speed (issue 17, item 8): flow records/s that
//! `slowscan collect` (the release build) receives, decodes, reorders and
//! counts, fed pre-built IPFIX and NetFlow v9 datagrams over loopback,
//! beside a bare UDP receive loop (recv_from and a counter, in this
//! process) fed the same datagrams the same way, in the same run: the ratio
//! is the figure to trust on these shared machines.
//!
//! Closed loop: the sender keeps at most `WINDOW_DATAGRAMS` in flight (what
//! the receiver has counted, asked through its control socket for the
//! collector), far below the receive buffer, so nothing is lost and the
//! rate is the receiver's. Then an open-loop run at the target rate
//! (200,000 records/s, paced) checks that no datagram is lost. Every run
//! ends by comparing what the collector counted with what was sent
//! (datagrams, records, sequence gaps). Needs root (the control socket
//! lives in /run/slowscan); prints a Markdown table.
//!
//! Load: 2,000,000 TCP records per round, IPFIX 60 per datagram (v9: 70),
//! the template every 64 datagrams; 512 sources of 198.51.100.0/24 and
//! 203.0.113.0/24 to 512 destinations, one record in ten a failed attempt
//! (SYN only), the rest established; start times in order over the last
//! 20 s (the collector holds each for `--max-lateness 60s`).

use std::{
    net::{Ipv4Addr, UdpSocket},
    os::fd::AsRawFd,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use slowscan::daemon::control::{self, Request, Response};
use slowscan_testkit::exports::{Flow, IPFIX_PER_DATAGRAM, Ipfix, V9, V9_PER_DATAGRAM};
use slowscan_tests::{lab::release_slowscan, unique};

const RECORDS: usize = 2_000_000;
const WINDOW_DATAGRAMS: u64 = 6_000;
const TARGET: f64 = 200_000.0;
const ROUNDS: usize = 3;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn flows(n: usize, t0_ms: u64) -> Vec<Flow> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let net = |b: u64| {
                if b & 1 == 0 {
                    [198, 51, 100]
                } else {
                    [203, 0, 113]
                }
            };
            let s = net(x >> 8);
            let d = net(x >> 9);
            Flow {
                src: Ipv4Addr::new(s[0], s[1], s[2], (x >> 16) as u8),
                dst: Ipv4Addr::new(d[0], d[1], d[2], (x >> 24) as u8),
                src_port: 1024 + (x >> 32) as u16 % 60_000,
                dst_port: [22, 80, 443, 8080, 3389, 25][(x >> 48) as usize % 6],
                flags: if i % 10 == 0 { 0x02 } else { 0x1b },
                start_ms: t0_ms + (i as u64 * 20_000) / n as u64,
            }
        })
        .collect()
}

/// The datagrams of `proto` carrying `RECORDS` records.
fn datagrams(proto: &str) -> Vec<Vec<u8>> {
    let t0 = now_ms() - 20_000;
    let fl = flows(RECORDS, t0);
    let export_s = (now_ms() / 1000) as u32;
    match proto {
        "IPFIX" => {
            let mut e = Ipfix::new(7);
            fl.chunks(IPFIX_PER_DATAGRAM)
                .enumerate()
                .map(|(i, c)| e.datagram(export_s, i % 64 == 0, c))
                .collect()
        }
        _ => {
            let mut e = V9::new(7, t0 - 3_600_000);
            fl.chunks(V9_PER_DATAGRAM)
                .enumerate()
                .map(|(i, c)| e.datagram(export_s, i % 64 == 0, c))
                .collect()
        }
    }
}

fn big_buffer(sock: &UdpSocket) {
    let size: libc::c_int = 64 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket and an int option.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
}

/// Sends `dgs` to `port`, at most WINDOW_DATAGRAMS ahead of `received()`
/// (closed loop), or paced at `rate` records/s (open loop). Seconds taken
/// until `received()` has them all (or stopped growing: then the loss shows).
fn send(
    port: u16,
    dgs: &[Vec<u8>],
    per: usize,
    rate: Option<f64>,
    received: &mut dyn FnMut() -> u64,
) -> f64 {
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = ("127.0.0.1", port);
    let start = Instant::now();
    let mut got = 0;
    for (i, d) in dgs.iter().enumerate() {
        match rate {
            None => {
                while i as u64 >= got + WINDOW_DATAGRAMS {
                    got = received();
                    if i as u64 >= got + WINDOW_DATAGRAMS {
                        thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            Some(r) => {
                let due = start + Duration::from_secs_f64((i * per) as f64 / r);
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
            }
        }
        tx.send_to(d, to).unwrap();
    }
    let total = dgs.len() as u64;
    let mut last = (received(), Instant::now());
    loop {
        let n = received();
        if n >= total {
            break;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    // The end: when the last datagram was counted.
    (last.1.max(Instant::now() - Duration::from_millis(5)) - start).as_secs_f64()
}

/// The bare receive loop: records/s.
fn baseline(dgs: &[Vec<u8>], per: usize) -> f64 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    big_buffer(&sock);
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = {
        let (count, stop) = (count.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                if sock.recv_from(&mut buf).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let secs = send(port, dgs, per, None, &mut || count.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    rx.join().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), dgs.len() as u64);
    (dgs.len() * per) as f64 / secs
}

struct Collector {
    child: Child,
    name: String,
    port: u16,
}

impl Collector {
    fn start() -> Self {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let name = unique("ssbench");
        let child = Command::new(release_slowscan("collect bench"))
            .args(["collect", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--name",
                &name,
                "--max-lateness",
                "60s",
                "--alerts",
                "/dev/null",
            ])
            .args(["--receive-buffer", &(64usize << 20).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let c = Collector { child, name, port };
        let end = Instant::now() + Duration::from_secs(20);
        while c.status().is_none() {
            assert!(Instant::now() < end, "the collector did not start");
            thread::sleep(Duration::from_millis(50));
        }
        c
    }

    fn status(&self) -> Option<serde_json::Value> {
        match control::request(&self.name, &Request::Status { top: 0 }).ok()? {
            Response::Status(s) => serde_json::to_value(s.flows?).ok(),
            _ => None,
        }
    }

    fn datagrams(&self) -> u64 {
        self.status()
            .and_then(|f| f["datagrams"].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // SAFETY: signalling a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// One run against a fresh collector: records/s, and (datagrams, records,
/// sequence gaps) it counted.
fn collector(dgs: &[Vec<u8>], per: usize, rate: Option<f64>) -> (f64, (u64, u64, u64)) {
    let c = Collector::start();
    let secs = send(c.port, dgs, per, rate, &mut || c.datagrams());
    let f = c.status().expect("the collector answers");
    let n = |k: &str| f[k].as_u64().unwrap_or(0);
    (
        (dgs.len() * per) as f64 / secs,
        (n("datagrams"), n("records"), n("sequence_gaps")),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("collect bench: needs root (the collector's control socket); skipped");
        return;
    }
    println!("## Flow collector: `slowscan collect` over loopback\n");
    println!(
        "{RECORDS} records per round, median of {ROUNDS} rounds, closed loop ({WINDOW_DATAGRAMS} datagrams in flight at most)\n"
    );
    println!(
        "| export | bare receive loop, records/s | collector, records/s | collector ÷ baseline | × the 200,000/s target | received / sent datagrams | records counted | sequence gaps |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (proto, per) in [
        ("IPFIX", IPFIX_PER_DATAGRAM),
        ("NetFlow v9", V9_PER_DATAGRAM),
    ] {
        let dgs = datagrams(proto);
        let (mut b, mut c, mut last) = (Vec::new(), Vec::new(), (0, 0, 0));
        for _ in 0..ROUNDS {
            b.push(baseline(&dgs, per));
            let (r, counts) = collector(&dgs, per, None);
            c.push(r);
            last = counts;
        }
        let (b, c) = (median(b), median(c));
        println!(
            "| {proto} | {b:.0} | {c:.0} | {:.2} | {:.2} | {} / {} | {} | {} |",
            c / b,
            c / TARGET,
            last.0,
            dgs.len(),
            last.1,
            last.2
        );
    }
    println!("\nOpen loop, paced at the target (200,000 records/s), IPFIX, {RECORDS} records:\n");
    let dgs = datagrams("IPFIX");
    let (r, (d, rec, gaps)) = collector(&dgs, IPFIX_PER_DATAGRAM, Some(TARGET));
    println!(
        "- delivered {r:.0} records/s; received {d} of {} datagrams, {rec} records, {gaps} sequence gaps: {}",
        dgs.len(),
        if d == dgs.len() as u64 && gaps == 0 {
            "nothing lost"
        } else {
            "DATAGRAMS LOST"
        }
    );
}
