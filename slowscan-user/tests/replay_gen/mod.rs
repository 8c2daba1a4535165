//! Generates captures of a small internal network for the replay tests, the
//! replay benchmark and the documentation's worked example: mostly data
//! packets of established connections (R5: SYN, SYN-ACK, ACK with S + 1,
//! data, FIN), some failed SYNs (a misconfigured client retrying one dead
//! server, noisy clients failing on a few dead destinations, each retried
//! after 1 s and 3 s), and one slow scanner (an nmap-style SYN stealth
//! probe — SYN, reply, RST — every `scan_every_s` seconds, R5.2).
//!
//! Deterministic for a given [`Traffic`]. Written with
//! [`slowscan::capture::PcapWriter`] (Ethernet, nanosecond pcap).
#![allow(dead_code)]

use std::{cmp::Reverse, collections::BinaryHeap, io, net::Ipv4Addr, path::Path};

use slowscan::{capture::PcapWriter, frame::LinkType};
use slowscan_common::tcp::{ACK, FIN, PSH, RST, SYN};
use slowscan_testkit::frames::{Tcp, tcp_frame};

/// 2014-06-25T09:00:00Z, the start of the paper's test period.
pub const PAPER_TEST_START_S: u64 = 1_403_686_800;

/// The slow scanner's address.
pub const SCANNER: Ipv4Addr = Ipv4Addr::new(10, 9, 9, 9);
/// The host it port-scans (a server: some of its ports are open).
pub const SCAN_TARGET: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
/// A dead server that a misconfigured client keeps trying on port 80 (the
/// paper's main source of failed connections, Fig. 6).
pub const DEAD_SERVER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 250);
/// Server ports and their weights: eligible (R4.3) ones and 8080, which is not.
const SERVICES: [(u16, u32); 6] = [
    (80, 40),
    (443, 30),
    (22, 10),
    (3128, 10),
    (8080, 6),
    (5666, 4),
];

#[derive(Clone, Debug)]
pub struct Traffic {
    /// Packets to write; a few more are added at the end to complete the
    /// handshakes still open, so that every connection is Established.
    pub packets: u64,
    /// Span of the capture.
    pub duration_s: u64,
    pub start_unix_s: u64,
    /// Client hosts 10.1.x.y.
    pub clients: u32,
    /// Server hosts 10.2.0.1 ….
    pub servers: u32,
    /// Connections open at once (their packets interleave).
    pub concurrent: usize,
    /// Clients that fail on a few dead destinations now and then.
    pub noisy_clients: u32,
    /// New failed connection attempts per 10,000 packets.
    pub failed_per_10k: u32,
    /// Scanner probe interval; 0: no scanner.
    pub scan_every_s: u64,
    /// Captured bytes per packet (`None`: whole frames).
    pub snaplen: Option<usize>,
    pub seed: u64,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            packets: 100_000,
            duration_s: 3 * 3600,
            start_unix_s: PAPER_TEST_START_S,
            clients: 900,
            servers: 40,
            concurrent: 256,
            noisy_clients: 12,
            failed_per_10k: 4,
            scan_every_s: 300,
            snaplen: None,
            seed: 2014,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    pub packets: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Connections opened; all of them complete their handshake (R5).
    pub connections: u64,
    /// Failed attempts (first SYNs without a follow-up), scanner's included.
    pub failed_attempts: u64,
    pub scan_probes: u64,
    /// Noisy clients, and the dead destinations each one tried.
    pub noisy: Vec<(Ipv4Addr, usize)>,
}

/// Writes the capture described by `t` to `path`.
pub fn write_capture(path: &Path, t: &Traffic) -> io::Result<Written> {
    let mut g = Gen::new(path, t)?;
    g.run()?;
    let mut w = g.written;
    let file = g.out.finish()?;
    drop(file);
    w.bytes = std::fs::metadata(path)?.len();
    w.noisy = g.noisy.iter().map(|n| (n.addr, n.tried.len())).collect();
    Ok(w)
}

/// An Ethernet + IPv4 + TCP frame (no options, `payload` zero bytes) into
/// `buf`: the test kit's frame.
#[allow(clippy::too_many_arguments)]
pub fn frame(
    buf: &mut Vec<u8>,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: usize,
) {
    let t = Tcp {
        ack,
        payload,
        ..Tcp::new(flags, seq).ports(sport, dport)
    };
    buf.clear();
    buf.extend_from_slice(&tcp_frame(src, dst, &t));
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Conn {
    client: Ipv4Addr,
    cport: u16,
    server: Ipv4Addr,
    sport: u16,
    cseq: u32,
    sseq: u32,
    step: u32,
    /// Server data segments to send.
    data: u32,
    sent: u32,
    /// Packets of the data phase so far, then of the closing phase.
    phase_step: u32,
    /// Not before: the handshake's SYN-ACK and ACK are due first.
    ready_at: u64,
}

struct Noisy {
    addr: Ipv4Addr,
    /// Dead destinations this client tries, and which ones it tried.
    dests: Vec<(Ipv4Addr, u16)>,
    tried: std::collections::HashSet<(Ipv4Addr, u16)>,
}

/// A packet due later (retransmissions, replies).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    ts: u64,
    n: u64,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
}

struct Gen {
    t: Traffic,
    out: PcapWriter<io::BufWriter<std::fs::File>>,
    rng: Rng,
    buf: Vec<u8>,
    now: u64,
    gap: u64,
    end: u64,
    conns: Vec<Conn>,
    due: BinaryHeap<Reverse<Due>>,
    due_n: u64,
    next_port: Vec<u16>,
    noisy: Vec<Noisy>,
    next_probe: u64,
    scan_ports: Vec<u16>,
    written: Written,
}

impl Gen {
    fn new(path: &Path, t: &Traffic) -> io::Result<Gen> {
        let out = PcapWriter::create(path, LinkType::Ethernet)?;
        let mut rng = Rng(t.seed);
        let start = t.start_unix_s * 1_000_000_000;
        let span = t.duration_s * 1_000_000_000;
        let noisy = (0..t.noisy_clients)
            .map(|i| {
                // Noisy client i fails on 1 + 2i mod 9 dead destinations.
                let n = 1 + (2 * i as usize) % 9;
                Noisy {
                    addr: Ipv4Addr::new(10, 1, 200, 1 + i as u8),
                    dests: (0..n)
                        .map(|_| {
                            let host = Ipv4Addr::new(10, 3, 0, 1 + rng.below(200) as u8);
                            (host, [80, 443, 445, 139, 22][rng.below(5) as usize])
                        })
                        .collect(),
                    tried: Default::default(),
                }
            })
            .collect();
        // The scanner walks ports 1–1024 of the target in a shuffled order.
        let mut scan_ports: Vec<u16> = (1..=1024).collect();
        for i in (1..scan_ports.len()).rev() {
            scan_ports.swap(i, rng.below(i as u64 + 1) as usize);
        }
        Ok(Gen {
            out,
            rng,
            buf: Vec::with_capacity(2048),
            now: start,
            gap: (span / t.packets.max(1)).max(1),
            end: start + span,
            conns: Vec::new(),
            due: BinaryHeap::new(),
            due_n: 0,
            next_port: vec![32768; t.clients as usize + 256],
            noisy,
            next_probe: if t.scan_every_s > 0 {
                start + 7_000_000_000
            } else {
                u64::MAX
            },
            scan_ports,
            written: Written::default(),
            t: t.clone(),
        })
    }

    fn run(&mut self) -> io::Result<()> {
        while self.written.packets < self.t.packets {
            self.now += self.rng.below(2 * self.gap) + 1;
            if let Some(Reverse(d)) = self.due.peek()
                && d.ts <= self.now
            {
                let Reverse(d) = self.due.pop().expect("peeked");
                self.emit(d.src, d.sport, d.dst, d.dport, d.seq, d.ack, d.flags, 0)?;
            } else if self.now >= self.next_probe && self.now < self.end {
                self.next_probe += self.t.scan_every_s * 1_000_000_000;
                self.probe()?;
            } else if self.rng.below(10_000) < u64::from(self.t.failed_per_10k) {
                self.failed_attempt()?;
            } else {
                self.step_connection()?;
            }
        }
        // What is still due: the handshakes' SYN-ACKs and ACKs (so that
        // every connection is Established), retransmissions, probe replies.
        while let Some(Reverse(d)) = self.due.pop() {
            self.now = self.now.max(d.ts);
            self.emit(d.src, d.sport, d.dst, d.dport, d.seq, d.ack, d.flags, 0)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: usize,
    ) -> io::Result<()> {
        frame(
            &mut self.buf,
            src,
            sport,
            dst,
            dport,
            seq,
            ack,
            flags,
            payload,
        );
        let wire = self.buf.len();
        let cap = self.t.snaplen.map_or(wire, |s| s.min(wire));
        self.out.write_packet(self.now, &self.buf[..cap], wire)?;
        self.written.packets += 1;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn later(
        &mut self,
        after_ns: u64,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
    ) {
        self.due_n += 1;
        self.due.push(Reverse(Due {
            ts: self.now + after_ns,
            n: self.due_n,
            src,
            sport,
            dst,
            dport,
            seq,
            ack,
            flags,
        }));
    }

    fn ephemeral(&mut self, client_index: usize) -> u16 {
        let p = &mut self.next_port[client_index];
        *p = if *p >= 60999 { 32768 } else { *p + 1 };
        *p
    }

    /// A failed attempt: the misconfigured client to the dead server, or a
    /// noisy client to one of its dead destinations; retried after 1 s and 3 s.
    fn failed_attempt(&mut self) -> io::Result<()> {
        let pick = self.rng.below(u64::from(self.t.noisy_clients) + 1) as usize;
        let (src, dst, dport) = if pick == self.noisy.len() {
            (Ipv4Addr::new(10, 1, 100, 100), DEAD_SERVER, 80)
        } else {
            let n = &mut self.noisy[pick];
            let d = n.dests[self.rng.below(n.dests.len() as u64) as usize];
            let n = &mut self.noisy[pick];
            n.tried.insert(d);
            (n.addr, d.0, d.1)
        };
        let sport = self.ephemeral(self.t.clients as usize + (pick % 256));
        let seq = self.rng.next() as u32;
        self.emit(src, sport, dst, dport, seq, 0, SYN, 0)?;
        self.later(1_000_000_000, src, sport, dst, dport, seq, 0, SYN);
        self.later(3_000_000_000, src, sport, dst, dport, seq, 0, SYN);
        self.written.failed_attempts += 1;
        Ok(())
    }

    /// One nmap-style stealth probe (R5.2): SYN; the target answers SYN-ACK
    /// on an open port (then the scanner sends RST with S + 1) or RST-ACK.
    fn probe(&mut self) -> io::Result<()> {
        let i = self.written.scan_probes as usize % self.scan_ports.len();
        let port = self.scan_ports[i];
        let seq = self.rng.next() as u32;
        self.emit(SCANNER, 54321, SCAN_TARGET, port, seq, 0, SYN, 0)?;
        let open = SERVICES.iter().any(|&(p, _)| p == port);
        let sseq = self.rng.next() as u32;
        let ack = seq.wrapping_add(1);
        if open {
            self.later(
                300_000,
                SCAN_TARGET,
                port,
                SCANNER,
                54321,
                sseq,
                ack,
                SYN | ACK,
            );
            self.later(600_000, SCANNER, 54321, SCAN_TARGET, port, ack, 0, RST);
        } else {
            self.later(
                300_000,
                SCAN_TARGET,
                port,
                SCANNER,
                54321,
                0,
                ack,
                RST | ACK,
            );
        }
        self.written.scan_probes += 1;
        self.written.failed_attempts += 1;
        Ok(())
    }

    fn new_connection(&mut self) -> Conn {
        let ci = self.rng.below(u64::from(self.t.clients)) as usize;
        let client = Ipv4Addr::new(10, 1, (ci / 250) as u8, 1 + (ci % 250) as u8);
        let server = Ipv4Addr::new(
            10,
            2,
            0,
            1 + self.rng.below(u64::from(self.t.servers)) as u8,
        );
        let total: u32 = SERVICES.iter().map(|s| s.1).sum();
        let mut r = self.rng.below(u64::from(total)) as u32;
        let mut sport = SERVICES[0].0;
        for &(p, w) in &SERVICES {
            if r < w {
                sport = p;
                break;
            }
            r -= w;
        }
        Conn {
            client,
            cport: self.ephemeral(ci),
            server,
            sport,
            cseq: self.rng.next() as u32,
            sseq: self.rng.next() as u32,
            step: 0,
            // Mostly short exchanges, now and then a bulk transfer.
            data: if self.rng.below(10) == 0 {
                40 + self.rng.below(200) as u32
            } else {
                2 + self.rng.below(12) as u32
            },
            sent: 0,
            phase_step: 0,
            ready_at: 0,
        }
    }

    /// The next packet of a random open connection (opening one if needed).
    fn step_connection(&mut self) -> io::Result<()> {
        if self.conns.len() < self.t.concurrent {
            let c = self.new_connection();
            self.conns.push(c);
        }
        let i = self.rng.below(self.conns.len() as u64) as usize;
        if self.conns[i].ready_at > self.now {
            return Ok(()); // its handshake is still in flight
        }
        self.step(i)
    }

    /// The next packet of connection `i`.
    fn step(&mut self, i: usize) -> io::Result<()> {
        let rtt = 200_000 + self.rng.below(2_000_000);
        let c = &mut self.conns[i];
        let (cl, cp, sv, sp) = (c.client, c.cport, c.server, c.sport);
        let c1 = c.cseq.wrapping_add(1);
        let s1 = c.sseq.wrapping_add(1);
        let step = c.step;
        c.step += 1;
        // 0 SYN, then one round trip later SYN-ACK and ACK (S + 1:
        // Established, R5), 3 request, then server data with a client ACK
        // every second segment, then FINs.
        let (pkt, done) = match step {
            0 => {
                c.step = 3;
                c.ready_at = self.now + 2 * rtt + 1;
                let sseq = c.sseq;
                self.written.connections += 1;
                self.later(rtt, sv, sp, cl, cp, sseq, c1, SYN | ACK);
                self.later(2 * rtt, cl, cp, sv, sp, c1, s1, ACK);
                let c = &self.conns[i];
                ((cl, cp, sv, sp, c.cseq, 0, SYN, 0), false)
            }
            3 => ((cl, cp, sv, sp, c1, s1, PSH | ACK, 180), false),
            _ if c.sent < c.data => {
                c.phase_step += 1;
                if c.phase_step.is_multiple_of(3) {
                    let acked = s1.wrapping_add(1448 * c.sent);
                    ((cl, cp, sv, sp, c1.wrapping_add(180), acked, ACK, 0), false)
                } else {
                    let seq = s1.wrapping_add(1448 * c.sent);
                    c.sent += 1;
                    (
                        (sv, sp, cl, cp, seq, c1.wrapping_add(180), PSH | ACK, 1448),
                        false,
                    )
                }
            }
            _ => {
                if c.sent == c.data {
                    // First closing packet: restart the phase counter.
                    c.sent += 1;
                    c.phase_step = 0;
                }
                let fin_step = c.phase_step;
                c.phase_step += 1;
                let cs = c1.wrapping_add(180);
                let ss = s1.wrapping_add(1448 * c.data);
                match fin_step {
                    0 => ((cl, cp, sv, sp, cs, ss, FIN | ACK, 0), false),
                    1 => (
                        (sv, sp, cl, cp, ss, cs.wrapping_add(1), FIN | ACK, 0),
                        false,
                    ),
                    _ => (
                        (
                            cl,
                            cp,
                            sv,
                            sp,
                            cs.wrapping_add(1),
                            ss.wrapping_add(1),
                            ACK,
                            0,
                        ),
                        true,
                    ),
                }
            }
        };
        if done {
            self.conns.swap_remove(i);
        }
        let (s, spt, d, dpt, seq, ack, flags, payload) = pkt;
        self.emit(s, spt, d, dpt, seq, ack, flags, payload)
    }
}
