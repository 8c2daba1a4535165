//! A sliding HyperLogLog (R6.3): the number of distinct failed pairs whose
//! latest failure lies after any given instant, in bounded memory, for a
//! source that failed more pairs than the exact cap.
//!
//! Each of the 256 registers keeps its "list of possible future maxima"
//! (Chabchoub & Hébrail, 2010): (time, rank) entries in time order with
//! strictly decreasing ranks — an older entry whose rank is not above a newer
//! one can never again be the maximum of any window ending now, so it is
//! dropped. The register's value for a window starting at `since` is then
//! the rank of its oldest entry at or after `since`. One structure answers
//! every window length (sliding, tumbling, none) at minute resolution, and
//! expires continuously rather than a bucket at a time.
//!
//! Memory is fixed: 256 registers × 12 entries × 4 bytes plus lengths
//! (≈ 13 KiB). A register holds about ln(n / 256) entries for n distinct
//! pairs (≈ 6 at n = 100,000); when one overflows, its oldest entry (the
//! highest rank) is dropped and `overflowed` counts it, so long windows may
//! then read a slightly lower rank. Standard error of the estimate:
//! 1.04 / √256 ≈ 6.5 %, with linear counting below 2.5 × 256.

/// Registers (2^8): index = the hash's top 8 bits.
pub(crate) const REGISTERS: usize = 256;
const INDEX_BITS: u32 = 8;
/// Entries kept per register.
pub(crate) const DEPTH: usize = 12;
/// Time unit of the sketch: one minute.
pub(crate) const TICK_NS: u64 = 60_000_000_000;
const RANK_BITS: u32 = 6;
const RANK_MASK: u32 = (1 << RANK_BITS) - 1;
/// Ticks fit in 26 bits (127 years after the sketch's base).
const MAX_TICK: u64 = (1 << (32 - RANK_BITS)) - 1;

/// 2^-rank for every rank a register can hold.
const INV_POW2: [f64; 64] = {
    let mut t = [0.0; 64];
    let mut i = 0;
    let mut v = 1.0;
    while i < 64 {
        t[i] = v;
        v /= 2.0;
        i += 1;
    }
    t
};

/// The stable 64-bit hash of a failed pair (address words and port); stable
/// across processes and builds, because sketches are checkpointed.
pub(crate) fn pair_hash(addr: &[u8; 16], port: u16) -> u64 {
    let w0 = u64::from_le_bytes(addr[..8].try_into().expect("8 bytes"));
    let w1 = u64::from_le_bytes(addr[8..].try_into().expect("8 bytes"));
    mix(mix(mix(w0 ^ 0x9e37_79b9_7f4a_7c15) ^ w1) ^ u64::from(port))
}

/// SplitMix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Register {
    len: u8,
    /// `tick << 6 | rank`, oldest first, ranks strictly decreasing.
    e: [u32; DEPTH],
}

/// See the module documentation. Times are engine nanoseconds; internally
/// minutes since `base_tick`.
#[derive(Clone)]
pub(crate) struct SlidingHll {
    base_tick: u64,
    regs: Box<[Register; REGISTERS]>,
    /// Entries dropped because a register was full.
    pub overflowed: u32,
}

/// One register's entries in a checkpoint: (engine time of the tick's
/// start, rank).
pub(crate) type RegisterSnapshot = Vec<(u64, u8)>;

impl SlidingHll {
    /// An empty sketch able to hold times from `earliest_ns` on.
    pub fn new(earliest_ns: u64) -> Self {
        Self {
            base_tick: earliest_ns / TICK_NS,
            regs: Box::new([Register::default(); REGISTERS]),
            overflowed: 0,
        }
    }

    fn tick(&self, t_ns: u64) -> u32 {
        ((t_ns / TICK_NS).saturating_sub(self.base_tick)).min(MAX_TICK) as u32
    }

    /// Records a failure of the pair with hash `h` at `t_ns` (never earlier
    /// than the previous insert's time).
    pub fn insert(&mut self, h: u64, t_ns: u64) {
        let idx = (h >> (64 - INDEX_BITS)) as usize;
        let rest = (h << INDEX_BITS) | (1 << (INDEX_BITS - 1));
        let rank = (rest.leading_zeros() + 1).min(RANK_MASK);
        let tick = self.tick(t_ns);
        let r = &mut self.regs[idx];
        // Newer and at least as high: the older entries can never be a
        // window's maximum again.
        while r.len > 0 && r.e[usize::from(r.len) - 1] & RANK_MASK <= rank {
            r.len -= 1;
        }
        if usize::from(r.len) == DEPTH {
            r.e.copy_within(1.., 0);
            r.len -= 1;
            self.overflowed += 1;
        }
        r.e[usize::from(r.len)] = tick << RANK_BITS | rank;
        r.len += 1;
    }

    /// The estimated number of distinct pairs whose latest failure is at or
    /// after `since_ns` (minute resolution: the whole minute of `since_ns`
    /// counts).
    pub fn estimate(&self, since_ns: u64) -> u64 {
        let since = self.tick(since_ns);
        let mut sum = 0.0f64;
        let mut zeros = 0usize;
        for r in self.regs.iter() {
            let rank = r.e[..usize::from(r.len)]
                .iter()
                .find(|&&e| e >> RANK_BITS >= since)
                .map_or(0, |&e| e & RANK_MASK);
            if rank == 0 {
                zeros += 1;
            }
            sum += INV_POW2[rank as usize];
        }
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let est = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        est.round() as u64
    }

    /// The oldest minute a register remembers at or after `since_ns`, if
    /// any: about the first failure in the window (registers keep only the
    /// entries that can still be a maximum, so it may be a little later).
    pub fn oldest_since(&self, since_ns: u64) -> Option<u64> {
        let since = self.tick(since_ns);
        self.regs
            .iter()
            .filter_map(|r| {
                r.e[..usize::from(r.len)]
                    .iter()
                    .map(|&e| e >> RANK_BITS)
                    .find(|&t| t >= since)
            })
            .min()
            .map(|t| (self.base_tick + u64::from(t)) * TICK_NS)
    }

    /// Forgets entries older than `before_ns` (out of every window); true
    /// when nothing is left.
    pub fn expire(&mut self, before_ns: u64) -> bool {
        let before = self.tick(before_ns);
        let mut empty = true;
        for r in self.regs.iter_mut() {
            let n = usize::from(r.len);
            let keep_from = r.e[..n]
                .iter()
                .position(|&e| e >> RANK_BITS >= before)
                .unwrap_or(n);
            if keep_from > 0 {
                r.e.copy_within(keep_from..n, 0);
                r.len = (n - keep_from) as u8;
            }
            empty &= r.len == 0;
        }
        empty
    }

    /// Every register's entries, for a checkpoint.
    pub fn snapshot(&self) -> Vec<RegisterSnapshot> {
        self.regs
            .iter()
            .map(|r| {
                r.e[..usize::from(r.len)]
                    .iter()
                    .map(|&e| {
                        let t = (self.base_tick + u64::from(e >> RANK_BITS)) * TICK_NS;
                        (t, (e & RANK_MASK) as u8)
                    })
                    .collect()
            })
            .collect()
    }

    /// The sketch a [`SlidingHll::snapshot`] describes (`None` if it does not
    /// have [`REGISTERS`] registers of at most [`DEPTH`] entries).
    pub fn from_snapshot(regs: &[RegisterSnapshot]) -> Option<Self> {
        if regs.len() != REGISTERS || regs.iter().any(|r| r.len() > DEPTH) {
            return None;
        }
        let earliest = regs.iter().flatten().map(|&(t, _)| t).min().unwrap_or(0);
        let mut s = Self::new(earliest);
        for (r, entries) in s.regs.iter_mut().zip(regs) {
            for (i, &(t, rank)) in entries.iter().enumerate() {
                let tick = ((t / TICK_NS).saturating_sub(s.base_tick)).min(MAX_TICK) as u32;
                r.e[i] = tick << RANK_BITS | (u32::from(rank) & RANK_MASK);
            }
            r.len = entries.len() as u8;
        }
        Some(s)
    }

    pub fn allocated_bytes(&self) -> usize {
        std::mem::size_of::<[Register; REGISTERS]>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = TICK_NS;

    fn h(i: u64) -> u64 {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&i.to_le_bytes());
        pair_hash(&a, (i % 65_000) as u16)
    }

    #[test]
    fn r6_3_estimates_within_a_few_standard_errors() {
        for n in [200u64, 1_000, 10_000, 100_000] {
            let mut s = SlidingHll::new(0);
            for i in 0..n {
                s.insert(h(i), i * MIN / 100);
            }
            let est = s.estimate(0) as f64;
            let err = (est - n as f64).abs() / n as f64;
            assert!(err < 0.2, "n={n} est={est} err={err}");
        }
    }

    #[test]
    fn r6_3_repeated_pairs_count_once_and_refresh() {
        let mut s = SlidingHll::new(0);
        for round in 0..20u64 {
            for i in 0..500 {
                s.insert(h(i), round * 10 * MIN + i);
            }
        }
        let est = s.estimate(0) as f64;
        assert!((est - 500.0).abs() < 75.0, "{est}");
        // Every pair failed again in the last round: all still in a window
        // that starts there.
        let last = s.estimate(190 * MIN) as f64;
        assert!((last - 500.0).abs() < 75.0, "{last}");
    }

    #[test]
    fn r6_3_windows_see_only_their_part_and_expire() {
        let mut s = SlidingHll::new(0);
        // 1000 pairs in the first day, 3000 others in the second.
        for i in 0..1_000 {
            s.insert(h(i), i * MIN);
        }
        for i in 1_000..4_000 {
            s.insert(h(i), 1440 * MIN + (i - 1_000) * MIN / 3);
        }
        let all = s.estimate(0) as f64;
        let day2 = s.estimate(1440 * MIN) as f64;
        assert!((all - 4000.0).abs() < 600.0, "{all}");
        assert!((day2 - 3000.0).abs() < 450.0, "{day2}");
        assert!(!s.expire(1440 * MIN));
        let after = s.estimate(0) as f64;
        assert!((after - 3000.0).abs() < 450.0, "{after}");
        let oldest = s.oldest_since(0).unwrap();
        assert!((1440 * MIN..1500 * MIN).contains(&oldest), "{oldest}");
        assert!(s.expire(10_000 * MIN));
        assert_eq!(s.estimate(0), 0);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut s = SlidingHll::new(5 * MIN);
        for i in 0..3_000 {
            s.insert(h(i), 5 * MIN + i * MIN);
        }
        let r = SlidingHll::from_snapshot(&s.snapshot()).unwrap();
        for since in [0, 100 * MIN, 2_000 * MIN] {
            assert_eq!(r.estimate(since), s.estimate(since));
        }
        assert!(SlidingHll::from_snapshot(&[]).is_none());
    }
}
