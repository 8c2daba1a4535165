//! Per-run totals for `slowscan replay --report`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use serde::Serialize;

use super::counting::{Pair, SourceKey};
use super::ip_from;

type Hasher = foldhash::fast::RandomState;

/// `{"attempts","established","failed","untracked","sources":{"<ip>":{…}}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Attempts (R5) opened: first SYNs, not retransmissions, not untracked,
    /// not whitelisted.
    pub attempts: u64,
    pub established: u64,
    pub failed: u64,
    /// Attempts the kernel could not track (`STATUS_UNTRACKED`).
    pub untracked: u64,
    /// Per source address; empty unless `EngineConfig::report` is set.
    pub sources: BTreeMap<IpAddr, SourceTotals>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceTotals {
    pub attempts: u64,
    pub established: u64,
    pub failed: u64,
    /// Distinct failed (destination IP, destination port) pairs over the
    /// whole run (no window).
    pub failed_pairs: u64,
}

#[derive(Default)]
struct Acc {
    attempts: u64,
    established: u64,
    failed: u64,
    pairs: HashSet<Pair, Hasher>,
}

/// Per-source totals, kept only when asked for (they grow with the number of
/// distinct sources and failed pairs, without a cap).
#[derive(Default)]
pub(crate) struct ReportState {
    sources: HashMap<SourceKey, Acc, Hasher>,
}

impl ReportState {
    pub fn attempt(&mut self, src: SourceKey) {
        self.sources.entry(src).or_default().attempts += 1;
    }

    pub fn established(&mut self, src: SourceKey) {
        self.sources.entry(src).or_default().established += 1;
    }

    pub fn failed(&mut self, src: SourceKey, pair: Pair) {
        let acc = self.sources.entry(src).or_default();
        acc.failed += 1;
        acc.pairs.insert(pair);
    }

    /// Checkpoints: (source, attempts, established, failed, distinct failed
    /// pairs) per source.
    pub fn export(&self) -> Vec<(SourceKey, [u64; 3], Vec<Pair>)> {
        let mut v: Vec<_> = self
            .sources
            .iter()
            .map(|(k, a)| {
                let mut pairs: Vec<Pair> = a.pairs.iter().copied().collect();
                pairs.sort_unstable();
                (*k, [a.attempts, a.established, a.failed], pairs)
            })
            .collect();
        v.sort_unstable_by_key(|s| s.0);
        v
    }

    /// Restores one source exported by [`ReportState::export`].
    pub fn import(&mut self, src: SourceKey, totals: [u64; 3], pairs: Vec<Pair>) {
        let acc = self.sources.entry(src).or_default();
        acc.attempts += totals[0];
        acc.established += totals[1];
        acc.failed += totals[2];
        acc.pairs.extend(pairs);
    }

    pub fn sources(&self) -> BTreeMap<IpAddr, SourceTotals> {
        self.sources
            .iter()
            .map(|(k, a)| {
                let totals = SourceTotals {
                    attempts: a.attempts,
                    established: a.established,
                    failed: a.failed,
                    failed_pairs: a.pairs.len() as u64,
                };
                (ip_from(k.family, &k.addr), totals)
            })
            .collect()
    }
}
