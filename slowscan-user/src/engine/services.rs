//! The continuous service map (R4.5, a project rule): destinations (IP,
//! eligible port, R4.3) that some source Established (R5) recently. A
//! failure to a live service is an outage — the service was down, or
//! dropped the attempt — not reconnaissance, so it counts toward no detector.
//!
//! A destination is live for a failure whose SYN is at t when an attempt to
//! it Established with a SYN at or after t − memory (an establishment after
//! the failure counts too: the service exists). It is the paper's learned
//! whitelist (R4.1–R4.4) carried on while detecting, without a learning
//! period, and in userspace only: traffic to live services still reaches the
//! engine, whose attempts keep the map fresh.
//!
//! Bounded: at `max_services`, about the least recently Established eighth
//! gives way (counted); entries older than the memory are dropped by
//! [`ServiceMap::expire`].

use std::hash::BuildHasher;

use super::index::{SlotIndex, Stage};
use slowscan_common::WhitelistKey;

use super::SECOND_NS;
use crate::whitelist::LearnConfig;

/// Default memory of the service map: 30 days.
pub const DEFAULT_SERVICE_MEMORY_NS: u64 = 30 * 86_400 * SECOND_NS;
/// Default cap on live services.
pub const DEFAULT_MAX_SERVICES: usize = 1 << 18;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceMapConfig {
    /// How long an Established destination stays a live service.
    pub memory_ns: u64,
    pub max_services: usize,
    /// R4.3: which ports can be services.
    pub eligible: LearnConfig,
}

impl Default for ServiceMapConfig {
    fn default() -> Self {
        Self {
            memory_ns: DEFAULT_SERVICE_MEMORY_NS,
            max_services: DEFAULT_MAX_SERVICES,
            eligible: LearnConfig::default(),
        }
    }
}

pub(crate) struct ServiceMap {
    cfg: ServiceMapConfig,
    /// (destination, SYN time of its latest Established attempt); a slot
    /// with time [`FREE`] is unused.
    slab: Vec<(WhitelistKey, u64)>,
    free: Vec<u32>,
    /// Destination → slot; tells where a lookup will land, so the engine
    /// prefetches it a few records ahead.
    index: SlotIndex,
    hasher: foldhash::fast::RandomState,
    pub evicted: u64,
    rng: u64,
}

const FREE: u64 = u64::MAX;

impl ServiceMap {
    pub fn new(cfg: ServiceMapConfig) -> Self {
        Self {
            cfg,
            slab: Vec::new(),
            free: Vec::new(),
            index: SlotIndex::new(),
            hasher: Default::default(),
            evicted: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    #[inline]
    pub fn hash(&self, k: &WhitelistKey) -> u64 {
        let w = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
        self.hasher.hash_one((
            w(&k.addr[..8]),
            w(&k.addr[8..]) ^ u64::from(k.port) << 8 ^ u64::from(k.family),
        ))
    }

    /// Prefetches a lookup of `hash`: its bucket, then its entry (nothing
    /// while the map is empty).
    #[inline]
    pub fn prefetch_at(&self, stage: Stage, hash: u64) {
        if !self.slab.is_empty() {
            self.index.prefetch_stage(hash, stage, &self.slab);
        }
    }

    fn find(&self, hash: u64, key: &WhitelistKey) -> Option<u32> {
        let slab = &self.slab;
        self.index.find(hash, |i| slab[i as usize].0 == *key)
    }

    /// An attempt to `key` with its SYN at `syn_t` was Established.
    pub fn established(&mut self, key: WhitelistKey, syn_t: u64) {
        if !self.cfg.eligible.is_eligible(key.port) {
            return;
        }
        let h = self.hash(&key);
        if let Some(i) = self.find(h, &key) {
            let t = &mut self.slab[i as usize].1;
            *t = (*t).max(syn_t);
            return;
        }
        if self.len() >= self.cfg.max_services.max(1) {
            self.evict_batch();
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = (key, syn_t);
                s
            }
            None => {
                self.slab.push((key, syn_t));
                (self.slab.len() - 1) as u32
            }
        };
        self.index.insert(h, slot);
    }

    /// Is `key` a live service for a failure whose SYN was at `t`?
    #[inline]
    pub fn is_live(&self, key: &WhitelistKey, t: u64) -> bool {
        self.len() > 0
            && self
                .find(self.hash(key), key)
                .is_some_and(|i| self.slab[i as usize].1.saturating_add(self.cfg.memory_ns) >= t)
    }

    /// Forgets services not Established since `t − memory`.
    pub fn expire(&mut self, t: u64) {
        let memory = self.cfg.memory_ns;
        self.remove_where(|e| e.saturating_add(memory) < t);
    }

    fn remove_where(&mut self, gone: impl Fn(u64) -> bool) -> usize {
        let mut n = 0;
        for i in 0..self.slab.len() {
            let (k, e) = self.slab[i];
            if e != FREE && gone(e) {
                let h = self.hash(&k);
                self.index.remove(h, i as u32);
                self.slab[i].1 = FREE;
                self.free.push(i as u32);
                n += 1;
            }
        }
        n
    }

    /// Makes room: about the least recently Established eighth goes at once
    /// (the cutoff estimated from 64 sampled entries), so a full map costs
    /// one sequential pass per many insertions, not random probes on each.
    fn evict_batch(&mut self) {
        let n = self.slab.len() as u64;
        let mut sample: Vec<u64> = Vec::with_capacity(64);
        for _ in 0..256 {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let i = (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n) as usize;
            if self.slab[i].1 != FREE {
                sample.push(self.slab[i].1);
                if sample.len() == 64 {
                    break;
                }
            }
        }
        sample.sort_unstable();
        let cutoff = sample.get(sample.len() / 8).copied().unwrap_or(0);
        let mut gone = self.remove_where(|e| e <= cutoff);
        if gone == 0
            && let Some(i) = self.slab.iter().position(|e| e.1 != FREE)
        {
            let cut = self.slab[i].1;
            gone = self.remove_where(|e| e <= cut);
        }
        self.evicted += gone as u64;
    }

    /// Every live service with the SYN time of its latest Established
    /// attempt, oldest first.
    pub fn entries(&self) -> Vec<(WhitelistKey, u64)> {
        let mut v: Vec<_> = self.slab.iter().copied().filter(|e| e.1 != FREE).collect();
        v.sort_unstable_by_key(|(k, t)| (*t, k.family, k.addr, k.port));
        v
    }

    pub fn allocated_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<(WhitelistKey, u64)>()
            + self.free.capacity() * 4
            + self.index.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slowscan_common::AF_INET;

    fn key(host: u8, port: u16) -> WhitelistKey {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[198, 51, 100, host]);
        WhitelistKey::new(AF_INET, a, port)
    }

    const DAY: u64 = 86_400 * SECOND_NS;

    #[test]
    fn r4_5_live_for_the_memory_and_only_on_eligible_ports() {
        let mut m = ServiceMap::new(ServiceMapConfig::default());
        m.established(key(1, 80), 10 * DAY);
        m.established(key(1, 8080), 10 * DAY); // R4.3: not eligible
        assert!(m.is_live(&key(1, 80), 10 * DAY));
        assert!(m.is_live(&key(1, 80), 40 * DAY));
        assert!(!m.is_live(&key(1, 80), 40 * DAY + 1));
        // An establishment after the failure counts: the service exists.
        assert!(m.is_live(&key(1, 80), 9 * DAY));
        assert!(!m.is_live(&key(1, 8080), 10 * DAY));
        assert!(!m.is_live(&key(2, 80), 10 * DAY));
        m.expire(41 * DAY);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn r4_5_bounded_evicting_the_least_recently_established() {
        let mut m = ServiceMap::new(ServiceMapConfig {
            max_services: 100,
            ..ServiceMapConfig::default()
        });
        for i in 0..100u64 {
            m.established(key(i as u8, 80 + (i / 100) as u16), i);
        }
        m.established(key(200, 22), 1_000);
        assert!((80..=100).contains(&m.len()), "{}", m.len());
        assert_eq!(m.evicted as usize, 101 - m.len());
        assert!(m.is_live(&key(200, 22), 1_000));
        // The oldest went, the newest stayed.
        assert!(!m.is_live(&key(0, 80), 0) && m.is_live(&key(99, 80), 99));
    }
}
