//! A compact hash index from a key (kept elsewhere, in a slab) to its `u32`
//! slot: open addressing with linear probing over 8-byte buckets holding the
//! low 32 bits of the key's hash and the slot. Unlike a general hash map it
//! can tell where a lookup will land, so the engine can prefetch buckets a
//! few records ahead and overlap the cache misses of a large table.

/// Empty bucket. A stored bucket always has a non-zero slot+1 in its low half.
const EMPTY: u64 = 0;

pub(crate) struct SlotIndex {
    buckets: Vec<u64>,
    mask: usize,
    len: usize,
}

#[inline(always)]
fn pack(hash: u64, slot: u32) -> u64 {
    (hash << 32) | (u64::from(slot) + 1)
}

#[inline(always)]
fn slot_of(b: u64) -> u32 {
    (b as u32).wrapping_sub(1)
}

#[inline(always)]
fn tag_of(b: u64) -> u32 {
    (b >> 32) as u32
}

/// The stages of a software-pipelined lookup, each issued a few records
/// before the next, so that each finds what the previous one fetched cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The index bucket.
    Bucket,
    /// The slab entry.
    Entry,
    /// What the entry points to (sources' details).
    Detail,
    /// What counting reads behind the details.
    Pairs,
}

/// Hints the CPU to fetch the cache line holding `p`.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl SlotIndex {
    pub fn new() -> Self {
        Self {
            buckets: vec![EMPTY; 16],
            mask: 15,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn home(&self, hash32: u32) -> usize {
        hash32 as usize & self.mask
    }

    /// Prefetches the bucket where a lookup of `hash` starts.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        prefetch(&self.buckets[self.home(hash as u32)]);
    }

    /// The first two stages of a lookup's prefetch: the bucket, then (the
    /// bucket cached by now) the slab entry the lookup will most likely
    /// read (see [`Self::peek`]). Later stages are the table's own.
    #[inline(always)]
    pub fn prefetch_stage<T>(&self, hash: u64, stage: Stage, slab: &[T]) {
        match stage {
            Stage::Bucket => self.prefetch(hash),
            Stage::Entry => {
                if let Some(s) = self.peek(hash) {
                    prefetch(&slab[s as usize]);
                }
            }
            Stage::Detail | Stage::Pairs => {}
        }
    }

    /// The slot of the entry with this hash for which `eq(slot)` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = hash as u32;
        let mut i = self.home(tag);
        loop {
            let b = self.buckets[i];
            if b == EMPTY {
                return None;
            }
            if tag_of(b) == tag && eq(slot_of(b)) {
                return Some(slot_of(b));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The first slot stored with this hash's tag, without checking its key:
    /// a guess good enough to prefetch the slab entry a lookup will read.
    #[inline]
    pub fn peek(&self, hash: u64) -> Option<u32> {
        let tag = hash as u32;
        let mut i = self.home(tag);
        for _ in 0..4 {
            let b = self.buckets[i];
            if b == EMPTY {
                return None;
            }
            if tag_of(b) == tag {
                return Some(slot_of(b));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Adds `slot` under `hash` (the caller knows its key is not present).
    pub fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        self.place(pack(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, b: u64) {
        let mut i = self.home(tag_of(b));
        while self.buckets[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = b;
    }

    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.buckets.len() * 2];
        let old = std::mem::replace(&mut self.buckets, doubled);
        self.mask = self.buckets.len() - 1;
        for b in old.into_iter().filter(|&b| b != EMPTY) {
            self.place(b);
        }
    }

    /// Removes the entry (hash, slot); backward-shift deletion keeps probe
    /// sequences unbroken without tombstones.
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let want = pack(hash, slot);
        let mut i = self.home(hash as u32);
        loop {
            let b = self.buckets[i];
            if b == EMPTY {
                return false;
            }
            if b == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b == EMPTY {
                break;
            }
            let k = self.home(tag_of(b));
            // Leave b where it is if its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < k && k <= j
            } else {
                i < k || k <= j
            };
            if !stays {
                self.buckets[i] = b;
                i = j;
            }
        }
        self.buckets[i] = EMPTY;
        self.len -= 1;
        true
    }

    pub fn allocated_bytes(&self) -> usize {
        self.buckets.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_a_hash_map_under_churn() {
        let mut idx = SlotIndex::new();
        let mut model: HashMap<u32, u64> = HashMap::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct hash values so probe chains collide and wrap.
            let slot = (x % 5_000) as u32;
            let hash = ((x >> 20) % 64) | (u64::from(slot) << 40);
            let hash = hash.wrapping_mul(0x9e37_79b9) & 0xffff_ffff_0000_00ff;
            if let Some(&h) = model.get(&slot) {
                if step % 3 == 0 {
                    assert!(idx.remove(h, slot));
                    model.remove(&slot);
                }
            } else {
                idx.insert(hash, slot);
                model.insert(slot, hash);
            }
            assert_eq!(idx.len(), model.len());
        }
        for (&slot, &h) in &model {
            assert_eq!(idx.find(h, |s| s == slot), Some(slot));
        }
    }
}
