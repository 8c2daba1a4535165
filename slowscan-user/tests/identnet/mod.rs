//! Generates month-long synthetic networks whose hosts change address, as
//! pcap, for the tests of who a source is (R9): three IPv6 LANs in
//! unique-local space whose hosts take a new temporary address every day
//! (RFC 8981), dual-stack IPv4 hosts whose DHCP lease moves them within their
//! /24 a few times a month, and scanners that change address — an internal
//! host every 6 h for 14 days, another every 2 h for 5 days, an internal
//! IPv4 host once a day for 30 days across its DHCP moves, an outside
//! scanner with a fresh address of its /64 per probe — beside a control, an
//! outside scanner with one stable address.
//!
//! Frames, pcap files and the random numbers are `longnet`'s
//! ([`write_capture`], [`Rng`]); what is new here is whose MAC each frame
//! carries and which address a host uses when.
//!
//! Address plan (all inside the default home networks except the outside
//! hosts):
//! - LAN k (1–3): fd00:10:k::/64 and 10.0.k.0/24. LAN 1 holds the servers
//!   (fd00:10:1::10+j, 10.0.1.10+j) and the monitoring host (::250, .250);
//!   clients take temporary addresses in their /64 and DHCP leases in
//!   10.0.k.20–199; never-live hosts are fd00:10:k::d000+n, 10.0.k.200–239
//!   (scanners) and fd00:10:k::e000+n, 10.0.k.241–246 (stale bookmarks). Every host on the
//!   segment sends from its own MAC, 02-10-00-0k-00-ii.
//! - Behind the router (MAC 02-EE-00-00-00-01, frames carrying every source
//!   below): a routed LAN fd00:10:9::/64 and 10.0.9.0/24 (stable
//!   addresses), an outside partner polling a server every hour
//!   (2001:db8:c0:1::5), outside clients (2001:db8:c1:N::/64 with daily
//!   temporary addresses; 203.0.113.x), the rotating outside scanner
//!   (2001:db8:bad:1::/64) and the control (2001:db8:beef:2::7).
#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use slowscan_common::tcp::{ACK, FIN, PSH};

use super::longnet::{
    Attempt, DAY_S, HOUR_S, MINUTE_S, MONTH_START_UNIX_S, Reply, Rng, SECOND_NS, Segment,
    write_capture,
};

/// The router's MAC: it forwards the routed LAN's and the outside's traffic
/// onto the segment.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0xee, 0, 0, 0, 1];
/// The rotating outside scanner's /64.
pub const OUTSIDE_SCANNER_NET: &str = "2001:db8:bad:1::/64";
/// The control: an outside scanner with one stable address.
pub const CONTROL_ADDR: &str = "2001:db8:beef:2::7";

const SERVICES: [&[u16]; 3] = [&[80, 443, 22], &[445, 139], &[25, 993, 3128]];
const NRPE: u16 = 5666;
/// Ports no server serves: scanners probe them on live servers.
const CLOSED_PORTS: [u16; 16] = [
    23, 53, 111, 135, 143, 161, 389, 465, 587, 873, 1433, 3306, 3389, 5900, 8080, 21,
];
const STALE_PORTS: [u16; 4] = [80, 443, 445, 22];
const RETRANSMITS: &[u64] = &[SECOND_NS, 3 * SECOND_NS];

/// The address-changing scanners and the control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScannerKind {
    /// A LAN 2 host, one probe every 6 h for 14 days, IPv6 temporary
    /// addresses (a new one daily).
    SixHourly,
    /// A LAN 3 host, one probe every 2 h for 5 days, IPv6 temporary
    /// addresses.
    TwoHourly,
    /// A LAN 3 host, one IPv4 probe a day for 30 days, moved by DHCP every
    /// 5–8 days.
    DailyDhcp,
    /// Outside, a fresh address of 2001:db8:bad:1::/64 per probe, every
    /// 30 min for 3 days, through the router.
    OutsideRotating,
    /// Outside, one stable address, every 20 min for 8 h, through the
    /// router (the control: it alerts counted either way).
    OutsideStable,
}

impl ScannerKind {
    pub const ALL: [ScannerKind; 5] = [
        ScannerKind::SixHourly,
        ScannerKind::TwoHourly,
        ScannerKind::DailyDhcp,
        ScannerKind::OutsideRotating,
        ScannerKind::OutsideStable,
    ];

    /// (first probe after the start, interval, probes), in seconds.
    fn plan(self) -> (u64, u64, u32) {
        let (d, h, m) = (DAY_S, HOUR_S, MINUTE_S);
        match self {
            ScannerKind::SixHourly => (3 * d + 5 * h + 17 * m + 13, 6 * h, 56),
            ScannerKind::TwoHourly => (18 * d + 9 * h + 41 * m, 2 * h, 60),
            ScannerKind::DailyDhcp => (7 * h + 20 * m, d, 30),
            ScannerKind::OutsideRotating => (24 * d + 3 * h + 10 * m, 30 * m, 144),
            ScannerKind::OutsideStable => (12 * d + 21 * h + 50 * m, 20 * m, 24),
        }
    }

    /// Does the scanner change its source address?
    pub fn changes_address(self) -> bool {
        self != ScannerKind::OutsideStable
    }
}

/// Who a host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Client,
    Monitor,
    /// A client retrying one dead destination every 10 minutes all month.
    Retrier,
    /// A client failing a few never-live pairs now and then.
    StaleBookmarks,
    /// A host behind the router (counted by address).
    Routed,
    /// A host outside the home networks using a server.
    Outside,
    /// The router itself (it has no addresses of its own here).
    Router,
    Scanner(ScannerKind),
}

impl Role {
    pub fn is_scanner(self) -> bool {
        matches!(self, Role::Scanner(_))
    }
}

/// One source of the ground truth.
#[derive(Clone, Debug)]
pub struct HostTruth {
    pub name: String,
    pub role: Role,
    /// The MAC of its frames (the router's for routed and outside hosts).
    pub mac: [u8; 6],
    /// What R9 counts it under with the defaults, as the alert's
    /// `slowscan.source.identity` writes it.
    pub identity: String,
    /// `mac`, `address` or `prefix`.
    pub kind: &'static str,
    /// Every source address of its attempts.
    pub addresses: BTreeSet<IpAddr>,
}

/// What was generated.
#[derive(Clone, Debug)]
pub struct Network {
    pub files: Vec<PathBuf>,
    pub packets: u64,
    pub bytes: u64,
    pub attempts: u64,
    pub established: u64,
    pub hosts: Vec<HostTruth>,
    /// IPv4 address moves (DHCP) of the hosts on the segment, and distinct
    /// IPv6 temporary addresses, over the month.
    pub dhcp_moves: u32,
    pub temporary_addresses: u32,
}

impl Network {
    pub fn scanner(&self, kind: ScannerKind) -> &HostTruth {
        self.hosts
            .iter()
            .find(|h| h.role == Role::Scanner(kind))
            .expect("every scanner is generated")
    }

    /// The host counted under `identity` (defaults) or using `ip`.
    pub fn who(&self, identity: &str, ip: Option<IpAddr>) -> String {
        self.hosts
            .iter()
            .find(|h| h.identity == identity || ip.is_some_and(|ip| h.addresses.contains(&ip)))
            .map_or_else(
                || format!("{identity} (unknown)"),
                |h| format!("{} ({:?})", h.name, h.role),
            )
    }
}

/// The month's knobs.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub duration_s: u64,
    /// Clients per LAN (on LAN 1 beside the servers and the monitor).
    pub clients_per_lan: u32,
    /// Connections a client makes on a working day (a tenth at weekends).
    pub conns_per_client_day: u32,
    pub monitor_every_s: u64,
    pub reply_percent: u64,
    pub file_span_s: u64,
}

impl Config {
    pub fn month() -> Config {
        Config {
            seed: 8981,
            duration_s: 30 * DAY_S,
            clients_per_lan: 6,
            conns_per_client_day: 12,
            monitor_every_s: 30 * MINUTE_S,
            reply_percent: 25,
            file_span_s: 10 * DAY_S,
        }
    }
}

/// How a host on the segment gets its addresses.
#[derive(Clone, Debug)]
struct Host {
    id: u32,
    lan: u8,
    mac: [u8; 6],
    /// A stable address (servers, the monitor, routed hosts) or temporary
    /// ones, rotated daily at `rotate_at_s` past midnight.
    v6_stable: Option<Ipv6Addr>,
    rotate_at_s: u64,
    /// (from, address), in time order: DHCP leases (one for a static host).
    v4: Vec<(u64, Ipv4Addr)>,
    /// An outside host with temporary addresses in its own /64.
    v6_net: [u16; 4],
}

impl Host {
    fn v6_at(&self, seed: u64, start: u64, t: u64) -> Ipv6Addr {
        if let Some(a) = self.v6_stable {
            return a;
        }
        let day = (t - start + (DAY_S - self.rotate_at_s) * SECOND_NS) / (DAY_S * SECOND_NS);
        temporary(seed, self.v6_net, self.id, day)
    }

    fn v4_at(&self, t: u64) -> Ipv4Addr {
        self.v4
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .or(self.v4.first())
            .expect("a lease")
            .1
    }

    fn addr(&self, seed: u64, start: u64, v6: bool, t: u64) -> IpAddr {
        if v6 {
            self.v6_at(seed, start, t).into()
        } else {
            self.v4_at(t).into()
        }
    }
}

/// The temporary address of host `id` on day `day`: a random interface
/// identifier in `net` (RFC 8981).
fn temporary(seed: u64, net: [u16; 4], id: u32, day: u64) -> Ipv6Addr {
    let mut r = Rng::new(seed ^ (u64::from(id) << 40) ^ day.wrapping_mul(0x1234_5679));
    let iid = r.next() & !(0x0200u64 << 48);
    let n = net;
    Ipv6Addr::new(
        n[0],
        n[1],
        n[2],
        n[3],
        (iid >> 48) as u16,
        (iid >> 32) as u16,
        (iid >> 16) as u16,
        iid as u16,
    )
}

fn lan_net(lan: u8) -> [u16; 4] {
    [0xfd00, 0x10, u16::from(lan), 0]
}

fn lan6(lan: u8, host: u16) -> Ipv6Addr {
    let n = lan_net(lan);
    Ipv6Addr::new(n[0], n[1], n[2], n[3], 0, 0, 0, host)
}

fn lan4(lan: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, lan, host)
}

fn host_mac(lan: u8, i: u8) -> [u8; 6] {
    [0x02, 0x10, 0, lan, 0, i]
}

#[derive(Clone, Debug)]
struct Server {
    v6: Ipv6Addr,
    v4: Ipv4Addr,
    ports: Vec<u16>,
}

impl Server {
    fn services(&self, v6: bool) -> impl Iterator<Item = (IpAddr, u16)> + '_ {
        let a: IpAddr = if v6 { self.v6.into() } else { self.v4.into() };
        self.ports.iter().map(move |&p| (a, p))
    }
}

struct Outage {
    server: usize,
    /// None: the whole host is down (no replies).
    port: Option<u16>,
    start: u64,
    end: u64,
}

struct Builder {
    cfg: Config,
    rng: Rng,
    start: u64,
    end: u64,
    servers: Vec<Server>,
    outages: Vec<Outage>,
    /// (attempt, MAC of its frames).
    attempts: Vec<(Attempt, [u8; 6])>,
    truth: Vec<HostTruth>,
    next_port: BTreeMap<IpAddr, u16>,
    /// Used IPv4 leases per LAN.
    leased: BTreeSet<Ipv4Addr>,
    next_id: u32,
    dhcp_moves: u32,
}

/// Generates the month described by `cfg` into `dir` (files
/// `identnet-NNN.pcap`).
pub fn generate(dir: &Path, cfg: &Config) -> io::Result<Network> {
    let start = MONTH_START_UNIX_S * SECOND_NS;
    let mut b = Builder {
        cfg: cfg.clone(),
        rng: Rng::new(cfg.seed),
        start,
        end: start + cfg.duration_s * SECOND_NS,
        servers: Vec::new(),
        outages: Vec::new(),
        attempts: Vec::new(),
        truth: Vec::new(),
        next_port: BTreeMap::new(),
        leased: BTreeSet::new(),
        next_id: 0,
        dhcp_moves: 0,
    };
    b.build();
    b.attempts.sort_by_key(|(a, _)| a.syn_ns);
    let (attempts, macs): (Vec<Attempt>, Vec<[u8; 6]>) =
        std::mem::take(&mut b.attempts).into_iter().unzip();
    let capture = write_capture(
        dir,
        "identnet",
        start,
        cfg.file_span_s * SECOND_NS,
        &attempts,
        |k| macs[k],
        &mut b.rng,
    )?;
    let temporary_addresses = b
        .truth
        .iter()
        .flat_map(|h| &h.addresses)
        .filter(|a| matches!(a, IpAddr::V6(v) if v.segments()[4..7] != [0, 0, 0]))
        .count() as u32;
    Ok(Network {
        files: capture.files,
        packets: capture.packets,
        bytes: capture.bytes,
        attempts: attempts.len() as u64,
        established: attempts.iter().filter(|a| a.follow_up.is_some()).count() as u64,
        hosts: b.truth,
        dhcp_moves: b.dhcp_moves,
        temporary_addresses,
    })
}

impl Builder {
    fn build(&mut self) {
        for (j, ports) in SERVICES.iter().enumerate() {
            let mut ports = ports.to_vec();
            ports.push(NRPE);
            self.servers.push(Server {
                v6: lan6(1, 0x10 + j as u16),
                v4: lan4(1, 10 + j as u8),
                ports,
            });
        }
        // A whole server down for 6 hours on day 9 (no replies), one service
        // refused for 4 hours on day 20 (RST-ACK): outages of live services
        // (R4.5) that clients, retries and the monitor fail on.
        let (d, h) = (DAY_S * SECOND_NS, HOUR_S * SECOND_NS);
        self.outages.push(Outage {
            server: 0,
            port: None,
            start: self.start + 9 * d + 10 * h,
            end: self.start + 9 * d + 16 * h,
        });
        self.outages.push(Outage {
            server: 1,
            port: Some(445),
            start: self.start + 20 * d + 13 * h,
            end: self.start + 20 * d + 17 * h,
        });

        // The monitoring host: LAN 1, stable addresses.
        let monitor = self.static_host(1, 0x50, lan6(1, 0x250), lan4(1, 250));
        self.monitor(&monitor);

        // Clients on the three LANs, each with its own MAC, temporary IPv6
        // addresses and moving DHCP leases. On LAN 2 one retrier and one
        // stale-bookmark host; on LAN 3 one stale-bookmark host; two of the
        // clients scan (LAN 2: every 6 h, LAN 3: every 2 h) and one more on
        // LAN 3 once a day over IPv4.
        for lan in 1..=3u8 {
            for i in 0..self.cfg.clients_per_lan {
                let host = self.rotating_host(lan, i as u8 + 1);
                let role = match (lan, i) {
                    (2, 0) => Role::Retrier,
                    (2, 1) | (3, 1) => Role::StaleBookmarks,
                    (2, 2) => Role::Scanner(ScannerKind::SixHourly),
                    (3, 2) => Role::Scanner(ScannerKind::TwoHourly),
                    (3, 3) => Role::Scanner(ScannerKind::DailyDhcp),
                    _ => Role::Client,
                };
                let name = format!("LAN {lan} host {}", i + 1);
                let mut used = self.client(&host, host.mac);
                match role {
                    Role::Retrier => used.extend(self.retrier(&host)),
                    Role::StaleBookmarks => used.extend(self.stale(&host, 6)),
                    Role::Scanner(k) => used.extend(self.scanner(k, &host, host.mac)),
                    _ => {}
                }
                self.truth(name, role, host.mac, None, used);
            }
        }

        // Behind the router: a routed LAN (stable addresses, counted by
        // address), one host of it with stale bookmarks.
        for i in 0..3u8 {
            let host = Host {
                id: self.id(),
                lan: 9,
                mac: ROUTER_MAC,
                v6_stable: Some(lan6(9, 0x100 + u16::from(i))),
                rotate_at_s: 0,
                v4: vec![(0, lan4(9, 100 + i))],
                v6_net: lan_net(9),
            };
            let mut used = self.client(&host, ROUTER_MAC);
            let role = if i == 0 {
                used.extend(self.stale(&host, 5));
                Role::StaleBookmarks
            } else {
                Role::Routed
            };
            self.truth(
                format!("routed host {}", i + 1),
                role,
                ROUTER_MAC,
                None,
                used,
            );
        }
        // Outside, through the router: a partner polling a web service every
        // hour all month, clients with daily temporary addresses in their own
        // /64, IPv4 clients, the rotating scanner and the control.
        let partner = self.outside_host([0x2001, 0xdb8, 0xc0, 1], Some(5), 0);
        let used = self.partner(&partner);
        self.truth(
            "outside partner".into(),
            Role::Outside,
            ROUTER_MAC,
            Some("2001:db8:c0:1::/64".into()),
            used,
        );
        for n in 0..3u16 {
            let host = self.outside_host([0x2001, 0xdb8, 0xc1, n], None, 20 + n as u8);
            let used = self.client(&host, ROUTER_MAC);
            self.truth(
                format!("outside client {}", n + 1),
                Role::Outside,
                ROUTER_MAC,
                Some(format!("2001:db8:c1:{n:x}::/64")),
                used,
            );
        }
        for k in [ScannerKind::OutsideRotating, ScannerKind::OutsideStable] {
            let host = match k {
                ScannerKind::OutsideRotating => {
                    self.outside_host([0x2001, 0xdb8, 0xbad, 1], None, 40)
                }
                _ => self.outside_host([0x2001, 0xdb8, 0xbeef, 2], Some(7), 41),
            };
            let used = self.scanner(k, &host, ROUTER_MAC);
            let prefix = match k {
                ScannerKind::OutsideRotating => "2001:db8:bad:1::/64",
                _ => "2001:db8:beef:2::/64",
            };
            self.truth(
                format!("{k:?} scanner"),
                Role::Scanner(k),
                ROUTER_MAC,
                Some(prefix.into()),
                used,
            );
        }
        self.truth(
            "router".into(),
            Role::Router,
            ROUTER_MAC,
            None,
            BTreeSet::new(),
        );
    }

    fn truth(
        &mut self,
        name: String,
        role: Role,
        mac: [u8; 6],
        prefix: Option<String>,
        addresses: BTreeSet<IpAddr>,
    ) {
        let (identity, kind) = match (&prefix, mac == ROUTER_MAC && role != Role::Router) {
            (Some(p), _) => (p.clone(), "prefix"),
            (None, true) => (String::new(), "address"),
            (None, false) => (
                mac.iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join("-"),
                "mac",
            ),
        };
        self.truth.push(HostTruth {
            name,
            role,
            mac,
            identity,
            kind,
            addresses,
        });
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn static_host(&mut self, lan: u8, i: u8, v6: Ipv6Addr, v4: Ipv4Addr) -> Host {
        Host {
            id: self.id(),
            lan,
            mac: host_mac(lan, i),
            v6_stable: Some(v6),
            rotate_at_s: 0,
            v4: vec![(0, v4)],
            v6_net: lan_net(lan),
        }
    }

    /// A host with daily temporary addresses and DHCP leases that move
    /// every 5–8 days to an address of its /24 nobody held before.
    fn rotating_host(&mut self, lan: u8, i: u8) -> Host {
        let mut v4 = Vec::new();
        let mut t = self.start;
        while t < self.end {
            let addr = loop {
                let a = lan4(lan, 20 + self.rng.below(180) as u8);
                if self.leased.insert(a) {
                    break a;
                }
            };
            v4.push((t, addr));
            t += self.rng.range(5 * DAY_S, 8 * DAY_S) * SECOND_NS;
        }
        self.dhcp_moves += v4.len() as u32 - 1;
        Host {
            id: self.id(),
            lan,
            mac: host_mac(lan, i),
            v6_stable: None,
            rotate_at_s: self.rng.below(DAY_S),
            v4,
            v6_net: lan_net(lan),
        }
    }

    /// An outside host: a stable address `::iid` in `net`, or daily
    /// temporary ones; IPv4 203.0.113.`v4` (none when 0).
    fn outside_host(&mut self, net: [u16; 4], iid: Option<u16>, v4: u8) -> Host {
        Host {
            id: self.id(),
            lan: 0,
            mac: ROUTER_MAC,
            v6_stable: iid.map(|i| Ipv6Addr::new(net[0], net[1], net[2], net[3], 0, 0, 0, i)),
            rotate_at_s: self.rng.below(DAY_S),
            v4: vec![(0, Ipv4Addr::new(203, 0, 113, v4.max(1)))],
            v6_net: net,
        }
    }

    fn sport(&mut self, src: IpAddr) -> u16 {
        let p = self.next_port.entry(src).or_insert(32768);
        *p = if *p >= 60999 { 32768 } else { *p + 1 };
        *p
    }

    /// Records an attempt (dropped outside the capture).
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &mut self,
        t: u64,
        mac: [u8; 6],
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
        established: bool,
        reply: Reply,
        retransmit: bool,
    ) -> bool {
        if t < self.start || t >= self.end {
            return false;
        }
        let sport = self.sport(src);
        let seq = self.rng.next() as u32;
        let follow_up = established.then(|| {
            let rtt = 150_000 + self.rng.below(3_000_000);
            let flags = match self.rng.below(50) {
                0..=44 => ACK,
                45..=48 => PSH | ACK,
                _ => FIN | ACK,
            };
            Segment {
                at_ns: t + rtt,
                seq: seq.wrapping_add(1),
                flags,
            }
        });
        let write_reply = self.rng.percent(self.cfg.reply_percent);
        self.attempts.push((
            Attempt {
                syn_ns: t,
                src,
                sport,
                dst,
                dport,
                seq,
                retransmit_after_ns: if retransmit { RETRANSMITS } else { &[] },
                follow_up,
                reply: if write_reply { reply } else { Reply::None },
            },
            mac,
        ));
        true
    }

    fn down(&self, dst: IpAddr, port: u16, t: u64) -> Option<bool> {
        self.outages.iter().find_map(|o| {
            let s = &self.servers[o.server];
            let hit = (dst == IpAddr::from(s.v6) || dst == IpAddr::from(s.v4))
                && o.port.is_none_or(|p| p == port)
                && o.start <= t
                && t < o.end;
            hit.then_some(o.port.is_none())
        })
    }

    /// Connects to a service: Established unless it is down; then the SYN
    /// is retransmitted (host down) or refused, and the client tries again
    /// 30–90 s later, `retries` times at most.
    #[allow(clippy::too_many_arguments)]
    fn use_service(
        &mut self,
        t: u64,
        mac: [u8; 6],
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        retries: u32,
        used: &mut BTreeSet<IpAddr>,
    ) {
        let ok = match self.down(dst, port, t) {
            None => self.attempt(t, mac, src, dst, port, true, Reply::SynAck, false),
            Some(host_down) => {
                let reply = if host_down {
                    Reply::None
                } else {
                    Reply::RstAck
                };
                let ok = self.attempt(t, mac, src, dst, port, false, reply, host_down);
                if retries > 0 {
                    let again = t + self.rng.range(30, 90) * SECOND_NS;
                    self.use_service(again, mac, src, dst, port, retries - 1, used);
                }
                ok
            }
        };
        if ok {
            used.insert(src);
        }
    }

    fn services(&self, v6: bool) -> Vec<(IpAddr, u16)> {
        self.servers
            .iter()
            .flat_map(|s| s.services(v6))
            .filter(|&(_, p)| p != NRPE)
            .collect()
    }

    /// Ordinary use: a few favourite services, IPv6 two times in three, in
    /// working hours on weekdays, a tenth as much at weekends.
    fn client(&mut self, host: &Host, mac: [u8; 6]) -> BTreeSet<IpAddr> {
        let mut used = BTreeSet::new();
        let favourites: Vec<(bool, usize)> = (0..2 + self.rng.below(3))
            .map(|_| {
                let v6 = self.rng.below(3) > 0;
                let n = self.services(v6).len() as u64;
                (v6, self.rng.below(n) as usize)
            })
            .collect();
        let per_day = u64::from(self.cfg.conns_per_client_day);
        for d in 0..self.cfg.duration_s.div_ceil(DAY_S) {
            let weekday = ((MONTH_START_UNIX_S / DAY_S + d) + 3) % 7;
            let n = if weekday < 5 {
                self.rng.range(per_day / 2, per_day * 3 / 2 + 1)
            } else {
                self.rng.below(per_day / 10 + 2)
            };
            for _ in 0..n {
                let t = self.start
                    + d * DAY_S * SECOND_NS
                    + self.rng.range(7 * HOUR_S + 1800, 19 * HOUR_S) * SECOND_NS
                    + self.rng.below(SECOND_NS);
                let (v6, k) = favourites[self.rng.below(favourites.len() as u64) as usize];
                let (dst, port) = self.services(v6)[k];
                let src = host.addr(self.cfg.seed, self.start, v6, t);
                self.use_service(t, mac, src, dst, port, 2, &mut used);
            }
        }
        used
    }

    /// Polls every service of both families (NRPE included) every
    /// `monitor_every_s`; a poll of a service that is down fails.
    fn monitor(&mut self, host: &Host) {
        let all: Vec<(IpAddr, u16)> = self
            .servers
            .iter()
            .flat_map(|s| {
                s.services(true)
                    .chain(s.services(false))
                    .collect::<Vec<_>>()
            })
            .collect();
        let period = self.cfg.monitor_every_s * SECOND_NS;
        let step = period / all.len() as u64;
        let mut used = BTreeSet::new();
        let mut cycle = self.start + self.rng.below(SECOND_NS);
        while cycle < self.end {
            for (k, &(dst, port)) in all.iter().enumerate() {
                let t = cycle + k as u64 * step + self.rng.below(50_000_000);
                let src = host.addr(self.cfg.seed, self.start, dst.is_ipv6(), t);
                self.use_service(t, host.mac, src, dst, port, 0, &mut used);
            }
            cycle += period;
        }
        self.truth(
            "monitoring host".into(),
            Role::Monitor,
            host.mac,
            None,
            used,
        );
    }

    /// The partner's hourly poll of the first server's web service over
    /// IPv6 (it keeps the router's evidence fresh every day).
    fn partner(&mut self, host: &Host) -> BTreeSet<IpAddr> {
        let mut used = BTreeSet::new();
        let dst: IpAddr = self.servers[0].v6.into();
        let mut t = self.start + 7 * SECOND_NS;
        while t < self.end {
            let src = host.addr(self.cfg.seed, self.start, true, t);
            self.use_service(t, ROUTER_MAC, src, dst, 443, 1, &mut used);
            t += HOUR_S * SECOND_NS + self.rng.below(30 * SECOND_NS);
        }
        used
    }

    /// Retries one never-live server on port 80 over IPv6 every 10 minutes
    /// all month (one pair, whatever address it comes from).
    fn retrier(&mut self, host: &Host) -> BTreeSet<IpAddr> {
        let mut used = BTreeSet::new();
        let dst: IpAddr = lan6(1, 0x99).into();
        let mut t = self.start + self.rng.below(600 * SECOND_NS);
        while t < self.end {
            let src = host.addr(self.cfg.seed, self.start, true, t);
            if self.attempt(t, host.mac, src, dst, 80, false, Reply::None, true) {
                used.insert(src);
            }
            t += 600 * SECOND_NS + self.rng.below(10 * SECOND_NS);
        }
        used
    }

    /// `pairs` never-live (host, port) pairs of both families, each first
    /// tried on a random day and again 1–3 times within 30 days.
    fn stale(&mut self, host: &Host, pairs: u32) -> BTreeSet<IpAddr> {
        let mut used = BTreeSet::new();
        let lan = if host.lan == 9 {
            9
        } else {
            1 + (host.id % 3) as u8
        };
        for k in 0..pairs {
            let v6 = k % 2 == 0;
            let dst: IpAddr = if v6 {
                lan6(lan, 0xe000 + (host.id * 16 + k) as u16).into()
            } else {
                lan4(lan, 241 + k as u8).into()
            };
            let port = STALE_PORTS[k as usize % STALE_PORTS.len()];
            let first = self.rng.below(25 * DAY_S);
            for r in 0..1 + self.rng.range(1, 4) {
                let t = self.start
                    + (first + r * self.rng.below(2 * DAY_S)) * SECOND_NS
                    + self.rng.below(SECOND_NS);
                let src = host.addr(self.cfg.seed, self.start, v6, t);
                if self.attempt(t, host.mac, src, dst, port, false, Reply::None, true) {
                    used.insert(src);
                }
            }
        }
        used
    }

    /// One probe per interval, each to a new (host, port): a closed port of
    /// a live server one time in four (RST-ACK), else a never-live host of a
    /// LAN. The rotating outside scanner takes a fresh address of its /64
    /// per probe; the others the address their host holds at the time.
    fn scanner(&mut self, kind: ScannerKind, host: &Host, mac: [u8; 6]) -> BTreeSet<IpAddr> {
        let (first_s, every_s, probes) = kind.plan();
        let v6 = kind != ScannerKind::DailyDhcp;
        let mut used = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for i in 0..u64::from(probes) {
            let t =
                self.start + (first_s + i * every_s) * SECOND_NS + self.rng.below(SECOND_NS / 1000);
            let (dst, port, reply) = loop {
                let n = self.rng.next();
                let lan = 1 + (n % 3) as u8;
                let target = if n.is_multiple_of(4) {
                    let s = &self.servers[(n >> 8) as usize % self.servers.len()];
                    let port = CLOSED_PORTS[(n >> 16) as usize % CLOSED_PORTS.len()];
                    let a: IpAddr = if v6 { s.v6.into() } else { s.v4.into() };
                    (a, port, Reply::RstAck)
                } else {
                    let port = [22, 445, 3389, 80][(n >> 8) as usize % 4];
                    let a: IpAddr = if v6 {
                        lan6(lan, 0xd000 + (n >> 16) as u16 % 0x1000).into()
                    } else {
                        lan4(lan, 200 + ((n >> 16) % 40) as u8).into()
                    };
                    (a, port, Reply::None)
                };
                if seen.insert((target.0, target.1)) {
                    break target;
                }
            };
            let src: IpAddr = if kind == ScannerKind::OutsideRotating {
                temporary(self.cfg.seed ^ 0xbad, host.v6_net, host.id, i).into()
            } else {
                host.addr(self.cfg.seed, self.start, v6, t)
            };
            if self.attempt(t, mac, src, dst, port, false, reply, false) {
                used.insert(src);
            }
        }
        used
    }
}
