//! The kernel whitelist map (R4.4): what is in it is dropped before analysis.
use std::borrow::{Borrow, BorrowMut};

use aya::maps::{HashMap, MapData, MapError};
use slowscan_common::WhitelistKey;

/// A typed view of the kernel whitelist map, owned (pinned, second process)
/// or borrowed from a loaded `DataPlane`.
pub struct WhitelistMap<T> {
    map: HashMap<T, WhitelistKey, u8>,
    /// The map's size (its max entries), for the map-full message.
    capacity: u32,
}

impl<T: Borrow<MapData>> WhitelistMap<T> {
    pub fn new(map: HashMap<T, WhitelistKey, u8>, capacity: u32) -> Self {
        Self { map, capacity }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn contains(&self, key: &WhitelistKey) -> bool {
        self.map.get(key, 0).is_ok()
    }

    pub fn keys(&self) -> anyhow::Result<Vec<WhitelistKey>> {
        let mut v = Vec::new();
        for k in self.map.keys() {
            v.push(k?);
        }
        v.sort();
        Ok(v)
    }
}

impl<T: BorrowMut<MapData>> WhitelistMap<T> {
    pub fn insert(&mut self, key: WhitelistKey) -> anyhow::Result<()> {
        self.map.insert(key, 1, 0).map_err(|e| match e {
            MapError::SyscallError(ref s) if s.io_error.raw_os_error() == Some(libc::E2BIG) => {
                anyhow::anyhow!(
                    "the kernel whitelist map is full ({} entries): start the sensor with a larger \
                     --whitelist-max (the map's size), or remove entries",
                    self.capacity
                )
            }
            e => anyhow::Error::new(e).context("adding a whitelist entry to the kernel map"),
        })
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &WhitelistKey) -> anyhow::Result<bool> {
        match self.map.remove(key) {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(false)
            }
            Err(e) => Err(anyhow::Error::new(e).context("removing a whitelist entry")),
        }
    }
}
