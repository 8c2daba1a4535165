//! The whitelist (R4): destinations (IP address, TCP port) to which at least one
//! connection was Established (R4.2) during a learning period (R4.1), limited
//! to eligible ports (R4.3). Traffic to a whitelisted destination is not
//! analysed at all (R4.4): the kernel drops it, and the engine ignores it.
//!
//! File format (JSON, written by `slowscan learn`, read by the sensor):
//!
//! ```json
//! {"version":1,"entries":[{"ip":"198.51.100.7","port":80,"established":12,
//!   "first_seen":"2014-06-24T09:00:03.000000000Z","last_seen":"2014-06-24T17:59:41.000000000Z"}]}
//! ```
//!
//! `established`, `first_seen` and `last_seen` are optional when reading, so a
//! hand-written whitelist needs only `ip` and `port`. A hand-written entry
//! may also be a rule over many destinations: `"ip"` a CIDR prefix
//! (`"198.51.100.0/24"`, `"2001:db8::/32"`) and/or `"port"` a range
//! (`"1000-2000"`) or `"*"` (every port).

use std::{
    collections::HashMap,
    fmt, fs, io,
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::{Deserialize, Serialize};
use slowscan_common::WhitelistKey;

use crate::ignore::Prefix;
use crate::rfc3339;

/// The only file version this build reads and writes.
pub const FILE_VERSION: u32 = 1;

/// R4.3: the paper's most frequent destination ports, in its order.
pub const PAPER_TOP_PORTS: [u16; 10] = [3128, 80, 5666, 443, 515, 22, 445, 23, 995, 110];

/// Whitelist learning (R4.1–R4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnConfig {
    /// Ports ≥ 1024 that are eligible besides the well-known ports 1–1023
    /// (R4.3). Default: the ≥ 1024 ports of [`PAPER_TOP_PORTS`] (3128, 5666).
    pub eligible_high_ports: Vec<u16>,
}

impl Default for LearnConfig {
    fn default() -> Self {
        Self {
            eligible_high_ports: PAPER_TOP_PORTS
                .iter()
                .copied()
                .filter(|&p| p >= 1024)
                .collect(),
        }
    }
}

impl LearnConfig {
    /// R4.3: well-known ports (1–1023) are always eligible; higher ports only
    /// when listed. Port 0 is never eligible (it cannot be a real service).
    pub fn is_eligible(&self, port: u16) -> bool {
        (1..1024).contains(&port) || self.eligible_high_ports.contains(&port)
    }
}

/// What is known about one whitelisted destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WhitelistEntry {
    /// Established connections seen while learning.
    pub established: u64,
    /// Wall-clock Unix nanoseconds of the first and latest Established
    /// connection, when known.
    pub first_seen_ns: Option<i64>,
    pub last_seen_ns: Option<i64>,
}

/// Every destination in an address prefix on a range of ports (R4.4):
/// `198.51.100.0/24:80`, `[2001:db8::/32]:1000-2000`, `198.51.100.7:*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WhitelistRule {
    pub prefix: Prefix,
    /// First and last port (inclusive).
    pub ports: (u16, u16),
}

impl WhitelistRule {
    #[inline]
    pub fn contains(&self, key: &WhitelistKey) -> bool {
        (self.ports.0..=self.ports.1).contains(&key.port)
            && self.prefix.contains(key.family, &key.addr)
    }

    /// The rule of exactly one destination.
    pub fn from_key(k: &WhitelistKey) -> Self {
        let host = if k.family == slowscan_common::AF_INET {
            32
        } else {
            128
        };
        Self {
            prefix: Prefix::masked(ip_of(k), host),
            ports: (k.port, k.port),
        }
    }

    /// A single destination (a host prefix and one port) is no rule.
    pub fn as_key(&self) -> Option<WhitelistKey> {
        let host = if self.prefix.family() == slowscan_common::AF_INET {
            32
        } else {
            128
        };
        (self.prefix.prefix_len() == host && self.ports.0 == self.ports.1)
            .then(|| WhitelistKey::new(self.prefix.family(), *self.prefix.bytes(), self.ports.0))
    }

    /// `80`, `1000-2000`, `*`.
    pub(crate) fn port_text(&self) -> String {
        match self.ports {
            (1, 65535) => "*".into(),
            (a, b) if a == b => a.to_string(),
            (a, b) => format!("{a}-{b}"),
        }
    }
}

/// `PORT`, `FIRST-LAST` or `*` (1–65535).
pub fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let t = s.trim();
    let port = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u32>() {
            Ok(n @ 1..=65535) => Ok(n as u16),
            _ => Err(format!("{p:?} is not a TCP port (1–65535)")),
        }
    };
    if t == "*" {
        return Ok((1, 65535));
    }
    match t.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("{t:?}: the range runs backwards (write {b}-{a})"));
            }
            Ok((a, b))
        }
        None => port(t).map(|p| (p, p)),
    }
}

impl FromStr for WhitelistRule {
    type Err = String;

    /// `ADDR[/LEN]:PORTS`, IPv6 in brackets: `[2001:db8::/32]:443`.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || {
            format!(
                "`{t}` is not a destination: write ADDR:PORT, PREFIX:PORT, ADDR:FIRST-LAST or ADDR:* \
                 (e.g. 198.51.100.7:80, 198.51.100.0/24:80, [2001:db8::/32]:1000-2000, 198.51.100.7:*)"
            )
        };
        let (addr, ports) = match t.strip_prefix('[') {
            Some(rest) => {
                let (a, p) = rest.split_once("]:").ok_or_else(bad)?;
                (a, p)
            }
            // Two colons or more: IPv6 without brackets, where the port cannot
            // be told from the address (`2001:db8::1:443`); never guess.
            None if t.matches(':').count() > 1 => return Err(unbracketed_v6(t)),
            None => t.rsplit_once(':').ok_or_else(bad)?,
        };
        let prefix: Prefix = addr
            .parse()
            .map_err(|e: crate::ignore::PrefixError| e.to_string())?;
        let ports = parse_ports(ports).map_err(|e| format!("`{t}`: {e}"))?;
        Ok(Self { prefix, ports })
    }
}

/// The error for an IPv6 destination written without brackets: the form to
/// write, and what the text could have meant.
fn unbracketed_v6(t: &str) -> String {
    let mut e = format!(
        "`{t}`: an IPv6 destination is written in brackets with the port after them, \
         [ADDR]:PORT or [PREFIX]:PORTS (e.g. [2001:db8::1]:443, [2001:db8::/32]:1000-2000; \
         quote it for the shell)"
    );
    // Both may hold (`2001:db8::1:443`): say both.
    if t.parse::<Prefix>().is_ok() {
        e += &format!("; as an address or prefix with no port, write [{t}]:PORT");
    }
    if let Some((a, p)) = t.rsplit_once(':')
        && a.parse::<Prefix>().is_ok()
        && parse_ports(p).is_ok()
    {
        e += &format!("; if {p} is the port, write [{a}]:{p}");
    }
    e
}

impl fmt::Display for WhitelistRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v4 = self.prefix.family() == slowscan_common::AF_INET;
        let host = self.prefix.prefix_len() == if v4 { 32 } else { 128 };
        let addr = if host {
            self.prefix.addr().to_string()
        } else {
            self.prefix.to_string()
        };
        if v4 {
            write!(f, "{addr}:{}", self.port_text())
        } else {
            write!(f, "[{addr}]:{}", self.port_text())
        }
    }
}

/// A set of [`WhitelistKey`]s with per-entry metadata, and rules over many
/// destinations.
#[derive(Clone, Debug, Default)]
pub struct Whitelist {
    entries: HashMap<WhitelistKey, WhitelistEntry, foldhash::fast::RandomState>,
    /// Checked one by one after the exact lookup: meant for a few dozen.
    rules: Vec<(WhitelistRule, WhitelistEntry)>,
}

impl PartialEq for Whitelist {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.rules == other.rules
    }
}

/// Why a whitelist could not be read or written. Every message names the
/// file; a cause is part of the message, not a `source()` (`{:#}` would
/// print it twice).
#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    #[error("cannot read whitelist {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("cannot write whitelist {}: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
    #[error(
        "whitelist {origin} is not JSON of the form {{\"version\":1,\"entries\":[{{\"ip\":…,\"port\":…}}]}}: {cause}"
    )]
    Json {
        origin: String,
        cause: serde_json::Error,
    },
    #[error(
        "whitelist {origin} has version {found}, but this slowscan reads version {FILE_VERSION}; learn it again with `slowscan learn`"
    )]
    Version { origin: String, found: u64 },
    #[error("whitelist {origin}, entry {index} ({entry}): {reason}")]
    Entry {
        origin: String,
        index: usize,
        entry: String,
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct FileRepr {
    version: u64,
    #[serde(default)]
    entries: Vec<EntryRepr>,
}

#[derive(Serialize, Deserialize)]
struct EntryRepr {
    ip: String,
    /// A number, `"FIRST-LAST"` or `"*"`; any JSON value, so that a bad one
    /// gives our own message, not serde's.
    port: serde_json::Value,
    #[serde(default)]
    established: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

/// The rule a file entry's `"ip"` and `"port"` write; the error says what to write.
pub(crate) fn entry_rule(ip: &str, port: &serde_json::Value) -> Result<WhitelistRule, String> {
    let prefix: Prefix = ip.trim().parse().map_err(|err: crate::ignore::PrefixError| {
        format!(
            "{err} (an entry's \"ip\" is an address such as \"198.51.100.7\" or a prefix such as \"198.51.100.0/24\")"
        )
    })?;
    let ports = match port {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(p @ 1..=65535) => (p as u16, p as u16),
            _ => return Err(format!("port {n} is not a TCP port (1–65535)")),
        },
        serde_json::Value::String(s) => parse_ports(s)?,
        other => {
            return Err(format!(
                "port {other} is not a port, a range \"1000-2000\" or \"*\""
            ));
        }
    };
    Ok(WhitelistRule { prefix, ports })
}

/// The whitelist key of a destination given as an address.
pub fn key_of(ip: IpAddr, port: u16) -> WhitelistKey {
    let (family, addr) = crate::addr::addr_of(ip);
    WhitelistKey::new(family, addr, port)
}

/// The address of a whitelist key.
pub fn ip_of(key: &WhitelistKey) -> IpAddr {
    crate::addr::ip_from(key.family, &key.addr)
}

impl Whitelist {
    pub fn new() -> Self {
        Self::default()
    }

    /// Exact entries and rules.
    pub fn len(&self) -> usize {
        self.entries.len() + self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.rules.is_empty()
    }

    /// R4.4: is traffic to this destination ignored?
    #[inline]
    pub fn contains(&self, key: &WhitelistKey) -> bool {
        (!self.entries.is_empty() && self.entries.contains_key(key))
            || self.rules.iter().any(|(r, _)| r.contains(key))
    }

    /// The rules (prefixes and port ranges), in file order.
    pub fn rules(&self) -> impl Iterator<Item = &WhitelistRule> {
        self.rules.iter().map(|(r, _)| r)
    }

    /// Adds a rule (or, for a single destination, an exact entry); false if
    /// it was there.
    pub fn insert_rule(&mut self, rule: WhitelistRule) -> bool {
        if let Some(k) = rule.as_key() {
            return self.entries.insert(k, WhitelistEntry::default()).is_none();
        }
        if self.rules.iter().any(|(r, _)| *r == rule) {
            return false;
        }
        self.rules.push((rule, WhitelistEntry::default()));
        true
    }

    /// Removes a rule (exactly as added); false if it was not there.
    pub fn remove_rule(&mut self, rule: &WhitelistRule) -> bool {
        if let Some(k) = rule.as_key() {
            return self.entries.remove(&k).is_some();
        }
        let before = self.rules.len();
        self.rules.retain(|(r, _)| r != rule);
        self.rules.len() != before
    }

    pub fn get(&self, key: &WhitelistKey) -> Option<&WhitelistEntry> {
        self.entries.get(key)
    }

    /// Adds or replaces an entry; returns the previous one.
    pub fn insert(&mut self, key: WhitelistKey, entry: WhitelistEntry) -> Option<WhitelistEntry> {
        self.entries.insert(key, entry)
    }

    pub fn remove(&mut self, key: &WhitelistKey) -> Option<WhitelistEntry> {
        self.entries.remove(key)
    }

    /// Keys in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &WhitelistKey> {
        self.entries.keys()
    }

    /// Entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&WhitelistKey, &WhitelistEntry)> {
        self.entries.iter()
    }

    /// Keys sorted by (family, address, port): IPv4 first, a stable order for
    /// files and for filling the kernel map.
    pub fn sorted_keys(&self) -> Vec<WhitelistKey> {
        let mut keys: Vec<_> = self.entries.keys().copied().collect();
        keys.sort_unstable_by_key(|k| (k.family, k.addr, k.port));
        keys
    }

    /// R4.2: one more Established connection to `key`, seen at `unix_ns`.
    pub fn record_established(&mut self, key: WhitelistKey, unix_ns: i64) {
        let e = self.entries.entry(key).or_default();
        e.established += 1;
        e.first_seen_ns = Some(e.first_seen_ns.map_or(unix_ns, |f| f.min(unix_ns)));
        e.last_seen_ns = Some(e.last_seen_ns.map_or(unix_ns, |l| l.max(unix_ns)));
    }

    /// Reads a whitelist file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WhitelistError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| WhitelistError::Read {
            path: path.to_owned(),
            cause: source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses the file format; `origin` names the input in error messages.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, WhitelistError> {
        let origin = origin.to_owned();
        let repr: FileRepr = serde_json::from_str(text).map_err(|source| WhitelistError::Json {
            origin: origin.clone(),
            cause: source,
        })?;
        if repr.version != u64::from(FILE_VERSION) {
            return Err(WhitelistError::Version {
                origin,
                found: repr.version,
            });
        }
        let mut wl = Whitelist::new();
        for (index, e) in repr.entries.iter().enumerate() {
            let bad = |reason: String| WhitelistError::Entry {
                origin: origin.clone(),
                index,
                entry: format!("ip {:?}, port {}", e.ip, e.port),
                reason,
            };
            let rule = entry_rule(&e.ip, &e.port).map_err(bad)?;
            let seen = |s: &Option<String>, what: &str| -> Result<Option<i64>, WhitelistError> {
                match s {
                    None => Ok(None),
                    Some(s) => rfc3339::parse(s).map(Some).ok_or_else(|| {
                        bad(format!(
                            "{what} {s:?} is not an RFC 3339 time (e.g. 2014-06-24T09:00:00Z)"
                        ))
                    }),
                }
            };
            let entry = WhitelistEntry {
                established: e.established,
                first_seen_ns: seen(&e.first_seen, "first_seen")?,
                last_seen_ns: seen(&e.last_seen, "last_seen")?,
            };
            let duplicate = match rule.as_key() {
                Some(key) => wl.entries.insert(key, entry).is_some(),
                None if wl.rules.iter().any(|(r, _)| *r == rule) => true,
                None => {
                    wl.rules.push((rule, entry));
                    false
                }
            };
            if duplicate {
                return Err(bad(
                    "the same address and port appear in an earlier entry".into()
                ));
            }
        }
        Ok(wl)
    }

    /// The file format: entries sorted by address then port, then the rules
    /// in their order.
    pub fn to_json(&self) -> String {
        let repr = |ip: String, port: serde_json::Value, e: &WhitelistEntry| EntryRepr {
            ip,
            port,
            established: e.established,
            first_seen: e.first_seen_ns.map(rfc3339::format),
            last_seen: e.last_seen_ns.map(rfc3339::format),
        };
        let entries = self
            .sorted_keys()
            .into_iter()
            .map(|k| repr(ip_of(&k).to_string(), k.port.into(), &self.entries[&k]))
            .chain(self.rules.iter().map(|(r, e)| {
                let port = match r.ports {
                    (a, b) if a == b => a.into(),
                    _ => r.port_text().into(),
                };
                repr(r.prefix.to_string(), port, e)
            }))
            .collect();
        let repr = FileRepr {
            version: u64::from(FILE_VERSION),
            entries,
        };
        serde_json::to_string_pretty(&repr).expect("whitelist serialises") + "\n"
    }

    /// Writes the file atomically, durable across power loss (a learned
    /// day must not be lost).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WhitelistError> {
        let path = path.as_ref();
        crate::atomic::write(
            path,
            self.to_json().as_bytes(),
            crate::atomic::Durability::Power,
        )
        .map_err(|source| WhitelistError::Write {
            path: path.to_owned(),
            cause: source,
        })
    }
}

impl FromIterator<WhitelistKey> for Whitelist {
    fn from_iter<I: IntoIterator<Item = WhitelistKey>>(iter: I) -> Self {
        let mut wl = Whitelist::new();
        for k in iter {
            wl.entries.entry(k).or_default();
        }
        wl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_4_rules_cover_prefixes_and_port_ranges() {
        let mut wl = Whitelist::new();
        for r in [
            "198.51.100.0/24:80",
            "[2001:db8::/32]:1000-2000",
            "203.0.113.7:*",
        ] {
            let rule: WhitelistRule = r.parse().unwrap();
            assert_eq!(rule.to_string(), r);
            assert!(wl.insert_rule(rule));
        }
        // A single destination written as a rule is an exact entry.
        assert!(wl.insert_rule("198.51.100.9:22".parse().unwrap()));
        assert!(wl.contains(&k("198.51.100.9", 22)));
        for (ip, port, yes) in [
            ("198.51.100.1", 80, true),
            ("198.51.100.254", 80, true),
            ("198.51.101.1", 80, false),
            ("198.51.100.1", 81, false),
            ("2001:db8:ffff::1", 1000, true),
            ("2001:db8::1", 2000, true),
            ("2001:db8::1", 2001, false),
            ("2001:db9::1", 1500, false),
            ("203.0.113.7", 1, true),
            ("203.0.113.7", 65535, true),
            ("203.0.113.8", 443, false),
        ] {
            assert_eq!(wl.contains(&k(ip, port)), yes, "{ip}:{port}");
        }
        // The file keeps rules; reading it back gives the same whitelist.
        let back = Whitelist::from_json(&wl.to_json(), "t.json").unwrap();
        assert_eq!(back, wl);
        assert!(wl.remove_rule(&"203.0.113.7:*".parse().unwrap()));
        assert!(!wl.contains(&k("203.0.113.7", 1)));
        for (bad, want) in [
            ("198.51.100.7/24:80", "198.51.100.0/24"),
            ("198.51.100.0/24:0", "TCP port"),
            ("198.51.100.0/24:2000-1000", "backwards"),
            ("198.51.100.0/24", "ADDR:PORT"),
            ("[2001:db8::/32:80", "ADDR:PORT"),
            // IPv6 needs brackets; the message says so and never guesses.
            ("2001:db8::1", "write [2001:db8::1]:PORT"),
            (
                "2001:db8::/32:443",
                "if 443 is the port, write [2001:db8::/32]:443",
            ),
            (
                "2001:db8::1:443",
                "[2001:db8::1:443]:PORT; if 443 is the port, write [2001:db8::1]:443",
            ),
            ("::ffff:198.51.100.7:80", "in brackets"),
        ] {
            let e = bad.parse::<WhitelistRule>().unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let e = Whitelist::from_json(
            r#"{"version":1,"entries":[{"ip":"198.51.100.0/24","port":"1-x"}]}"#,
            "wl.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("wl.json") && e.contains("entry 0"), "{e}");
    }

    fn k(ip: &str, port: u16) -> WhitelistKey {
        key_of(ip.parse().unwrap(), port)
    }

    #[test]
    fn r4_3_eligible_ports_default_to_paper_list() {
        let l = LearnConfig::default();
        assert_eq!(l.eligible_high_ports, vec![3128, 5666]);
        for p in [22, 80, 443, 515, 1023, 3128, 5666] {
            assert!(l.is_eligible(p), "{p}");
        }
        for p in [0, 1024, 8080, 65535] {
            assert!(!l.is_eligible(p), "{p}");
        }
    }

    #[test]
    fn r4_file_round_trips() {
        let mut wl = Whitelist::new();
        wl.record_established(k("198.51.100.7", 80), 1_403_604_000_000_000_000);
        wl.record_established(k("198.51.100.7", 80), 1_403_600_400_000_000_000);
        wl.insert(k("2001:db8::7", 22), WhitelistEntry::default());
        let text = wl.to_json();
        let back = Whitelist::from_json(&text, "t.json").unwrap();
        assert_eq!(back, wl);
        let e = back.get(&k("198.51.100.7", 80)).unwrap();
        assert_eq!(e.established, 2);
        assert_eq!(e.first_seen_ns, Some(1_403_600_400_000_000_000));
        assert_eq!(e.last_seen_ns, Some(1_403_604_000_000_000_000));
        assert!(
            text.contains("\"first_seen\": \"2014-06-24T09:00:00.000000000Z\""),
            "{text}"
        );
        assert!(
            text.find("198.51.100.7") < text.find("2001:db8::7"),
            "IPv4 first: {text}"
        );
        assert!(back.contains(&k("2001:db8::7", 22)));
        assert!(!back.contains(&k("2001:db8::7", 23)));
    }

    #[test]
    fn r4_bad_entries_are_named() {
        let cases = [
            (
                r#"{"version":1,"entries":[{"ip":"10.0.0.300","port":80}]}"#,
                "entry 0",
            ),
            (
                r#"{"version":1,"entries":[{"ip":"10.0.0.3","port":80},{"ip":"10.0.0.3","port":0}]}"#,
                "entry 1",
            ),
            (
                r#"{"version":1,"entries":[{"ip":"10.0.0.3","port":65536}]}"#,
                "port 65536",
            ),
            (
                r#"{"version":1,"entries":[{"ip":"10.0.0.3","port":80},{"ip":"10.0.0.3","port":80}]}"#,
                "earlier entry",
            ),
            (
                r#"{"version":1,"entries":[{"ip":"10.0.0.3","port":80,"first_seen":"soon"}]}"#,
                "first_seen",
            ),
            (r#"{"version":2,"entries":[]}"#, "version 2"),
            (r#"{"entries":[]}"#, "not JSON of the form"),
        ];
        for (text, want) in cases {
            let e = Whitelist::from_json(text, "wl.json")
                .unwrap_err()
                .to_string();
            assert!(e.contains("wl.json") && e.contains(want), "{text}: {e}");
        }
        let e = Whitelist::load("/nonexistent/wl.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/wl.json"), "{e}");
    }

    #[test]
    fn r4_save_and_load() {
        let dir = std::env::temp_dir().join(format!("slowscan-wl-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wl.json");
        let wl: Whitelist = [k("192.0.2.1", 443), k("192.0.2.2", 3128)]
            .into_iter()
            .collect();
        wl.save(&path).unwrap();
        assert_eq!(Whitelist::load(&path).unwrap(), wl);
        assert_eq!(
            wl.sorted_keys(),
            vec![k("192.0.2.1", 443), k("192.0.2.2", 3128)]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
