//! The kernel whitelist (R4.4): what it holds is dropped before analysis.
//! Single destinations sit in an exact hash map, looked up first in O(1);
//! rules over many destinations (a prefix, a port range, every port) sit in
//! two LPM tries the kernel consults only while they hold entries.
use std::{
    borrow::{Borrow, BorrowMut},
    collections::{BTreeMap, BTreeSet},
};

use anyhow::Context;
use aya::maps::{
    Array, HashMap, MapData, MapError,
    lpm_trie::{Key, LpmTrie},
};
use slowscan_common::{RULE_HEAD_BITS, WHITELIST_RULES_MAX, WhitelistKey, WhitelistRuleKey};

use super::flags::{ActiveFlags, is_absent, is_full};
use crate::{
    addr::ip_from,
    ignore::Prefix,
    whitelist::{Whitelist, WhitelistRule, ip_of},
};

/// The rule flags' slots (`slowscan_common::maps::WHITELIST_RULES_ACTIVE`).
const PORT_SLOT: u32 = 0;
const ANY_SLOT: u32 = 1;

/// A typed view of the kernel whitelist maps, owned (pinned, second
/// process) or borrowed from a loaded `DataPlane`.
pub struct WhitelistMap<T> {
    exact: HashMap<T, WhitelistKey, u8>,
    /// The exact map's size (its max entries), for the map-full message.
    capacity: u32,
    port_rules: LpmTrie<T, WhitelistRuleKey, u8>,
    any_port: LpmTrie<T, WhitelistRuleKey, u8>,
    active: ActiveFlags<T>,
}

/// The kernel maps behind a [`WhitelistMap`].
pub struct WhitelistMaps<T> {
    pub exact: HashMap<T, WhitelistKey, u8>,
    pub capacity: u32,
    pub port_rules: LpmTrie<T, WhitelistRuleKey, u8>,
    pub any_port: LpmTrie<T, WhitelistRuleKey, u8>,
    pub active: Array<T, u32>,
}

/// One trie entry of a rule: which trie, the key, the address prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RuleEntry {
    any_port: bool,
    key: WhitelistRuleKey,
    len: u8,
}

impl RuleEntry {
    fn lpm(&self) -> Key<WhitelistRuleKey> {
        Key::new(RULE_HEAD_BITS + u32::from(self.len), self.key)
    }
}

/// A rule's trie entries: one for a rule on every port, else one per port.
fn entries(rule: &WhitelistRule) -> impl Iterator<Item = RuleEntry> + '_ {
    let p = &rule.prefix;
    let entry = move |any_port, port| RuleEntry {
        any_port,
        key: WhitelistRuleKey::new(p.family(), *p.bytes(), port),
        len: p.prefix_len(),
    };
    let every = rule.ports == (1, u16::MAX);
    let ports = (!every).then_some(rule.ports.0..=rule.ports.1);
    every.then(|| entry(true, 0)).into_iter().chain(
        ports
            .into_iter()
            .flatten()
            .map(move |port| entry(false, port)),
    )
}

/// Ports a rule takes in the port trie (one per port of its range).
fn port_entries(rule: &WhitelistRule) -> u32 {
    match rule.ports {
        (1, u16::MAX) => 0,
        (a, b) => u32::from(b - a) + 1,
    }
}

fn full_message(capacity: u32) -> String {
    format!(
        "the kernel whitelist map is full ({capacity} entries): start the sensor with a larger \
         --whitelist-max (the map's size), or remove entries"
    )
}

fn rules_full_message() -> String {
    format!(
        "the kernel whitelist rule table is full ({WHITELIST_RULES_MAX} entries; a port range \
         takes one per port): use fewer or narrower ranges, or `*` for every port"
    )
}

impl<T: Borrow<MapData>> WhitelistMap<T> {
    pub fn new(maps: WhitelistMaps<T>) -> Self {
        Self {
            exact: maps.exact,
            capacity: maps.capacity,
            port_rules: maps.port_rules,
            any_port: maps.any_port,
            active: ActiveFlags::new(maps.active, "kernel whitelist rules'"),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Is this exact destination in the exact map?
    pub fn contains(&self, key: &WhitelistKey) -> bool {
        self.exact.get(key, 0).is_ok()
    }

    /// Would the kernel drop traffic to `key`, by the exact map or a rule?
    pub fn matches(&self, key: &WhitelistKey) -> bool {
        let lookup = |trie: &LpmTrie<T, WhitelistRuleKey, u8>, port| {
            let k = WhitelistRuleKey::new(key.family, key.addr, port);
            trie.get(&Key::new(RULE_HEAD_BITS + 128, k), 0).is_ok()
        };
        self.contains(key) || lookup(&self.port_rules, key.port) || lookup(&self.any_port, 0)
    }

    /// Is every entry of `rule` in the maps, exactly (not merely covered)?
    pub fn has_rule(&self, rule: &WhitelistRule) -> bool {
        if let Some(k) = rule.as_key() {
            return self.contains(&k);
        }
        entries(rule).all(|e| self.has_entry(&e))
    }

    fn has_entry(&self, e: &RuleEntry) -> bool {
        // The value is the entry's own length: a longest match at this
        // entry's length is the entry itself.
        self.trie(e.any_port)
            .get(&e.lpm(), 0)
            .is_ok_and(|len| len == e.len)
    }

    fn trie(&self, any_port: bool) -> &LpmTrie<T, WhitelistRuleKey, u8> {
        if any_port {
            &self.any_port
        } else {
            &self.port_rules
        }
    }

    /// The exact map's keys, sorted.
    pub fn keys(&self) -> anyhow::Result<Vec<WhitelistKey>> {
        let mut v = Vec::new();
        for k in self.exact.keys() {
            v.push(k.context("listing the kernel whitelist map")?);
        }
        v.sort();
        Ok(v)
    }

    fn rule_entries(&self) -> anyhow::Result<BTreeSet<RuleEntry>> {
        let mut set = BTreeSet::new();
        for any_port in [false, true] {
            for k in self.trie(any_port).keys() {
                let k = k.context("listing the kernel whitelist rules")?;
                let len = k.prefix_len().saturating_sub(RULE_HEAD_BITS) as u8;
                set.insert(RuleEntry {
                    any_port,
                    key: k.data(),
                    len,
                });
            }
        }
        Ok(set)
    }

    /// The rules in the tries, a port range per run of consecutive ports,
    /// sorted (IPv4 first).
    pub fn rules(&self) -> anyhow::Result<Vec<WhitelistRule>> {
        let mut ports: BTreeMap<Prefix, Vec<u16>> = BTreeMap::new();
        let mut rules = Vec::new();
        for e in self.rule_entries()? {
            let prefix = Prefix::masked(ip_from(e.key.family, &e.key.addr), e.len);
            if e.any_port {
                rules.push(WhitelistRule {
                    prefix,
                    ports: (1, u16::MAX),
                });
            } else {
                ports.entry(prefix).or_default().push(e.key.port());
            }
        }
        for (prefix, mut list) in ports {
            list.sort_unstable();
            let mut run: Option<(u16, u16)> = None;
            for p in list {
                run = match run {
                    Some((a, b)) if b.checked_add(1) == Some(p) => Some((a, p)),
                    Some(r) => {
                        rules.push(WhitelistRule { prefix, ports: r });
                        Some((p, p))
                    }
                    None => Some((p, p)),
                };
            }
            rules.extend(run.map(|ports| WhitelistRule { prefix, ports }));
        }
        rules.sort();
        Ok(rules)
    }
}

impl<T: BorrowMut<MapData>> WhitelistMap<T> {
    pub fn insert(&mut self, key: WhitelistKey) -> anyhow::Result<()> {
        self.exact.insert(key, 1, 0).map_err(|e| {
            if is_full(&e) {
                anyhow::anyhow!(full_message(self.capacity))
            } else {
                anyhow::Error::new(e).context("adding a whitelist entry to the kernel map")
            }
        })
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &WhitelistKey) -> anyhow::Result<bool> {
        match self.exact.remove(key) {
            Ok(()) => Ok(true),
            Err(e) if is_absent(&e) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("removing a whitelist entry")),
        }
    }

    /// Adds a rule: a single destination to the exact map, anything wider
    /// to the tries. All or nothing: on a full table the entries this call
    /// added are taken out again.
    pub fn insert_rule(&mut self, rule: &WhitelistRule) -> anyhow::Result<()> {
        if let Some(k) = rule.as_key() {
            return self.insert(k);
        }
        if port_entries(rule) > WHITELIST_RULES_MAX {
            anyhow::bail!("{rule}: {}", rules_full_message());
        }
        let mut added = Vec::new();
        for e in entries(rule) {
            if self.has_entry(&e) {
                continue;
            }
            if let Err(err) = self.add_entry(&e) {
                for a in &added {
                    let _ = self.remove_entry(a);
                }
                return Err(err.context(format!("whitelisting {rule}")));
            }
            added.push(e);
        }
        Ok(())
    }

    /// Removes a rule's entries; returns whether any was present. An
    /// overlapping rule's shared entries go too: re-add what must stay
    /// ([`Self::sync`] does).
    pub fn remove_rule(&mut self, rule: &WhitelistRule) -> anyhow::Result<bool> {
        if let Some(k) = rule.as_key() {
            return self.remove(&k);
        }
        let mut any = false;
        for e in entries(rule) {
            any |= self.remove_entry(&e)?;
        }
        Ok(any)
    }

    fn add_entry(&mut self, e: &RuleEntry) -> anyhow::Result<()> {
        let trie = if e.any_port {
            &mut self.any_port
        } else {
            &mut self.port_rules
        };
        trie.insert(&e.lpm(), e.len, 0).map_err(|err| {
            if is_full(&err) {
                anyhow::anyhow!(rules_full_message())
            } else {
                anyhow::Error::new(err).context("adding a whitelist rule to the kernel")
            }
        })?;
        self.active.raise(slot(e.any_port))
    }

    fn remove_entry(&mut self, e: &RuleEntry) -> anyhow::Result<bool> {
        let trie = if e.any_port {
            &mut self.any_port
        } else {
            &mut self.port_rules
        };
        let was = match trie.remove(&e.lpm()) {
            Ok(()) => true,
            Err(err) if is_absent(&err) => false,
            Err(err) => return Err(remove_error(err)),
        };
        let trie = if e.any_port {
            &self.any_port
        } else {
            &self.port_rules
        };
        self.active
            .settle(slot(e.any_port), || trie.keys().next().is_none())?;
        Ok(was)
    }

    /// Adds every entry and rule of `wl`.
    pub fn load(&mut self, wl: &Whitelist) -> anyhow::Result<()> {
        for k in wl.sorted_keys() {
            self.insert(k)
                .with_context(|| format!("whitelisting {}:{}", ip_of(&k), k.port))?;
        }
        for r in wl.rules() {
            self.insert_rule(r)?;
        }
        Ok(())
    }

    /// Makes the maps hold exactly `want`: missing entries added first,
    /// then stale ones removed. Returns (added, removed), in kernel entries.
    pub fn sync(&mut self, want: &Whitelist) -> anyhow::Result<(usize, usize)> {
        let (mut added, mut removed) = (0, 0);
        let have = self.keys()?;
        for k in want.sorted_keys() {
            if !self.contains(&k) {
                self.insert(k)
                    .with_context(|| format!("whitelisting {}:{}", ip_of(&k), k.port))?;
                added += 1;
            }
        }
        for k in have.iter().filter(|k| want.get(k).is_none()) {
            removed += usize::from(self.remove(k)?);
        }
        let have = self.rule_entries()?;
        let mut wanted = BTreeSet::new();
        for r in want.rules() {
            if port_entries(r) > WHITELIST_RULES_MAX {
                anyhow::bail!("{r}: {}", rules_full_message());
            }
            wanted.extend(entries(r));
        }
        for e in wanted.difference(&have) {
            self.add_entry(e)?;
            added += 1;
        }
        for e in have.difference(&wanted) {
            removed += usize::from(self.remove_entry(e)?);
        }
        Ok((added, removed))
    }
}

fn remove_error(e: MapError) -> anyhow::Error {
    anyhow::Error::new(e).context("removing a whitelist rule from the kernel")
}

fn slot(any_port: bool) -> u32 {
    if any_port { ANY_SLOT } else { PORT_SLOT }
}
