//! Generates long (a month by default) synthetic internal networks as pcap,
//! for the tests of the default detectors (R4.5, R6.1, R6.3): ordinary IPv4
//! and IPv6 clients using servers, service outages, a monitoring host,
//! misconfigured clients, stale-bookmark clients, and slow scanners at the
//! five paces the default detectors must catch ([`Pace`]).
//!
//! Only the packets that matter are written: each connection attempt's SYN
//! (R1), its retransmissions, and for an Established attempt the client's
//! next segment with sequence S + 1 (R5); a share of the attempts also get
//! the server's reply (SYN-ACK, or RST-ACK from a closed port), which the
//! engine never consults (R3). A month is about half a million packets.
//!
//! Deterministic for a given [`Config`]. Only documentation addresses are
//! used (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32): these captures are
//! only ever replayed offline. The generator returns its ground truth (who is
//! a scanner, who is benign) and its own list of attempts ([`Attempt`]),
//! from which [`reference`] decides R5 and the service map without the
//! engine.
//!
//! Address plan (IPv4 / IPv6):
//! - servers 198.51.100.10–39 / 2001:db8:0:1::10–…, the monitoring host
//!   198.51.100.250 / 2001:db8:0:1::250;
//! - clients 198.51.100.64–159 / 2001:db8:0:2::100–…, misconfigured clients
//!   .160–179 / 2001:db8:0:2::300–…, stale-bookmark clients .180–219 /
//!   2001:db8:0:2::400–…;
//! - scanners 203.0.113.10–99 / 2001:db8:0:66::10–…;
//! - never-live hosts (nothing ever answers or establishes there):
//!   198.51.100.40–63, 203.0.113.100–254 / 2001:db8:0:1::1000–…,
//!   2001:db8:0:dead::1–….
#![allow(dead_code)]

pub mod reference;
pub mod zeek;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet},
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use slowscan::{capture::PcapWriter, frame::LinkType};
use slowscan_common::tcp::{ACK, FIN, PSH, RST, SYN};
use slowscan_testkit::frames::{Tcp, tcp_frame};

pub const SECOND_NS: u64 = 1_000_000_000;
pub const MINUTE_S: u64 = 60;
pub const HOUR_S: u64 = 3600;
pub const DAY_S: u64 = 86_400;

/// 2014-06-02T00:00:00Z, a Monday (the month before the paper's test day).
pub const MONTH_START_UNIX_S: u64 = 1_401_667_200;

/// The service-map memory and stale-bookmark bound: 30 days (R4.5).
pub const THIRTY_DAYS_S: u64 = 30 * DAY_S;

/// Eligible services (R4.3) that servers offer, by server kind; every
/// server also runs the monitoring agent (NRPE, 5666).
const SERVER_KINDS: [&[u16]; 8] = [
    &[80, 443, 22],
    &[445, 139, 22],
    &[3128, 22],
    &[25, 110, 993],
    &[515],
    &[80, 22],
    &[443],
    &[22, 21],
];
const NRPE: u16 = 5666;

/// Ports nobody serves anywhere: scanners probe them on live servers.
const CLOSED_PORTS: [u16; 20] = [
    23, 53, 69, 79, 111, 135, 143, 161, 389, 465, 512, 513, 514, 587, 873, 1433, 3306, 3389, 5900,
    8080,
];

/// Ports stale bookmarks and misconfigured clients point at.
const STALE_PORTS: [u16; 8] = [80, 443, 445, 22, 3128, 8080, 139, 515];

/// The scan paces the default detectors must catch (the product
/// requirement): probes at a fixed interval, each to a new (host, port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pace {
    /// The paper's: 12 probes 300 s apart.
    Paper,
    /// One probe every 20 minutes for 8 hours (24 probes).
    TwentyMinutes,
    /// One an hour for two days (48 probes).
    Hourly,
    /// One every 6 hours for two weeks (56 probes).
    SixHourly,
    /// One a day for a month (30 probes).
    Daily,
}

impl Pace {
    pub const ALL: [Pace; 5] = [
        Pace::Paper,
        Pace::TwentyMinutes,
        Pace::Hourly,
        Pace::SixHourly,
        Pace::Daily,
    ];

    pub fn interval_s(self) -> u64 {
        match self {
            Pace::Paper => 300,
            Pace::TwentyMinutes => 20 * MINUTE_S,
            Pace::Hourly => HOUR_S,
            Pace::SixHourly => 6 * HOUR_S,
            Pace::Daily => DAY_S,
        }
    }

    /// Probes of the whole scan (its length / interval).
    pub fn probes(self) -> u32 {
        match self {
            Pace::Paper => 12,
            Pace::TwentyMinutes => 24,
            Pace::Hourly => 48,
            Pace::SixHourly => 56,
            Pace::Daily => 30,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Pace::Paper => "12 probes 300 s apart",
            Pace::TwentyMinutes => "every 20 min for 8 h",
            Pace::Hourly => "hourly for 2 days",
            Pace::SixHourly => "every 6 h for 2 weeks",
            Pace::Daily => "daily for 30 days",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

/// What a scanner's targets look like (R1: both kinds, and mixtures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanShape {
    /// Closed ports of one live server.
    Vertical,
    /// One port over many hosts: mostly never-live addresses, every fourth
    /// a live server that does not serve that port.
    Horizontal,
    /// Random (host, port): mostly never-live hosts, every fourth a closed
    /// port of a live server.
    Mixed,
}

#[derive(Clone, Debug)]
pub struct ScanSpec {
    pub family: Family,
    pub pace: Pace,
    /// First probe, seconds after the capture's start.
    pub start_s: u64,
    pub shape: ScanShape,
}

/// How a stale-bookmark client's first tries of its dead destinations are
/// placed in time (each batch of ≤ 8 pairs lies within 30 days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Evenly over `span_s`.
    Spread { span_s: u64 },
    /// All within `within_s` (a folder of old bookmarks opened at once).
    Burst { within_s: u64 },
    /// `clusters` bursts of an hour, evenly over `span_s`.
    Clusters { clusters: u32, span_s: u64 },
}

#[derive(Clone, Debug)]
pub struct StaleSpec {
    pub family: Family,
    /// Distinct never-live (host, port) pairs per batch: at most 8.
    pub pairs: u32,
    pub placement: Placement,
    /// First try, seconds after the capture's start.
    pub start_s: u64,
    /// Later tries of the same pairs, each, within the batch's 30 days.
    pub repeats: u32,
}

/// The generator's knobs. [`Config::month`] is the full network; [`Config::quiet`]
/// has no background traffic, for hosts in isolation.
#[derive(Clone, Debug)]
pub struct Config {
    pub start_unix_s: u64,
    pub duration_s: u64,
    pub seed: u64,
    /// Servers per family (each runs 1–3 services and NRPE).
    pub servers_v4: u32,
    pub servers_v6: u32,
    /// Ordinary clients per family.
    pub clients_v4: u32,
    pub clients_v6: u32,
    /// Connections a client makes on a working day (a tenth of it at weekends).
    pub conns_per_client_day: u32,
    /// Service outages per family (needs servers): a whole server down (no
    /// replies) or one service down (RST-ACK), for 2–12 hours, from day 2 on.
    pub outages_per_family: u32,
    /// The monitoring host's polling period for every service of its
    /// family; 0: no monitoring host.
    pub monitor_every_s: u64,
    /// Misconfigured clients per family, each retrying one dead destination
    /// every 2–15 minutes for the whole capture.
    pub misconfigured_per_family: u32,
    pub stale: Vec<StaleSpec>,
    pub scans: Vec<ScanSpec>,
    /// Percentage of attempts whose reply (SYN-ACK or RST-ACK) is written.
    pub reply_percent: u64,
    /// One pcap file per this many seconds of traffic (0: one file).
    pub file_span_s: u64,
}

impl Config {
    /// Nothing but what is added to `stale` and `scans`.
    pub fn quiet(duration_s: u64) -> Config {
        Config {
            start_unix_s: MONTH_START_UNIX_S,
            duration_s,
            seed: 2014,
            servers_v4: 0,
            servers_v6: 0,
            clients_v4: 0,
            clients_v6: 0,
            conns_per_client_day: 0,
            outages_per_family: 0,
            monitor_every_s: 0,
            misconfigured_per_family: 0,
            stale: Vec::new(),
            scans: Vec::new(),
            reply_percent: 25,
            file_span_s: 0,
        }
    }

    /// The month-long network, IPv4 and IPv6: 10 + 6 servers, 40 + 12
    /// clients, 6 outages per family, a monitoring host polling every 10
    /// minutes, 3 misconfigured clients per family, 7 stale-bookmark
    /// clients, and a scanner at each required pace in each family. One pcap
    /// file per week.
    pub fn month() -> Config {
        let d = DAY_S;
        let h = HOUR_S;
        let stale = |family, pairs, placement, start_s, repeats| StaleSpec {
            family,
            pairs,
            placement,
            start_s,
            repeats,
        };
        let scan = |family, pace, start_s, shape| ScanSpec {
            family,
            pace,
            start_s,
            shape,
        };
        use Family::*;
        use Pace::*;
        use Placement::*;
        use ScanShape::*;
        Config {
            servers_v4: 10,
            servers_v6: 6,
            clients_v4: 40,
            clients_v6: 12,
            conns_per_client_day: 16,
            outages_per_family: 6,
            monitor_every_s: 600,
            misconfigured_per_family: 3,
            stale: vec![
                stale(V4, 8, Spread { span_s: 29 * d }, 5 * h, 2),
                stale(V4, 8, Burst { within_s: h }, 9 * d + 10 * h, 3),
                stale(V4, 8, Burst { within_s: 10 * 60 }, 21 * d + 15 * h, 1),
                stale(V4, 5, Spread { span_s: 20 * d }, 3 * d, 0),
                stale(
                    V6,
                    8,
                    Clusters {
                        clusters: 2,
                        span_s: 12 * d,
                    },
                    4 * d + 9 * h,
                    2,
                ),
                stale(V6, 8, Burst { within_s: h }, 16 * d + 23 * h + 30 * 60, 2),
                stale(V6, 8, Spread { span_s: 29 * d }, 11 * h, 0),
            ],
            // Start times: the paper's scan straddles an hour boundary, the
            // 20-minute one midnight, so that no clock-aligned window holds
            // them whole.
            scans: vec![
                scan(V4, Paper, 3 * d + 10 * h + 25 * 60, Vertical),
                scan(V6, Paper, 17 * d + 14 * h + 40 * 60, Horizontal),
                scan(V4, TwentyMinutes, 6 * d + 20 * h + 10 * 60, Horizontal),
                scan(V6, TwentyMinutes, 20 * d + 21 * h + 50 * 60, Mixed),
                scan(V4, Hourly, 9 * d + 13 * h + 30 * 60, Mixed),
                scan(V6, Hourly, 22 * d + 3 * h, Vertical),
                scan(V4, SixHourly, d + 5 * h, Mixed),
                scan(V6, SixHourly, 12 * d + 2 * h + 15 * 60, Horizontal),
                scan(V4, Daily, 7 * h + 20 * 60, Horizontal),
                scan(V6, Daily, 16 * h + 45 * 60, Mixed),
            ],
            file_span_s: 7 * d,
            ..Config::quiet(30 * d)
        }
    }
}

/// Who a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Client,
    Monitor,
    Misconfigured,
    StaleBookmarks,
    Scanner(Pace),
}

impl Role {
    pub fn is_scanner(self) -> bool {
        matches!(self, Role::Scanner(_))
    }

    pub fn label(self) -> String {
        match self {
            Role::Client => "client".into(),
            Role::Monitor => "monitor".into(),
            Role::Misconfigured => "misconfigured".into(),
            Role::StaleBookmarks => "stale bookmarks".into(),
            Role::Scanner(p) => format!("scanner {}", p.label()),
        }
    }
}

/// A segment the connecting host sends after its SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub at_ns: u64,
    pub seq: u32,
    pub flags: u8,
}

/// The destination's answer to the SYN (written for a share of attempts;
/// never consulted by the method, R3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    None,
    SynAck,
    RstAck,
}

/// One connection attempt as written to the capture: the generator's own
/// connection list.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub syn_ns: u64,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub seq: u32,
    /// SYN retransmissions (same 5-tuple and sequence), after the first SYN.
    pub retransmit_after_ns: &'static [u64],
    /// The client's next segment (an Established attempt's ACK with S + 1).
    pub follow_up: Option<Segment>,
    pub reply: Reply,
}

/// A scanner of the ground truth.
#[derive(Clone, Debug)]
pub struct ScannerTruth {
    pub addr: IpAddr,
    pub pace: Pace,
    pub shape: ScanShape,
    pub first_probe_ns: u64,
    /// Probes written (fewer than the pace's when the capture ends first).
    pub probes: u32,
}

/// An outage of the ground truth.
#[derive(Clone, Debug)]
pub struct Outage {
    pub server: IpAddr,
    /// The services down (all the server's when the host is down).
    pub ports: Vec<u16>,
    pub host_down: bool,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// What was generated.
#[derive(Clone, Debug)]
pub struct Network {
    pub config: Config,
    /// The pcap files, in time order (one continuous stream).
    pub files: Vec<PathBuf>,
    pub packets: u64,
    pub bytes: u64,
    /// Every attempt, in SYN order.
    pub attempts: Vec<Attempt>,
    /// Every source that made an attempt, and its role.
    pub hosts: BTreeMap<IpAddr, Role>,
    pub scanners: Vec<ScannerTruth>,
    pub outages: Vec<Outage>,
    /// Live services (server, port) by family.
    pub services: Vec<(IpAddr, u16)>,
}

impl Network {
    pub fn scanner_addrs(&self) -> BTreeSet<IpAddr> {
        self.scanners.iter().map(|s| s.addr).collect()
    }

    pub fn benign_addrs(&self) -> BTreeSet<IpAddr> {
        self.hosts
            .iter()
            .filter(|(_, r)| !r.is_scanner())
            .map(|(&a, _)| a)
            .collect()
    }

    pub fn addrs_with_role(&self, role: Role) -> BTreeSet<IpAddr> {
        self.hosts
            .iter()
            .filter(|&(_, &r)| r == role)
            .map(|(&a, _)| a)
            .collect()
    }

    pub fn start_ns(&self) -> u64 {
        self.config.start_unix_s * SECOND_NS
    }
}

/// Generates the network described by `cfg` into `dir` (files
/// `longnet-NNN.pcap`).
pub fn generate(dir: &Path, cfg: &Config) -> io::Result<Network> {
    let mut b = Builder::new(cfg);
    b.build();
    let mut net = Network {
        config: cfg.clone(),
        files: Vec::new(),
        packets: 0,
        bytes: 0,
        attempts: std::mem::take(&mut b.attempts),
        hosts: std::mem::take(&mut b.hosts),
        scanners: std::mem::take(&mut b.scanners),
        outages: std::mem::take(&mut b.outages),
        services: b.servers.iter().flat_map(|s| s.services()).collect(),
    };
    // SYN order; ties keep generation order (deterministic).
    net.attempts.sort_by_key(|a| a.syn_ns);
    write_pcaps(dir, &mut net, &mut b.rng)?;
    Ok(net)
}

/// splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

fn v4(net: u8, host: u8) -> IpAddr {
    match net {
        0 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, host)),
        _ => IpAddr::V4(Ipv4Addr::new(203, 0, 113, host)),
    }
}

fn v6(subnet: u16, host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, subnet, 0, 0, 0, host))
}

fn server_addr(f: Family, j: u32) -> IpAddr {
    match f {
        Family::V4 => v4(0, 10 + j as u8),
        Family::V6 => v6(1, 0x10 + j as u16),
    }
}

fn monitor_addr(f: Family) -> IpAddr {
    match f {
        Family::V4 => v4(0, 250),
        Family::V6 => v6(1, 0x250),
    }
}

fn client_addr(f: Family, i: u32) -> IpAddr {
    match f {
        Family::V4 => v4(0, 64 + i as u8),
        Family::V6 => v6(2, 0x100 + i as u16),
    }
}

fn misconfigured_addr(f: Family, i: u32) -> IpAddr {
    match f {
        Family::V4 => v4(0, 160 + i as u8),
        Family::V6 => v6(2, 0x300 + i as u16),
    }
}

fn stale_addr(f: Family, i: u32) -> IpAddr {
    match f {
        Family::V4 => v4(0, 180 + i as u8),
        Family::V6 => v6(2, 0x400 + i as u16),
    }
}

fn scanner_addr(f: Family, k: u32) -> IpAddr {
    match f {
        Family::V4 => v4(1, 10 + k as u8),
        Family::V6 => v6(0x66, 0x10 + k as u16),
    }
}

/// The n-th never-live host of a family (178 for IPv4, 65,534 for IPv6).
fn dead_host(f: Family, n: u64) -> IpAddr {
    match f {
        Family::V4 => {
            let n = n % 178;
            if n < 24 {
                v4(0, 40 + n as u8)
            } else {
                v4(1, 100 + (n - 24) as u8)
            }
        }
        Family::V6 => {
            let n = n % 65_534;
            if n.is_multiple_of(2) {
                v6(1, 0x1000 + (n / 2) as u16)
            } else {
                v6(0xdead, 1 + (n / 2) as u16)
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Server {
    addr: IpAddr,
    family: Family,
    ports: Vec<u16>,
}

impl Server {
    fn services(&self) -> impl Iterator<Item = (IpAddr, u16)> + '_ {
        self.ports.iter().map(|&p| (self.addr, p))
    }
}

const NO_RETRANSMIT: &[u64] = &[];
/// A client's SYN retransmissions (1 s, then 2 s later).
const RETRANSMITS: &[u64] = &[SECOND_NS, 3 * SECOND_NS];

struct Builder {
    cfg: Config,
    rng: Rng,
    start: u64,
    end: u64,
    servers: Vec<Server>,
    attempts: Vec<Attempt>,
    hosts: BTreeMap<IpAddr, Role>,
    scanners: Vec<ScannerTruth>,
    outages: Vec<Outage>,
    next_port: BTreeMap<IpAddr, u16>,
}

impl Builder {
    fn new(cfg: &Config) -> Builder {
        let start = cfg.start_unix_s * SECOND_NS;
        Builder {
            cfg: cfg.clone(),
            rng: Rng::new(cfg.seed),
            start,
            end: start + cfg.duration_s * SECOND_NS,
            servers: Vec::new(),
            attempts: Vec::new(),
            hosts: BTreeMap::new(),
            scanners: Vec::new(),
            outages: Vec::new(),
            next_port: BTreeMap::new(),
        }
    }

    fn families(&self) -> [(Family, u32, u32); 2] {
        [
            (Family::V4, self.cfg.servers_v4, self.cfg.clients_v4),
            (Family::V6, self.cfg.servers_v6, self.cfg.clients_v6),
        ]
    }

    fn build(&mut self) {
        for (f, servers, _) in self.families() {
            for j in 0..servers {
                let kind = SERVER_KINDS[(j as usize + f as usize * 3) % SERVER_KINDS.len()];
                let mut ports = kind.to_vec();
                ports.push(NRPE);
                self.servers.push(Server {
                    addr: server_addr(f, j),
                    family: f,
                    ports,
                });
            }
        }
        self.plan_outages();
        for (f, _, clients) in self.families() {
            for i in 0..clients {
                self.client(client_addr(f, i), f, Role::Client);
            }
            if self.cfg.monitor_every_s > 0 && self.servers.iter().any(|s| s.family == f) {
                self.monitor(f);
            }
            for i in 0..self.cfg.misconfigured_per_family {
                self.misconfigured(f, i);
            }
        }
        let stale = self.cfg.stale.clone();
        let mut per_family = [0u32; 2];
        for spec in &stale {
            let i = &mut per_family[spec.family as usize];
            self.stale(spec, stale_addr(spec.family, *i));
            *i += 1;
        }
        let scans = self.cfg.scans.clone();
        let mut per_family = [0u32; 2];
        for spec in &scans {
            let k = &mut per_family[spec.family as usize];
            self.scanner(spec, scanner_addr(spec.family, *k));
            *k += 1;
        }
        // Hosts are the sources that made an attempt.
        let sources: HashSet<IpAddr> = self.attempts.iter().map(|a| a.src).collect();
        self.hosts.retain(|a, _| sources.contains(a));
    }

    fn ns(&self, offset_s: u64) -> u64 {
        self.start + offset_s * SECOND_NS
    }

    fn sport(&mut self, src: IpAddr) -> u16 {
        let p = self.next_port.entry(src).or_insert(32768);
        *p = if *p >= 60999 { 32768 } else { *p + 1 };
        *p
    }

    /// Records an attempt at `t` (dropped when past the end). `established`:
    /// the client's ACK (now and then PSH+ACK or FIN+ACK) with S + 1 follows
    /// one round trip later (R5).
    fn attempt(&mut self, t: u64, src: IpAddr, dst: IpAddr, dport: u16, outcome: Outcome) {
        if t >= self.end || t < self.start {
            return;
        }
        let sport = self.sport(src);
        // Now and then the ISN sits at the wrap (S + 1 = 0, mod 2^32).
        let seq = if self.rng.below(2000) == 0 {
            u32::MAX
        } else {
            self.rng.next() as u32
        };
        let write_reply = self.rng.percent(self.cfg.reply_percent);
        let (retransmit_after_ns, follow_up, reply) = match outcome {
            Outcome::Established => {
                let rtt = 150_000 + self.rng.below(3_000_000);
                let flags = match self.rng.below(50) {
                    0..=44 => ACK,
                    45..=48 => PSH | ACK,
                    _ => FIN | ACK,
                };
                let seg = Segment {
                    at_ns: t + rtt,
                    seq: seq.wrapping_add(1),
                    flags,
                };
                (NO_RETRANSMIT, Some(seg), Reply::SynAck)
            }
            Outcome::Failed { retransmit, reply } => (
                if retransmit {
                    RETRANSMITS
                } else {
                    NO_RETRANSMIT
                },
                None,
                reply,
            ),
        };
        self.attempts.push(Attempt {
            syn_ns: t,
            src,
            sport,
            dst,
            dport,
            seq,
            retransmit_after_ns,
            follow_up,
            reply: if write_reply { reply } else { Reply::None },
        });
    }

    /// The outage covering (dst, port) at `t`, if any.
    fn down(&self, dst: IpAddr, port: u16, t: u64) -> Option<&Outage> {
        self.outages
            .iter()
            .find(|o| o.server == dst && o.ports.contains(&port) && o.start_ns <= t && t < o.end_ns)
    }

    /// Connects from `src` to a service at `t`: Established unless the
    /// service is down; then the SYN is retransmitted, and the client tries
    /// again 30–90 s later, twice at most.
    fn use_service(&mut self, t: u64, src: IpAddr, dst: IpAddr, port: u16, retries: u32) {
        match self.down(dst, port, t).map(|o| o.host_down) {
            None => self.attempt(t, src, dst, port, Outcome::Established),
            Some(host_down) => {
                let reply = if host_down {
                    Reply::None
                } else {
                    Reply::RstAck
                };
                self.attempt(
                    t,
                    src,
                    dst,
                    port,
                    Outcome::Failed {
                        retransmit: host_down,
                        reply,
                    },
                );
                if retries > 0 {
                    let again = t + self.rng.range(30, 90) * SECOND_NS;
                    self.use_service(again, src, dst, port, retries - 1);
                }
            }
        }
    }

    fn plan_outages(&mut self) {
        let days = self.cfg.duration_s / DAY_S;
        if days < 4 {
            return;
        }
        for f in [Family::V4, Family::V6] {
            let servers: Vec<Server> = self
                .servers
                .iter()
                .filter(|s| s.family == f)
                .cloned()
                .collect();
            if servers.is_empty() {
                continue;
            }
            for n in 0..self.cfg.outages_per_family {
                // Distinct servers while there are enough (7 is prime to 6 and 10).
                let s = &servers[(n as usize * 7 + 1) % servers.len()];
                // From day 2 on: every service was in use (and Established)
                // before it went down, so each outage hits a live service.
                let day = 2 + self.rng.below(days - 3);
                let at = day * DAY_S + self.rng.below(DAY_S);
                let start = self.ns(at);
                let len = self.rng.range(2 * HOUR_S, 12 * HOUR_S) * SECOND_NS;
                let host_down = n % 2 == 0;
                let ports = if host_down {
                    s.ports.clone()
                } else {
                    let main: Vec<u16> = s.ports.iter().copied().filter(|&p| p != NRPE).collect();
                    vec![main[self.rng.below(main.len() as u64) as usize]]
                };
                self.outages.push(Outage {
                    server: s.addr,
                    ports,
                    host_down,
                    start_ns: start,
                    end_ns: (start + len).min(self.end),
                });
            }
        }
    }

    /// An ordinary client: a few favourite services, used in working hours
    /// (07:30–19:00 UTC) on weekdays, a tenth as much at weekends.
    fn client(&mut self, addr: IpAddr, f: Family, role: Role) {
        self.hosts.insert(addr, role);
        let services: Vec<(IpAddr, u16)> = self
            .servers
            .iter()
            .filter(|s| s.family == f)
            .flat_map(|s| s.services())
            .filter(|&(_, p)| p != NRPE)
            .collect();
        if services.is_empty() || self.cfg.conns_per_client_day == 0 {
            return;
        }
        let favourites: Vec<(IpAddr, u16)> = (0..2 + self.rng.below(4))
            .map(|_| services[self.rng.below(services.len() as u64) as usize])
            .collect();
        let days = self.cfg.duration_s.div_ceil(DAY_S);
        let per_day = u64::from(self.cfg.conns_per_client_day);
        for d in 0..days {
            let day_start = self.cfg.start_unix_s + d * DAY_S;
            // 1970-01-01 was a Thursday: Monday = 0.
            let weekday = (day_start / DAY_S + 3) % 7;
            let n = if weekday < 5 {
                self.rng.range(per_day / 2, per_day * 3 / 2 + 1)
            } else {
                self.rng.below(per_day / 10 + 2)
            };
            for _ in 0..n {
                let at = d * DAY_S * SECOND_NS
                    + self.rng.range(7 * HOUR_S + 1800, 19 * HOUR_S) * SECOND_NS
                    + self.rng.below(SECOND_NS);
                let (dst, port) = favourites[self.rng.below(favourites.len() as u64) as usize];
                self.use_service(self.start + at, addr, dst, port, 2);
            }
        }
    }

    /// Polls every service of its family every `monitor_every_s`, staggered
    /// over the period; a poll of a service that is down fails.
    fn monitor(&mut self, f: Family) {
        let addr = monitor_addr(f);
        self.hosts.insert(addr, Role::Monitor);
        let services: Vec<(IpAddr, u16)> = self
            .servers
            .iter()
            .filter(|s| s.family == f)
            .flat_map(|s| s.services())
            .collect();
        let period = self.cfg.monitor_every_s * SECOND_NS;
        let step = period / services.len() as u64;
        let mut cycle = self.start + self.rng.below(SECOND_NS);
        while cycle < self.end {
            for (k, &(dst, port)) in services.iter().enumerate() {
                let t = cycle + k as u64 * step + self.rng.below(50_000_000);
                self.use_service(t, addr, dst, port, 0);
            }
            cycle += period;
        }
    }

    /// A client (with ordinary traffic too) retrying one dead destination
    /// every 2–15 minutes for the whole capture: a never-live server, a
    /// never-live proxy (3128), or a port nobody serves on a live server.
    fn misconfigured(&mut self, f: Family, i: u32) {
        let addr = misconfigured_addr(f, i);
        self.client(addr, f, Role::Misconfigured);
        let live: Vec<IpAddr> = self
            .servers
            .iter()
            .filter(|s| s.family == f)
            .map(|s| s.addr)
            .collect();
        let (dst, port, reply) = match (i % 3, live.is_empty()) {
            (2, false) => (live[i as usize % live.len()], 8080, Reply::RstAck),
            (1, _) => (dead_host(f, 30 + u64::from(i)), 3128, Reply::None),
            _ => (dead_host(f, u64::from(i)), 80, Reply::None),
        };
        let period = [120, 300, 600, 900][(i % 4) as usize] * SECOND_NS;
        let mut t = self.start + self.rng.below(period);
        while t < self.end {
            self.attempt(
                t,
                addr,
                dst,
                port,
                Outcome::Failed {
                    retransmit: reply == Reply::None,
                    reply,
                },
            );
            t += period + self.rng.below(10 * SECOND_NS);
        }
    }

    /// A client (with ordinary traffic too) whose old bookmarks point at
    /// never-live destinations: batches of `pairs` distinct pairs, each
    /// batch within 30 days, the next one starting 30 days after the
    /// previous one's last try (so any 30 days hold at most one batch).
    fn stale(&mut self, spec: &StaleSpec, addr: IpAddr) {
        assert!(spec.pairs <= 8, "stale-bookmark clients fail on ≤ 8 pairs");
        self.client(addr, spec.family, Role::StaleBookmarks);
        let mut batch_start = spec.start_s * SECOND_NS;
        let mut used = HashSet::new();
        let end_rel = self.end - self.start;
        while batch_start < end_rel {
            let mut pairs = Vec::new();
            while pairs.len() < spec.pairs as usize {
                let host = dead_host(spec.family, self.rng.below(10_000));
                let port = STALE_PORTS[self.rng.below(STALE_PORTS.len() as u64) as usize];
                if used.insert((host, port)) {
                    pairs.push((host, port));
                }
            }
            let firsts: Vec<u64> = match spec.placement {
                Placement::Spread { span_s } => (0..spec.pairs)
                    .map(|k| {
                        let slot = span_s * SECOND_NS / u64::from(spec.pairs);
                        u64::from(k) * slot + self.rng.below(slot / 2)
                    })
                    .collect(),
                Placement::Burst { within_s } => (0..spec.pairs)
                    .map(|_| self.rng.below(within_s * SECOND_NS))
                    .collect(),
                Placement::Clusters { clusters, span_s } => (0..spec.pairs)
                    .map(|k| {
                        let c = u64::from(k % clusters);
                        c * (span_s * SECOND_NS / u64::from(clusters))
                            + self.rng.below(HOUR_S * SECOND_NS)
                    })
                    .collect(),
            };
            let first_last = *firsts.iter().max().unwrap_or(&0);
            // Repeats fall between a pair's first try and the batch's last
            // first try plus a day, all within 30 days of the batch start.
            let limit = (first_last + DAY_S * SECOND_NS).min(29 * DAY_S * SECOND_NS);
            let mut last = 0;
            for (k, &(host, port)) in pairs.iter().enumerate() {
                let mut times = vec![firsts[k]];
                for _ in 0..spec.repeats {
                    times.push(self.rng.range(firsts[k], limit.max(firsts[k] + 1)));
                }
                for rel in times {
                    let t = self.start + batch_start + rel;
                    last = last.max(batch_start + rel);
                    self.attempt(
                        t,
                        addr,
                        host,
                        port,
                        Outcome::Failed {
                            retransmit: true,
                            reply: Reply::None,
                        },
                    );
                }
            }
            batch_start = last + THIRTY_DAYS_S * SECOND_NS + HOUR_S * SECOND_NS;
        }
    }

    /// One probe every `pace.interval_s()` (exactly; a sub-millisecond
    /// jitter), each to a new (host, port): nmap-style SYN stealth probes
    /// (R5.2), answered RST-ACK by a live server's closed port, by nothing
    /// at a never-live address.
    fn scanner(&mut self, spec: &ScanSpec, addr: IpAddr) {
        let f = spec.family;
        let live: Vec<Server> = self
            .servers
            .iter()
            .filter(|s| s.family == f)
            .cloned()
            .collect();
        // A live server to scan; with no servers, a host that is
        // a server in the full network (it is then just never live).
        let victim = live.first().cloned().unwrap_or(Server {
            addr: server_addr(f, 0),
            family: f,
            ports: Vec::new(),
        });
        let closed = |s: &Server, n: u64| -> u16 {
            let candidates: Vec<u16> = CLOSED_PORTS
                .iter()
                .copied()
                .chain(1..=1023)
                .filter(|p| !s.ports.contains(p))
                .collect();
            candidates[n as usize % candidates.len()]
        };
        let port = [445, 22, 3389, 80][self.scanners.len() % 4];
        let mut seen = HashSet::new();
        let mut probes = 0;
        let first = self.ns(spec.start_s) + self.rng.below(SECOND_NS / 1000);
        for i in 0..u64::from(spec.pace.probes()) {
            let t = first + i * spec.pace.interval_s() * SECOND_NS;
            if t >= self.end {
                break;
            }
            let (dst, dport, reply) = loop {
                let n = self.rng.below(1 << 20);
                let on_live = !live.is_empty() && self.rng.below(4) == 0;
                let target = match spec.shape {
                    ScanShape::Vertical => (victim.addr, closed(&victim, n), Reply::RstAck),
                    ScanShape::Horizontal if on_live => {
                        let s = &live[n as usize % live.len()];
                        if s.ports.contains(&port) {
                            continue;
                        }
                        (s.addr, port, Reply::RstAck)
                    }
                    ScanShape::Horizontal => (dead_host(f, n), port, Reply::None),
                    ScanShape::Mixed if on_live => {
                        let s = &live[n as usize % live.len()];
                        (s.addr, closed(s, n / 7), Reply::RstAck)
                    }
                    ScanShape::Mixed => (dead_host(f, n), closed(&victim, n / 3), Reply::None),
                };
                if seen.insert((target.0, target.1)) {
                    break target;
                }
            };
            self.attempt(
                t,
                addr,
                dst,
                dport,
                Outcome::Failed {
                    retransmit: false,
                    reply,
                },
            );
            probes += 1;
        }
        if probes > 0 {
            self.hosts.insert(addr, Role::Scanner(spec.pace));
            self.scanners.push(ScannerTruth {
                addr,
                pace: spec.pace,
                shape: spec.shape,
                first_probe_ns: first,
                probes,
            });
        }
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Established,
    Failed { retransmit: bool, reply: Reply },
}

/// A packet due later than its attempt's SYN.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    ts: u64,
    n: u64,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    /// The frame's source MAC.
    mac: [u8; 6],
}

struct Files {
    dir: PathBuf,
    /// File names: `{name}-NNN.pcap`.
    name: String,
    start: u64,
    span: u64,
    current: Option<(u64, PcapWriter<io::BufWriter<std::fs::File>>)>,
    paths: Vec<PathBuf>,
    buf: Vec<u8>,
    packets: u64,
}

impl Files {
    fn write(&mut self, d: &Due) -> io::Result<()> {
        let index =
            d.ts.saturating_sub(self.start)
                .checked_div(self.span)
                .unwrap_or(0);
        if self.current.as_ref().is_none_or(|(i, _)| *i != index) {
            self.close()?;
            let path = self.dir.join(format!("{}-{index:03}.pcap", self.name));
            let w = PcapWriter::create(&path, LinkType::Ethernet)?;
            self.paths.push(path);
            self.current = Some((index, w));
        }
        frame_with_mac(
            &mut self.buf,
            d.mac,
            d.src,
            d.sport,
            d.dst,
            d.dport,
            d.seq,
            d.ack,
            d.flags,
        );
        let (_, w) = self.current.as_mut().expect("opened");
        w.write_packet(d.ts, &self.buf, self.buf.len())?;
        self.packets += 1;
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some((_, w)) = self.current.take() {
            w.finish()?;
        }
        Ok(())
    }
}

fn write_pcaps(dir: &Path, net: &mut Network, rng: &mut Rng) -> io::Result<()> {
    let c = write_capture(
        dir,
        "longnet",
        net.start_ns(),
        net.config.file_span_s * SECOND_NS,
        &net.attempts,
        |k| host_mac(net.attempts[k].src),
        rng,
    )?;
    net.packets = c.packets;
    net.bytes = c.bytes;
    net.files = c.files;
    Ok(())
}

/// Pcap files written by [`write_capture`].
#[derive(Clone, Debug)]
pub struct Capture {
    /// In time order (one continuous stream).
    pub files: Vec<PathBuf>,
    pub packets: u64,
    pub bytes: u64,
}

/// Writes `attempts` (in SYN order) as pcap files `{name}-NNN.pcap` in
/// `dir`, one per `file_span_ns` from `start_ns` (0: one file): each
/// attempt's SYN and retransmissions and its follow-up from the MAC
/// `mac_of(index)`, and its reply (if any) from the destination's
/// [`host_mac`].
pub fn write_capture(
    dir: &Path,
    name: &str,
    start_ns: u64,
    file_span_ns: u64,
    attempts: &[Attempt],
    mac_of: impl Fn(usize) -> [u8; 6],
    rng: &mut Rng,
) -> io::Result<Capture> {
    let mut files = Files {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        start: start_ns,
        span: file_span_ns,
        current: None,
        paths: Vec::new(),
        buf: Vec::with_capacity(128),
        packets: 0,
    };
    let mut due: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
    let mut n = 0u64;
    let mut push = |due: &mut BinaryHeap<Reverse<Due>>, d: Due| {
        n += 1;
        due.push(Reverse(Due { n, ..d }));
    };
    for (k, a) in attempts.iter().enumerate() {
        while let Some(Reverse(d)) = due.peek()
            && d.ts <= a.syn_ns
        {
            let Reverse(d) = due.pop().expect("peeked");
            files.write(&d)?;
        }
        let syn = Due {
            ts: a.syn_ns,
            n: 0,
            src: a.src,
            sport: a.sport,
            dst: a.dst,
            dport: a.dport,
            seq: a.seq,
            ack: 0,
            flags: SYN,
            mac: mac_of(k),
        };
        files.write(&syn)?;
        for &after in a.retransmit_after_ns {
            push(
                &mut due,
                Due {
                    ts: a.syn_ns + after,
                    ..syn
                },
            );
        }
        let server_isn = rng.next() as u32;
        let half_rtt = a
            .follow_up
            .map_or(400_000, |f| (f.at_ns - a.syn_ns) / 2)
            .max(1);
        let reply = |flags, seq| Due {
            ts: a.syn_ns + half_rtt,
            n: 0,
            src: a.dst,
            sport: a.dport,
            dst: a.src,
            dport: a.sport,
            seq,
            ack: a.seq.wrapping_add(1),
            flags,
            mac: host_mac(a.dst),
        };
        match a.reply {
            Reply::None => {}
            Reply::SynAck => push(&mut due, reply(SYN | ACK, server_isn)),
            Reply::RstAck => push(&mut due, reply(RST | ACK, 0)),
        }
        if let Some(f) = a.follow_up {
            push(
                &mut due,
                Due {
                    ts: f.at_ns,
                    seq: f.seq,
                    ack: server_isn.wrapping_add(1),
                    flags: f.flags,
                    ..syn
                },
            );
        }
    }
    while let Some(Reverse(d)) = due.pop() {
        files.write(&d)?;
    }
    files.close()?;
    let bytes = files
        .paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()))
        .sum::<io::Result<u64>>()?;
    Ok(Capture {
        files: files.paths,
        packets: files.packets,
        bytes,
    })
}

/// An Ethernet + IPv4 or IPv6 + TCP frame (no options, no payload) into
/// `buf`: the test kit's frame, from the host's own MAC ([`host_mac`]).
#[allow(clippy::too_many_arguments)]
pub fn frame(
    buf: &mut Vec<u8>,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) {
    // Every host its own MAC (R9 counts a host on the segment under it).
    frame_with_mac(buf, host_mac(src), src, sport, dst, dport, seq, ack, flags);
}

/// [`frame`] from the source MAC `mac` (a router's, or a host's whose
/// addresses change).
#[allow(clippy::too_many_arguments)]
pub fn frame_with_mac(
    buf: &mut Vec<u8>,
    mac: [u8; 6],
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) {
    let t = Tcp {
        ack,
        ..Tcp::new(flags, seq).ports(sport, dport)
    };
    buf.clear();
    buf.extend_from_slice(&tcp_frame(src, dst, &t));
    buf[6..12].copy_from_slice(&mac);
}

/// A locally administered MAC of the host with address `ip`.
pub fn host_mac(ip: IpAddr) -> [u8; 6] {
    let h = match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
        }
    };
    let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let b = h.to_be_bytes();
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}
