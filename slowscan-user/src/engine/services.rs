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

use std::collections::HashMap;

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
    /// (destination, SYN time of its latest Established attempt).
    entries: Vec<(WhitelistKey, u64)>,
    index: HashMap<WhitelistKey, u32, foldhash::fast::RandomState>,
    pub evicted: u64,
    rng: u64,
}

impl ServiceMap {
    pub fn new(cfg: ServiceMapConfig) -> Self {
        Self {
            cfg,
            entries: Vec::new(),
            index: HashMap::default(),
            evicted: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// An attempt to `key` with its SYN at `syn_t` was Established.
    pub fn established(&mut self, key: WhitelistKey, syn_t: u64) {
        if !self.cfg.eligible.is_eligible(key.port) {
            return;
        }
        if let Some(&i) = self.index.get(&key) {
            let e = &mut self.entries[i as usize].1;
            *e = (*e).max(syn_t);
            return;
        }
        if self.entries.len() >= self.cfg.max_services.max(1) {
            self.evict_batch();
        }
        self.index.insert(key, self.entries.len() as u32);
        self.entries.push((key, syn_t));
    }

    /// Is `key` a live service for a failure whose SYN was at `t`?
    #[inline]
    pub fn is_live(&self, key: &WhitelistKey, t: u64) -> bool {
        !self.entries.is_empty()
            && self.index.get(key).is_some_and(|&i| {
                self.entries[i as usize]
                    .1
                    .saturating_add(self.cfg.memory_ns)
                    >= t
            })
    }

    /// Forgets services not Established since `t − memory`.
    pub fn expire(&mut self, t: u64) {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].1.saturating_add(self.cfg.memory_ns) < t {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    /// Makes room: the least recently Established eighth or so goes at
    /// once (its cutoff estimated from 64 sampled entries), so that a full
    /// map costs one sequential pass per many insertions, not random probes
    /// on every one.
    fn evict_batch(&mut self) {
        let n = self.entries.len() as u64;
        let mut sample: Vec<u64> = (0..64)
            .map(|_| {
                self.rng ^= self.rng >> 12;
                self.rng ^= self.rng << 25;
                self.rng ^= self.rng >> 27;
                let i = (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n) as usize;
                self.entries[i].1
            })
            .collect();
        sample.sort_unstable();
        let cutoff = sample[7];
        let before = self.entries.len();
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].1 <= cutoff {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        if self.entries.len() == before {
            self.remove_at(0);
        }
        self.evicted += (before - self.entries.len()) as u64;
    }

    fn remove_at(&mut self, i: usize) {
        let (key, _) = self.entries.swap_remove(i);
        self.index.remove(&key);
        if let Some(&(moved, _)) = self.entries.get(i) {
            self.index.insert(moved, i as u32);
        }
    }

    /// Every live service with the SYN time of its latest Established attempt.
    pub fn entries(&self) -> &[(WhitelistKey, u64)] {
        &self.entries
    }

    pub fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(WhitelistKey, u64)>()
            + self.index.capacity() * (std::mem::size_of::<(WhitelistKey, u32)>() + 1)
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
        // Every key still indexed where it is.
        for (i, (k, _)) in m.entries().iter().enumerate() {
            assert_eq!(m.index[k] as usize, i);
        }
    }
}
