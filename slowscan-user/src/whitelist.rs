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
//! hand-written whitelist needs only `ip` and `port`.

use std::{
    collections::HashMap,
    fs, io,
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use slowscan_common::{AF_INET, AF_INET6, WhitelistKey};

use crate::engine::rfc3339;

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

/// A set of [`WhitelistKey`]s with per-entry metadata.
#[derive(Clone, Debug, Default)]
pub struct Whitelist {
    entries: HashMap<WhitelistKey, WhitelistEntry, foldhash::fast::RandomState>,
}

impl PartialEq for Whitelist {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// Why a whitelist could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    #[error("cannot read whitelist {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write whitelist {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "whitelist {origin} is not JSON of the form {{\"version\":1,\"entries\":[{{\"ip\":…,\"port\":…}}]}}: {source}"
    )]
    Json {
        origin: String,
        source: serde_json::Error,
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
    /// Wider than u16 so that 65536 gives our own message, not serde's.
    port: i64,
    #[serde(default)]
    established: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
}

/// The whitelist key of a destination given as an address.
pub fn key_of(ip: IpAddr, port: u16) -> WhitelistKey {
    let mut addr = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            addr[..4].copy_from_slice(&v4.octets());
            WhitelistKey::new(AF_INET, addr, port)
        }
        IpAddr::V6(v6) => {
            addr.copy_from_slice(&v6.octets());
            WhitelistKey::new(AF_INET6, addr, port)
        }
    }
}

/// The address of a whitelist key (network order, IPv4 in the first 4 bytes).
pub fn ip_of(key: &WhitelistKey) -> IpAddr {
    crate::engine::ip_from(key.family, &key.addr)
}

impl Whitelist {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// R4.4: is traffic to this destination ignored?
    #[inline]
    pub fn contains(&self, key: &WhitelistKey) -> bool {
        !self.entries.is_empty() && self.entries.contains_key(key)
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
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses the file format; `origin` names the input in error messages.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, WhitelistError> {
        let origin = origin.to_owned();
        let repr: FileRepr = serde_json::from_str(text).map_err(|source| WhitelistError::Json {
            origin: origin.clone(),
            source,
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
            let ip: IpAddr = e.ip.trim().parse().map_err(|_| {
                bad(format!(
                    "{:?} is not an IPv4 or IPv6 address (write e.g. \"198.51.100.7\" or \"2001:db8::7\")",
                    e.ip
                ))
            })?;
            if !(1..=65535).contains(&e.port) {
                return Err(bad(format!("port {} is not a TCP port (1–65535)", e.port)));
            }
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
            let key = key_of(ip, e.port as u16);
            if wl.entries.insert(key, entry).is_some() {
                return Err(bad(
                    "the same address and port appear in an earlier entry".into()
                ));
            }
        }
        Ok(wl)
    }

    /// The file format, entries sorted by address then port.
    pub fn to_json(&self) -> String {
        let entries = self
            .sorted_keys()
            .into_iter()
            .map(|k| {
                let e = &self.entries[&k];
                EntryRepr {
                    ip: ip_of(&k).to_string(),
                    port: i64::from(k.port),
                    established: e.established,
                    first_seen: e.first_seen_ns.map(rfc3339::format),
                    last_seen: e.last_seen_ns.map(rfc3339::format),
                }
            })
            .collect();
        let repr = FileRepr {
            version: u64::from(FILE_VERSION),
            entries,
        };
        serde_json::to_string_pretty(&repr).expect("whitelist serialises") + "\n"
    }

    /// Writes the file atomically (a temporary file beside it, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WhitelistError> {
        let path = path.as_ref();
        let err = |source| WhitelistError::Write {
            path: path.to_owned(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        fs::write(&tmp, self.to_json()).map_err(err)?;
        fs::rename(&tmp, path).map_err(err)
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
