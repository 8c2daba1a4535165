//! A source's distinct failed pairs, exactly (R6), while they are at most
//! the exact cap: each pair with the time of its latest failure, and a log
//! of (time, pair) in time order over which every window keeps a cursor.
//!
//! A pair is in a window iff its latest failure is at or after the window's
//! start (`since`), so a window's count is maintained incrementally: its
//! cursor passes log entries older than `since` and decrements the count for
//! each one that is still its pair's latest failure. A pair that fails again
//! leaves a stale entry behind; the log is compacted when stale entries
//! outnumber live ones, so it holds at most about twice the pairs. Entries
//! that every cursor has passed are trimmed, and a trimmed entry that was its
//! pair's latest failure takes the pair with it: the pair is out of every
//! window.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::{Hasher, Pair};

pub(crate) struct Exact {
    pairs: HashTable<(Pair, u64)>,
    log: VecDeque<(u64, Pair)>,
    /// Absolute index of `log[0]` (cursors are absolute).
    base: u64,
}

impl Exact {
    pub fn new() -> Self {
        Self {
            pairs: HashTable::new(),
            log: VecDeque::new(),
            base: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn get(&self, h: &Hasher, p: &Pair) -> Option<u64> {
        self.pairs
            .find(h.hash_one(p), |(q, _)| q == p)
            .map(|&(_, t)| t)
    }

    /// Records a failure of `p` at `t` (never earlier than any before);
    /// returns the time of its previous latest failure.
    pub fn upsert(&mut self, h: &Hasher, p: Pair, t: u64) -> Option<u64> {
        let hash = h.hash_one(p);
        let prev = match self.pairs.find_mut(hash, |(q, _)| *q == p) {
            Some((_, old)) => Some(std::mem::replace(old, t)),
            None => {
                self.pairs
                    .insert_unique(hash, (p, t), |(k, _)| h.hash_one(k));
                None
            }
        };
        if prev != Some(t) {
            self.log.push_back((t, p));
        }
        prev
    }

    /// One past the last log entry (absolute).
    pub fn end(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// Advances `cursor` over entries older than `since`; returns how many
    /// of them were still their pair's latest failure (leaving the window).
    pub fn advance(&self, h: &Hasher, cursor: &mut u64, since: u64) -> u32 {
        let mut left = 0;
        *cursor = (*cursor).max(self.base);
        while *cursor < self.end() {
            let (ts, p) = self.log[(*cursor - self.base) as usize];
            if ts >= since {
                break;
            }
            *cursor += 1;
            if self.get(h, &p) == Some(ts) {
                left += 1;
            }
        }
        left
    }

    /// Trims the entries before `min_cursor` (passed by every window); the
    /// pairs whose latest failure they were are forgotten.
    pub fn trim(&mut self, h: &Hasher, min_cursor: u64) {
        while self.base < min_cursor {
            let Some((ts, p)) = self.log.pop_front() else {
                break;
            };
            self.base += 1;
            if let Ok(e) = self
                .pairs
                .find_entry(h.hash_one(p), |(q, t)| *q == p && *t == ts)
            {
                e.remove();
            }
        }
    }

    /// True when stale entries dominate the log.
    pub fn needs_compaction(&self) -> bool {
        self.log.len() > 2 * self.pairs.len() + 32
    }

    /// Drops stale entries; cursors are rebuilt by the caller from their
    /// windows' starts with [`Exact::cursor_at`].
    pub fn compact(&mut self, h: &Hasher) {
        let pairs = &self.pairs;
        let live = |&(ts, p): &(u64, Pair)| {
            pairs.find(h.hash_one(p), |(q, _)| *q == p).map(|e| e.1) == Some(ts)
        };
        self.log = self.log.iter().copied().filter(live).collect();
    }

    /// The absolute index of the first entry at or after `since`.
    pub fn cursor_at(&self, since: u64) -> u64 {
        self.base + self.log.partition_point(|&(ts, _)| ts < since) as u64
    }

    /// Pairs with their latest failure, in no order.
    pub fn pairs(&self) -> impl Iterator<Item = (Pair, u64)> + '_ {
        self.pairs.iter().copied()
    }

    /// Builds the set from pairs with their latest failures (any order).
    pub fn from_pairs(h: &Hasher, mut pairs: Vec<(Pair, u64)>) -> Self {
        pairs.sort_unstable_by_key(|&(p, t)| (t, p));
        let mut e = Exact::new();
        for (p, t) in pairs {
            e.upsert(h, p, t);
        }
        e
    }

    pub fn allocated_bytes(&self) -> usize {
        self.pairs.allocation_size() + self.log.capacity() * std::mem::size_of::<(u64, Pair)>()
    }
}
