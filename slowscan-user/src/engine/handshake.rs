//! Pending Attempts (R5): a slab of attempts, a hash index on the FlowKey and
//! a deadline queue in SYN order.
//!
//! Memory per pending attempt: one 64-byte [`Attempt`] in the slab, an 8-byte
//! bucket in the hash index (load ≤ 3/4 with power-of-two growth: 10.7–21
//! bytes), and an 8-byte `(slot, generation)`
//! entry in the deadline queue (compacted when it exceeds twice the live
//! attempts). Measured by `benches/engine.rs`: ≈ 80–100 bytes.

use std::collections::VecDeque;

use slowscan_common::FlowKey;

use super::index::{SlotIndex, Stage, prefetch};

/// Low 31 bits of [`Attempt::tag`]: the slot's generation.
const GEN_MASK: u32 = 0x7fff_ffff;
/// High bit of [`Attempt::tag`]: closed as Failed by a SYN with a new
/// sequence number (R5.1), waiting for its turn in the queue to be counted.
const CLOSED: u32 = 0x8000_0000;

/// One attempt: the SYN's 5-tuple, its sequence number S and the time of its
/// first SYN (the deadline is that plus the handshake timeout, R5.1), and
/// the SYN's source MAC (who the source is, R9).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt {
    pub key: FlowKey,
    pub seq: u32,
    tag: u32,
    pub syn_ts: u64,
    pub mac: [u8; 6],
}

const _: () = assert!(std::mem::size_of::<Attempt>() == 64);

impl Attempt {
    /// A pending attempt (for checks before it enters the table).
    pub fn new(key: FlowKey, seq: u32, syn_ts: u64, mac: [u8; 6]) -> Self {
        Self {
            key,
            seq,
            tag: 0,
            syn_ts,
            mac,
        }
    }

    /// R5.1: the last instant a follow-up can Establish this attempt (its
    /// first SYN plus the handshake timeout; inclusive).
    #[inline]
    pub fn deadline(&self, timeout: u64) -> u64 {
        self.syn_ts.saturating_add(timeout)
    }

    /// R5.1: can the attempt still be Established at `t`? (`t` at or before
    /// its deadline; a follow-up stamped exactly at the deadline counts.)
    #[inline]
    pub fn is_live_at(&self, t: u64, timeout: u64) -> bool {
        t <= self.deadline(timeout)
    }
}

/// What [`Pending::pop_decided`] found at the front of the queue.
pub(crate) enum Popped {
    /// Timed out: Failed at its deadline.
    TimedOut(Attempt),
    /// Closed earlier by a new-seq SYN (R5.1), counted now.
    Closed(Attempt),
    /// Decided early: the table was full, or the input ended.
    Forced(Attempt),
}

pub(crate) struct Pending {
    slab: Vec<Attempt>,
    free: Vec<u32>,
    index: SlotIndex,
    queue: VecDeque<(u32, u32)>,
    /// Slots holding an attempt: pending, or closed and not yet counted.
    live: usize,
    hasher: foldhash::fast::RandomState,
}

/// Hashes a FlowKey as five words (faster than the derived field-by-field
/// hash of the byte arrays).
#[inline(always)]
fn flow_hash(hasher: &foldhash::fast::RandomState, k: &FlowKey) -> u64 {
    use std::hash::BuildHasher;
    let w = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap());
    let tail = u64::from(k.src_port) | u64::from(k.dst_port) << 16 | u64::from(k.family) << 32;
    hasher.hash_one((
        w(&k.src_addr[..8]),
        w(&k.src_addr[8..]),
        w(&k.dst_addr[..8]),
        w(&k.dst_addr[8..]),
        tail,
    ))
}

impl Pending {
    pub fn new() -> Self {
        Self {
            slab: Vec::new(),
            free: Vec::new(),
            index: SlotIndex::new(),
            queue: VecDeque::new(),
            live: 0,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Attempts still waiting for a follow-up.
    pub fn pending(&self) -> usize {
        self.index.len()
    }

    /// Slots in use (pending plus closed-not-yet-counted): what the cap bounds.
    pub fn live(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn hash(&self, k: &FlowKey) -> u64 {
        flow_hash(&self.hasher, k)
    }

    /// The pending attempt on this flow, if any.
    #[inline]
    pub fn find(&self, hash: u64, key: &FlowKey) -> Option<(u32, &Attempt)> {
        let slab = &self.slab;
        self.index
            .find(hash, |i| slab[i as usize].key == *key)
            .map(|i| (i, &slab[i as usize]))
    }

    /// Opens a new attempt (the caller has checked the flow has none); its
    /// slot.
    pub fn open(&mut self, hash: u64, key: FlowKey, seq: u32, syn_ts: u64, mac: [u8; 6]) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => {
                let a = &mut self.slab[s as usize];
                a.key = key;
                a.seq = seq;
                a.syn_ts = syn_ts;
                a.mac = mac;
                s
            }
            None => {
                let s = u32::try_from(self.slab.len()).expect("fewer than 2^32 pending attempts");
                self.slab.push(Attempt {
                    key,
                    seq,
                    tag: 0,
                    syn_ts,
                    mac,
                });
                s
            }
        };
        let generation = self.slab[slot as usize].tag & GEN_MASK;
        self.index.insert(hash, slot);
        self.queue.push_back((slot, generation));
        self.live += 1;
        // Entries of attempts resolved out of order (Established, or closed
        // and counted) are skipped lazily; compact when they dominate.
        if self.queue.len() > 2 * self.live + 1024 {
            let slab = &self.slab;
            self.queue
                .retain(|&(s, g)| slab[s as usize].tag & GEN_MASK == g);
        }
        slot
    }

    /// Checkpoints: the attempts in the deadline queue, in queue (SYN) order,
    /// each with whether it is closed (Failed, waiting to be counted).
    pub fn queued_attempts(&self) -> impl Iterator<Item = (Attempt, bool)> + '_ {
        self.queue.iter().filter_map(|&(s, g)| {
            let a = self.slab[s as usize];
            (a.tag & GEN_MASK == g).then_some((a, a.tag & CLOSED != 0))
        })
    }

    /// Restores: appends an attempt to the queue (in the order
    /// [`Pending::queued_attempts`] gave), closed or pending.
    pub fn push_restored(
        &mut self,
        key: FlowKey,
        seq: u32,
        syn_ts: u64,
        mac: [u8; 6],
        closed: bool,
    ) {
        let hash = self.hash(&key);
        if !closed && let Some((slot, _)) = self.find(hash, &key) {
            // Cannot happen in a checkpoint (one pending attempt per flow);
            // keep the later one, as a new SYN would.
            self.close(hash, slot);
        }
        let slot = self.open(hash, key, seq, syn_ts, mac);
        if closed {
            self.close(hash, slot);
        }
    }

    /// Removes a pending attempt from the index and frees its slot
    /// (Established: its queue entry becomes stale).
    pub fn resolve(&mut self, hash: u64, slot: u32) -> Attempt {
        self.unindex(hash, slot);
        self.release(slot)
    }

    /// R5.1: a SYN with a new sequence number closes the attempt as Failed.
    /// It leaves the index now and is counted when it reaches the front of
    /// the queue, so that failures are counted in SYN order.
    pub fn close(&mut self, hash: u64, slot: u32) {
        self.unindex(hash, slot);
        self.slab[slot as usize].tag |= CLOSED;
    }

    fn unindex(&mut self, hash: u64, slot: u32) {
        self.index.remove(hash, slot);
    }

    /// Prefetches for an incoming record: the index bucket, then the slab
    /// entry a follow-up would compare against.
    #[inline]
    pub fn prefetch_at(&self, stage: Stage, hash: u64) {
        self.index.prefetch_stage(hash, stage, &self.slab);
    }

    /// The attempt `ahead` places behind the front of the deadline queue
    /// (possibly stale), to prefetch what its expiry will touch.
    #[inline]
    pub fn queued(&self, ahead: usize) -> Option<&Attempt> {
        self.queue.get(ahead).map(|&(s, _)| &self.slab[s as usize])
    }

    /// Prefetches the slab entry `ahead` places behind the queue's front.
    #[inline]
    pub fn prefetch_queued(&self, ahead: usize) {
        if let Some(&(s, _)) = self.queue.get(ahead) {
            prefetch(&self.slab[s as usize]);
        }
    }

    fn release(&mut self, slot: u32) -> Attempt {
        let a = &mut self.slab[slot as usize];
        let out = *a;
        a.tag = (a.tag & GEN_MASK).wrapping_add(1) & GEN_MASK;
        self.free.push(slot);
        self.live -= 1;
        out
    }

    /// Pops the front of the deadline queue if it is decided: closed, or its
    /// deadline (`syn_ts + timeout`) is before `now`, or — with `force` —
    /// anything (eviction, end of input). Stale entries are skipped.
    pub fn pop_decided(&mut self, now: u64, timeout: u64, force: bool) -> Option<Popped> {
        while let Some(&(slot, generation)) = self.queue.front() {
            let a = self.slab[slot as usize];
            if a.tag & GEN_MASK != generation {
                self.queue.pop_front();
                continue;
            }
            if a.tag & CLOSED != 0 {
                self.queue.pop_front();
                return Some(Popped::Closed(self.release(slot)));
            }
            let timed_out = !a.is_live_at(now, timeout);
            if !timed_out && !force {
                return None;
            }
            self.queue.pop_front();
            let hash = self.hash(&a.key);
            let a = self.resolve(hash, slot);
            return Some(if timed_out {
                Popped::TimedOut(a)
            } else {
                Popped::Forced(a)
            });
        }
        None
    }

    /// Bytes allocated for the slab, index, queue and free list.
    pub fn allocated_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Attempt>()
            + self.index.allocated_bytes()
            + self.queue.capacity() * 8
            + self.free.capacity() * 4
    }
}
