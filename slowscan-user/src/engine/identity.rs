//! Who a source is (docs/method.md R9, the project's own rule): the identity
//! a Failed attempt is counted under, so that a scanner whose address
//! changes (IPv6 temporary addresses, a fresh address of its /64 per probe,
//! DHCP) stays one source.
//!
//! Decided per attempt, at the time it is counted:
//! 1. a host on the monitored segment — the frame's source MAC, when it is
//!    known and is not a router's — is its MAC, whatever addresses it used;
//! 2. a routed source inside the home networks is its address;
//! 3. a source outside the home networks is its prefix (`/64` IPv6, `/32`
//!    IPv4 by default: an address).
//!
//! A MAC is a router's when, within the last day, its attempts carried a
//! source outside the home networks (only a router forwards those onto the
//! segment) or source addresses from two /24s (IPv4) or two /64s (IPv6):
//! a host has one LAN. What is learned is learned from attempts only, so the
//! kernel pre-filter's output and the full stream give the same answers.
//!
//! Memory is bounded: at most [`MAX_MACS`] MACs are learned (a MAC beyond
//! that is treated as a router's: its sources fall through to rules 2–3),
//! and an identity keeps at most [`ADDRESSES_KEPT`] recent addresses.

use std::{collections::HashMap, fmt, net::IpAddr, path::Path, str::FromStr};

use anyhow::{Context, bail};
use slowscan_common::AF_INET;

use super::DAY_NS;
use super::counting::SourceKey;
use crate::addr::{addr_of, ip_from};
use crate::ignore::{IgnoreList, Prefix};

/// Looked up once per attempt: a fast hash.
type Hasher = foldhash::fast::RandomState;

/// [`SourceKey::family`] of a MAC identity (the MAC in the first 6 bytes).
pub(crate) const AF_MAC: u8 = 1;
/// MACs learned at most (hosts and routers).
pub const MAX_MACS: usize = 1 << 16;
/// Recent addresses an identity keeps for its alerts.
pub const ADDRESSES_KEPT: usize = 16;
/// How long router evidence holds.
const ROUTER_MEMORY_NS: u64 = DAY_NS;

/// What failures are counted under (R9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// A routed source inside the home networks (or any source with
    /// identities off): its address.
    Address(IpAddr),
    /// A host on the monitored segment: its MAC.
    Mac([u8; 6]),
    /// A source outside the home networks: its prefix (shorter than an
    /// address).
    Prefix(Prefix),
}

impl Identity {
    pub(crate) fn key(&self) -> SourceKey {
        match *self {
            Identity::Address(ip) => {
                let (family, addr) = addr_of(ip);
                SourceKey {
                    addr,
                    family,
                    len: full_len(family),
                }
            }
            Identity::Mac(m) => {
                let mut addr = [0u8; 16];
                addr[..6].copy_from_slice(&m);
                SourceKey {
                    addr,
                    family: AF_MAC,
                    len: 48,
                }
            }
            Identity::Prefix(p) => SourceKey {
                addr: *p.bytes(),
                family: p.family(),
                len: p.prefix_len(),
            },
        }
    }

    pub(crate) fn of_key(k: &SourceKey) -> Identity {
        if k.family == AF_MAC {
            let mut m = [0u8; 6];
            m.copy_from_slice(&k.addr[..6]);
            return Identity::Mac(m);
        }
        let ip = ip_from(k.family, &k.addr);
        if k.len >= full_len(k.family) {
            Identity::Address(ip)
        } else {
            Identity::Prefix(Prefix::masked(ip, k.len))
        }
    }

    /// The address when the identity is one.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            Identity::Address(ip) => Some(*ip),
            _ => None,
        }
    }

    /// `mac`, `prefix` or `address`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Address(_) => "address",
            Identity::Mac(_) => "mac",
            Identity::Prefix(_) => "prefix",
        }
    }
}

/// A MAC in ECS notation: `02-10-00-00-00-05`.
pub fn mac_label(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join("-")
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(['-', ':']).collect();
    if parts.len() != 6 || !parts.iter().all(|p| p.len() == 2) {
        return None;
    }
    let mut m = [0u8; 6];
    for (o, p) in m.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

impl serde::Serialize for Identity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Address(ip) => write!(f, "{ip}"),
            Identity::Mac(m) => f.write_str(&mac_label(m)),
            Identity::Prefix(p) => write!(f, "{p}"),
        }
    }
}

impl FromStr for Identity {
    type Err = anyhow::Error;

    /// An address, a MAC (`02-10-00-00-00-05` or `02:10:00:00:00:05`) or a
    /// prefix (`2001:db8:bad:1::/64`; a full-length one is the address).
    fn from_str(s: &str) -> anyhow::Result<Identity> {
        let s = s.trim();
        if let Some(m) = parse_mac(s) {
            return Ok(Identity::Mac(m));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Identity::Address(ip));
        }
        match s.parse::<Prefix>() {
            Ok(p) if p.prefix_len() >= full_len(p.family()) => Ok(Identity::Address(p.addr())),
            Ok(p) => Ok(Identity::Prefix(p)),
            Err(_) => bail!(
                "{s:?} is not a source: give an address (198.51.100.7), a MAC \
                 (02-10-00-00-00-05) or a prefix (2001:db8:bad:1::/64)"
            ),
        }
    }
}

fn full_len(family: u8) -> u8 {
    if family == AF_INET { 32 } else { 128 }
}

/// The home networks when none are given: private and shared address space
/// (RFC 1918, RFC 6598), unique-local (RFC 4193) and link-local addresses.
pub const DEFAULT_HOME_NETS: &str =
    "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,169.254.0.0/16,fc00::/7,fe80::/10";

/// The organisation's own address space (`--home-nets`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HomeNets {
    set: IgnoreList,
}

impl Default for HomeNets {
    fn default() -> Self {
        Self::parse_spec(DEFAULT_HOME_NETS).expect("default home networks parse")
    }
}

impl HomeNets {
    /// A comma-separated list of prefixes, or the path of a file with one per
    /// line (blank lines and `#` comments allowed).
    pub fn parse_spec(spec: &str) -> anyhow::Result<Self> {
        let items: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            bail!("the home networks {spec:?} are empty: give prefixes (10.0.0.0/8,…) or a file");
        }
        if items.iter().all(|i| Prefix::looks_like(i)) {
            return Self::from_items(items.into_iter().map(|i| (i, None)));
        }
        let path = Path::new(spec.trim());
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("home networks {spec:?}: not a list of prefixes, and the file cannot be read")
        })?;
        let items = text.lines().enumerate().filter_map(|(n, l)| {
            let item = l.split('#').next().unwrap_or("").trim();
            (!item.is_empty()).then_some((item, Some(n + 1)))
        });
        let nets = Self::from_items(items)
            .with_context(|| format!("home networks file {}", path.display()))?;
        if nets.set.is_empty() {
            bail!("home networks file {} lists no prefix", path.display());
        }
        Ok(nets)
    }

    fn from_items<'a>(
        items: impl Iterator<Item = (&'a str, Option<usize>)>,
    ) -> anyhow::Result<Self> {
        let mut v = Vec::new();
        for (item, line) in items {
            let p: Prefix = item.parse().with_context(|| match line {
                Some(n) => format!("line {n}"),
                None => format!("home networks item {item:?}"),
            })?;
            v.push(p);
        }
        Ok(Self {
            set: v.into_iter().collect(),
        })
    }

    pub fn contains(&self, family: u8, addr: &[u8; 16]) -> bool {
        self.set.contains(family, addr)
    }

    pub fn prefixes(&self) -> impl Iterator<Item = &Prefix> {
        self.set.iter()
    }
}

impl fmt::Display for HomeNets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.set.iter().map(|p| p.to_string()).collect();
        f.write_str(&v.join(","))
    }
}

/// How sources become identities (R9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    pub home_nets: HomeNets,
    /// Prefix length an outside IPv4 source is counted under (32: its address).
    pub outside_v4: u8,
    /// Prefix length an outside IPv6 source is counted under.
    pub outside_v6: u8,
    /// Count hosts on the segment under their MAC.
    pub macs: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            home_nets: HomeNets::default(),
            outside_v4: 32,
            outside_v6: 64,
            macs: true,
        }
    }
}

impl IdentityConfig {
    /// Every source is its address (the paper's rule, R6).
    pub fn addresses_only() -> Self {
        Self {
            outside_v4: 32,
            outside_v6: 128,
            macs: false,
            ..Self::default()
        }
    }

    /// `v4=/24,v6=/48` (either part may be left out; the slash is optional).
    pub fn parse_outside_prefix(spec: &str, into: &mut Self) -> anyhow::Result<()> {
        for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (fam, len) = part.split_once('=').with_context(|| {
                format!("outside prefix {part:?}: write v4=/LEN or v6=/LEN (e.g. v4=/24,v6=/48)")
            })?;
            let len: u8 = len
                .trim()
                .trim_start_matches('/')
                .parse()
                .with_context(|| format!("outside prefix {part:?}: the length is not a number"))?;
            match fam.trim() {
                "v4" if (1..=32).contains(&len) => into.outside_v4 = len,
                "v6" if (1..=128).contains(&len) => into.outside_v6 = len,
                "v4" | "v6" => bail!(
                    "outside prefix {part:?}: the length must be 1–32 for v4 and 1–128 for v6"
                ),
                other => bail!("outside prefix {part:?}: {other:?} is neither v4 nor v6"),
            }
        }
        Ok(())
    }

    /// `v4=/32,v6=/64`.
    pub fn outside_label(&self) -> String {
        format!("v4=/{},v6=/{}", self.outside_v4, self.outside_v6)
    }
}

/// What is known of one MAC (R9).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct MacState {
    /// The /24 of its latest IPv4 source, and when.
    v4: Option<([u8; 3], u64)>,
    /// The /64 of its latest IPv6 source, and when.
    v6: Option<([u8; 8], u64)>,
    /// Evidence of a router until then.
    router_until: u64,
    last_seen: u64,
}

/// Recent addresses of a MAC or prefix identity, for its alerts.
#[derive(Clone, Default)]
pub(crate) struct RecentAddresses {
    /// (address, latest failure), oldest first.
    kept: Vec<(IpAddr, u64)>,
    /// Distinct addresses seen (a new one is one not kept at the time).
    pub total: u32,
}

impl RecentAddresses {
    fn add(&mut self, ip: IpAddr, t: u64) {
        if let Some(i) = self.kept.iter().position(|(a, _)| *a == ip) {
            self.kept.remove(i);
        } else {
            self.total = self.total.saturating_add(1);
            if self.kept.len() >= ADDRESSES_KEPT {
                self.kept.remove(0);
            }
        }
        self.kept.push((ip, t));
    }

    /// Addresses used since `since`, most recent first.
    pub fn since(&self, since: u64) -> Vec<IpAddr> {
        self.kept
            .iter()
            .rev()
            .filter(|(_, t)| *t >= since)
            .map(|(a, _)| *a)
            .collect()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.kept.iter().any(|(a, _)| *a == ip)
    }
}

/// The identity rule's state in a checkpoint, times in wall-clock Unix ns.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdentitiesSnapshot {
    /// Every MAC learned: (MAC, v4 /24 and time, v6 /64 and time, router
    /// evidence until, last seen).
    pub macs: Vec<MacSnapshot>,
    /// Per MAC or prefix identity: its recent addresses with the time of
    /// each, and how many it used in all.
    pub addresses: Vec<(Identity, AddressTimes, u32)>,
}

/// Addresses with the time each was last used (wall-clock Unix ns).
pub type AddressTimes = Vec<(IpAddr, i64)>;

/// One MAC's evidence (see [`IdentitiesSnapshot`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MacSnapshot {
    pub mac: String,
    pub v4: Option<([u8; 3], i64)>,
    pub v6: Option<([u8; 8], i64)>,
    pub router_until: i64,
    pub last_seen: i64,
}

/// The identity rule's state: what each MAC is, and the recent addresses of
/// every MAC and prefix identity.
pub(crate) struct Identities {
    cfg: IdentityConfig,
    macs: HashMap<[u8; 6], MacState, Hasher>,
    addresses: HashMap<SourceKey, RecentAddresses, Hasher>,
    max_addresses: usize,
    /// MACs not learned because [`MAX_MACS`] were known.
    pub macs_dropped: u64,
}

impl Identities {
    pub fn new(cfg: IdentityConfig, max_sources: usize) -> Self {
        Self {
            cfg,
            macs: HashMap::default(),
            addresses: HashMap::default(),
            max_addresses: max_sources.max(1),
            macs_dropped: 0,
        }
    }

    /// Learns from one attempt's source MAC and address at `t`.
    pub fn observe(&mut self, mac: &[u8; 6], family: u8, addr: &[u8; 16], t: u64) {
        if !self.cfg.macs || *mac == [0; 6] {
            return;
        }
        let outside = !self.cfg.home_nets.contains(family, addr);
        let full = self.macs.len() >= MAX_MACS;
        let s = match self.macs.get_mut(mac) {
            Some(s) => s,
            None if full => {
                self.macs_dropped += 1;
                return;
            }
            None => self.macs.entry(*mac).or_default(),
        };
        s.last_seen = s.last_seen.max(t);
        let fresh = |seen: u64| seen.saturating_add(ROUTER_MEMORY_NS) >= t;
        let second_lan = if family == AF_INET {
            let net = [addr[0], addr[1], addr[2]];
            let prev = s.v4.replace((net, t));
            prev.is_some_and(|(p, seen)| p != net && fresh(seen))
        } else {
            let mut net = [0u8; 8];
            net.copy_from_slice(&addr[..8]);
            // Link-local sources say nothing of the LAN.
            if net[0] == 0xfe && net[1] & 0xc0 == 0x80 {
                return;
            }
            let prev = s.v6.replace((net, t));
            prev.is_some_and(|(p, seen)| p != net && fresh(seen))
        };
        if outside || second_lan {
            s.router_until = s.router_until.max(t.saturating_add(ROUTER_MEMORY_NS));
        }
    }

    /// MACs learned (hosts and routers).
    pub fn macs(&self) -> usize {
        self.macs.len()
    }

    /// MACs taken for a router's at `t` (their sources fall through to the
    /// address and prefix rules).
    pub fn routers(&self, t: u64) -> usize {
        self.macs.values().filter(|s| s.router_until >= t).count()
    }

    fn is_host(&self, mac: &[u8; 6], t: u64) -> bool {
        self.cfg.macs && *mac != [0; 6] && self.macs.get(mac).is_some_and(|s| s.router_until < t)
    }

    /// The identity an attempt from `mac` / `addr` is counted under at `t`.
    pub fn resolve(&self, mac: &[u8; 6], family: u8, addr: &[u8; 16], t: u64) -> SourceKey {
        let inside = self.cfg.home_nets.contains(family, addr);
        if inside && self.is_host(mac, t) {
            return Identity::Mac(*mac).key();
        }
        let len = match (inside, family) {
            (true, _) => full_len(family),
            (false, AF_INET) => self.cfg.outside_v4,
            (false, _) => self.cfg.outside_v6,
        };
        let ip = ip_from(family, addr);
        if len >= full_len(family) {
            Identity::Address(ip).key()
        } else {
            Identity::Prefix(Prefix::masked(ip, len)).key()
        }
    }

    /// Notes that identity `key` used `ip` for a failure at `t` (only MAC and
    /// prefix identities keep a list: an address is its own).
    pub fn used(&mut self, key: &SourceKey, ip: IpAddr, t: u64) {
        if key.family != AF_MAC && key.len >= full_len(key.family) {
            return;
        }
        if let Some(r) = self.addresses.get_mut(key) {
            r.add(ip, t);
        } else if self.addresses.len() < self.max_addresses {
            self.addresses.entry(*key).or_default().add(ip, t);
        }
    }

    pub fn addresses(&self, key: &SourceKey) -> Option<&RecentAddresses> {
        self.addresses.get(key)
    }

    /// The MAC or prefix identity `ip` was last counted under, if any.
    pub fn holder_of(&self, ip: IpAddr) -> Option<SourceKey> {
        self.addresses
            .iter()
            .filter(|(_, r)| r.contains(ip))
            .max_by_key(|(_, r)| r.kept.iter().map(|(_, t)| *t).max())
            .map(|(k, _)| *k)
    }

    /// Forgets addresses used before `since` and MACs not seen since a day
    /// before it (router evidence lasts a day).
    pub fn sweep(&mut self, since: u64, now: u64) {
        self.addresses.retain(|_, r| {
            r.kept.retain(|(_, t)| *t >= since);
            !r.kept.is_empty()
        });
        let horizon = now.saturating_sub(ROUTER_MEMORY_NS);
        self.macs
            .retain(|_, s| s.last_seen >= horizon || s.router_until >= now);
    }

    /// A checkpoint; `wall` turns engine time into wall-clock time.
    pub fn snapshot(&self, wall: impl Fn(u64) -> i64) -> IdentitiesSnapshot {
        IdentitiesSnapshot {
            macs: self
                .macs
                .iter()
                .map(|(m, s)| MacSnapshot {
                    mac: mac_label(m),
                    v4: s.v4.map(|(n, t)| (n, wall(t))),
                    v6: s.v6.map(|(n, t)| (n, wall(t))),
                    router_until: wall(s.router_until),
                    last_seen: wall(s.last_seen),
                })
                .collect(),
            addresses: self
                .addresses
                .iter()
                .map(|(k, r)| {
                    (
                        Identity::of_key(k),
                        r.kept.iter().map(|&(a, t)| (a, wall(t))).collect(),
                        r.total,
                    )
                })
                .collect(),
        }
    }

    /// Restores a checkpoint; `engine` turns wall-clock time into engine
    /// time. Entries that do not parse are skipped.
    pub fn restore(&mut self, s: &IdentitiesSnapshot, engine: impl Fn(i64) -> u64) {
        for m in &s.macs {
            let Some(mac) = parse_mac(&m.mac) else {
                continue;
            };
            if self.macs.len() >= MAX_MACS {
                break;
            }
            self.macs.insert(
                mac,
                MacState {
                    v4: m.v4.map(|(n, t)| (n, engine(t))),
                    v6: m.v6.map(|(n, t)| (n, engine(t))),
                    router_until: engine(m.router_until),
                    last_seen: engine(m.last_seen),
                },
            );
        }
        for (id, kept, total) in &s.addresses {
            if self.addresses.len() >= self.max_addresses {
                break;
            }
            let r = self.addresses.entry(id.key()).or_default();
            r.kept = kept
                .iter()
                .take(ADDRESSES_KEPT)
                .map(|&(a, t)| (a, engine(t)))
                .collect();
            r.total = *total;
        }
    }

    pub fn allocated_bytes(&self) -> usize {
        self.macs.capacity() * (std::mem::size_of::<([u8; 6], MacState)>() + 1)
            + self.addresses.capacity() * (std::mem::size_of::<(SourceKey, RecentAddresses)>() + 1)
            + self
                .addresses
                .values()
                .map(|r| r.kept.capacity() * std::mem::size_of::<(IpAddr, u64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> (u8, [u8; 16]) {
        addr_of(s.parse().unwrap())
    }

    const HOST: [u8; 6] = [2, 0x10, 0, 0, 0, 5];
    const ROUTER: [u8; 6] = [2, 0x10, 0, 0, 0, 1];

    #[test]
    fn r9_identity_round_trips_and_parses() {
        for s in [
            "198.51.100.7",
            "02-10-00-00-00-05",
            "2001:db8:bad:1::/64",
            "203.0.113.0/24",
        ] {
            let i: Identity = s.parse().unwrap();
            assert_eq!(i.to_string(), s);
            assert_eq!(Identity::of_key(&i.key()), i);
        }
        assert_eq!(
            "02:10:00:00:00:05".parse::<Identity>().unwrap(),
            Identity::Mac(HOST)
        );
        assert_eq!(
            "198.51.100.7/32".parse::<Identity>().unwrap(),
            Identity::Address("198.51.100.7".parse().unwrap())
        );
        assert!("nonsense".parse::<Identity>().is_err());
    }

    #[test]
    fn r9_a_host_is_its_mac_a_router_is_not() {
        let mut ids = Identities::new(IdentityConfig::default(), 100);
        let (f, x) = a("fd00:10:1::aaaa");
        ids.observe(&HOST, f, &x, 10);
        assert_eq!(
            Identity::of_key(&ids.resolve(&HOST, f, &x, 10)),
            Identity::Mac(HOST)
        );
        let (f4, x4) = a("10.1.1.5");
        ids.observe(&HOST, f4, &x4, 11);
        assert_eq!(ids.resolve(&HOST, f4, &x4, 11), Identity::Mac(HOST).key());
        // The router forwards a second LAN's sources: an address each.
        let (_, y) = a("fd00:10:1::1234");
        let (_, z) = a("fd00:10:2::1234");
        ids.observe(&ROUTER, f, &y, 20);
        ids.observe(&ROUTER, f, &z, 21);
        assert_eq!(
            Identity::of_key(&ids.resolve(&ROUTER, f, &z, 22)),
            Identity::Address("fd00:10:2::1234".parse().unwrap())
        );
        // Evidence lasts a day.
        assert_eq!(
            ids.resolve(&ROUTER, f, &z, 21 + DAY_NS + 1),
            Identity::Mac(ROUTER).key()
        );
    }

    #[test]
    fn r9_outside_sources_are_their_prefix_and_mark_a_router() {
        let mut ids = Identities::new(IdentityConfig::default(), 100);
        let (f, x) = a("2001:db8:bad:1::77");
        ids.observe(&ROUTER, f, &x, 5);
        assert_eq!(
            Identity::of_key(&ids.resolve(&ROUTER, f, &x, 5)).to_string(),
            "2001:db8:bad:1::/64"
        );
        let (f4, x4) = a("203.0.113.9");
        assert_eq!(
            Identity::of_key(&ids.resolve(&ROUTER, f4, &x4, 6)),
            Identity::Address("203.0.113.9".parse().unwrap())
        );
        let mut cfg = IdentityConfig::default();
        IdentityConfig::parse_outside_prefix("v4=/24,v6=/48", &mut cfg).unwrap();
        let ids = Identities::new(cfg, 100);
        assert_eq!(
            Identity::of_key(&ids.resolve(&[0; 6], f4, &x4, 6)).to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            Identity::of_key(&ids.resolve(&[0; 6], f, &x, 6)).to_string(),
            "2001:db8:bad::/48"
        );
    }

    #[test]
    fn r9_options_and_home_nets_are_checked() {
        let mut cfg = IdentityConfig::default();
        assert!(IdentityConfig::parse_outside_prefix("v4=/33", &mut cfg).is_err());
        assert!(IdentityConfig::parse_outside_prefix("v5=/24", &mut cfg).is_err());
        assert!(IdentityConfig::parse_outside_prefix("24", &mut cfg).is_err());
        assert!(HomeNets::parse_spec("198.51.100.7/24").is_err());
        let h = HomeNets::parse_spec("2001:db8:10::/48,198.51.100.0/24").unwrap();
        let (f, x) = a("2001:db8:10:3::1");
        assert!(h.contains(f, &x));
        assert!(HomeNets::default().contains(a("192.168.1.1").0, &a("192.168.1.1").1));
        assert!(!HomeNets::default().contains(a("203.0.113.1").0, &a("203.0.113.1").1));
    }

    #[test]
    fn r9_address_lists_are_bounded() {
        let mut ids = Identities::new(IdentityConfig::default(), 100);
        let k = Identity::Mac(HOST).key();
        for i in 0..1000u32 {
            let ip = IpAddr::from([
                0xfd,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                (i >> 8) as u8,
                i as u8,
            ]);
            ids.used(&k, ip, u64::from(i));
        }
        let r = ids.addresses(&k).unwrap();
        assert_eq!(r.total, 1000);
        assert_eq!(r.since(0).len(), ADDRESSES_KEPT);
        assert_eq!(r.since(0)[0].to_string(), "fd00::3e7");
    }
}
