//! The kernel ignore list (R4.6): LPM tries of source prefixes, one per
//! family, and the per-family "entries present" flags that let the kernel
//! skip the trie lookup while a family's list is empty.
use std::borrow::{Borrow, BorrowMut};

use anyhow::Context;
use aya::maps::{
    Array, MapData,
    lpm_trie::{Key, LpmTrie},
};
use slowscan_common::{AF_INET, IGNORE_MAX};

use super::flags::{ActiveFlags, is_absent, is_full};
use crate::ignore::{IgnoreList, Prefix};

/// A typed view of the kernel ignore maps, owned (pinned, second process) or
/// borrowed from a loaded `DataPlane`.
pub struct IgnoreMap<T> {
    v4: LpmTrie<T, [u8; 4], u8>,
    v6: LpmTrie<T, [u8; 16], u8>,
    active: ActiveFlags<T>,
}

fn key4(p: &Prefix) -> Key<[u8; 4]> {
    let b = p.bytes();
    Key::new(u32::from(p.prefix_len()), [b[0], b[1], b[2], b[3]])
}

fn key6(p: &Prefix) -> Key<[u8; 16]> {
    Key::new(u32::from(p.prefix_len()), *p.bytes())
}

impl<T: Borrow<MapData>> IgnoreMap<T> {
    pub fn new(
        v4: LpmTrie<T, [u8; 4], u8>,
        v6: LpmTrie<T, [u8; 16], u8>,
        active: Array<T, u32>,
    ) -> Self {
        Self {
            v4,
            v6,
            active: ActiveFlags::new(active, "kernel ignore map's"),
        }
    }

    /// Is exactly this prefix in the map (not: is an address covered)? Each
    /// entry's value is its own length, so the longest match within the
    /// prefix's bits is the prefix itself exactly when that length comes back.
    pub fn contains(&self, p: &Prefix) -> bool {
        let got = if p.family() == AF_INET {
            self.v4.get(&key4(p), 0)
        } else {
            self.v6.get(&key6(p), 0)
        };
        got.is_ok_and(|len| len == p.prefix_len())
    }

    /// Every prefix in the map, sorted (IPv4 first).
    pub fn list(&self) -> anyhow::Result<Vec<Prefix>> {
        let mut v = Vec::new();
        for k in self.v4.keys() {
            let k = k.context("listing the kernel ignore map (IPv4)")?;
            v.push(Prefix::masked(
                std::net::Ipv4Addr::from(k.data()).into(),
                k.prefix_len() as u8,
            ));
        }
        for k in self.v6.keys() {
            let k = k.context("listing the kernel ignore map (IPv6)")?;
            v.push(Prefix::masked(
                std::net::Ipv6Addr::from(k.data()).into(),
                k.prefix_len() as u8,
            ));
        }
        v.sort();
        Ok(v)
    }

    /// The kernel map as an [`IgnoreList`].
    pub fn to_list(&self) -> anyhow::Result<IgnoreList> {
        Ok(self.list()?.into_iter().collect())
    }
}

impl<T: BorrowMut<MapData>> IgnoreMap<T> {
    /// Adds a prefix; the kernel drops its sources' traffic from the next frame on.
    pub fn insert(&mut self, p: &Prefix) -> anyhow::Result<()> {
        let r = if p.family() == AF_INET {
            self.v4.insert(&key4(p), p.prefix_len(), 0)
        } else {
            self.v6.insert(&key6(p), p.prefix_len(), 0)
        };
        r.map_err(|e| {
            if is_full(&e) {
                anyhow::anyhow!(
                    "the kernel ignore map is full ({IGNORE_MAX} prefixes per address family): \
                     remove prefixes or merge them into shorter ones"
                )
            } else {
                anyhow::Error::new(e).context(format!("adding {p} to the kernel ignore map"))
            }
        })?;
        self.active.raise(slot(p.family()))
    }

    /// Removes exactly this prefix; returns whether it was present.
    pub fn remove(&mut self, p: &Prefix) -> anyhow::Result<bool> {
        let r = if p.family() == AF_INET {
            self.v4.remove(&key4(p))
        } else {
            self.v6.remove(&key6(p))
        };
        let was = match r {
            Ok(()) => true,
            Err(e) if is_absent(&e) => false,
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("removing {p} from the kernel ignore map")));
            }
        };
        let (v4, v6) = (&self.v4, &self.v6);
        let empty = || {
            if p.family() == AF_INET {
                v4.keys().next().is_none()
            } else {
                v6.keys().next().is_none()
            }
        };
        self.active.settle(slot(p.family()), empty)?;
        Ok(was)
    }

    /// Adds every prefix of `list`.
    pub fn load(&mut self, list: &IgnoreList) -> anyhow::Result<()> {
        for p in list.iter() {
            self.insert(p)?;
        }
        Ok(())
    }
}

/// The active flag's slot of a family.
fn slot(family: u8) -> u32 {
    u32::from(family != AF_INET)
}
