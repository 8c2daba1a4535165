//! The pre-filter's hint array, memory-mapped so userspace can release a
//! hint with the same atomic operations the kernel uses (a read-modify-write
//! through the map syscalls would race with the kernel's increments).
//! A slot's low 32 bits count, its high 32 bits count releases
//! (`slowscan_common::HINT_RELEASE`).
use std::{
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Context, bail};
use aya::maps::Map;
use slowscan_common::{HINT_RELEASE, HINT_SLOTS, hint_count};

pub struct HintArray {
    base: *mut AtomicU64,
    len: usize,
}

// SAFETY: the mapping is shared memory accessed only through atomics.
unsafe impl Send for HintArray {}

impl HintArray {
    pub fn map(map: &Map) -> anyhow::Result<Self> {
        let Map::Array(data) = map else {
            bail!("the HINTS map is not an array map");
        };
        let len = HINT_SLOTS as usize;
        let bytes = len * size_of::<u64>();
        // SAFETY: mapping a BPF_F_MMAPABLE array map's fd, shared, of its size.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap of the HINTS map");
        }
        Ok(Self {
            base: p.cast(),
            len,
        })
    }

    fn slot(&self, i: u32) -> &AtomicU64 {
        assert!((i as usize) < self.len);
        // SAFETY: in bounds of the live mapping; AtomicU64 has u64's layout.
        unsafe { &*self.base.add(i as usize) }
    }

    /// The count of slot `i`: pending attempts expecting a follow-up there,
    /// plus stale counts left by LRU evictions.
    pub fn get(&self, i: u32) -> u64 {
        hint_count(self.raw(i))
    }

    /// The whole slot: count in the low 32 bits, releases in the high 32.
    pub fn raw(&self, i: u32) -> u64 {
        self.slot(i).load(Ordering::Relaxed)
    }

    /// Releases one hint of slot `i` (never below zero) and counts the
    /// release, as the kernel does.
    pub fn release(&self, i: u32) {
        let _ = self
            .slot(i)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (hint_count(v) > 0).then(|| v.wrapping_add(HINT_RELEASE))
            });
    }

    /// Takes back stale counts of slot `i`: `stale(releases since the
    /// snapshot)` says how many, given the slot's release half now; applied
    /// atomically with that observation, so a release that comes in between
    /// is never missed. Returns how many were taken back.
    pub(super) fn take_back(&self, i: u32, stale: impl Fn(u64) -> u64) -> u64 {
        let mut taken = 0;
        let _ = self
            .slot(i)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                let n = stale(v >> 32).min(hint_count(v));
                taken = n;
                (n > 0).then(|| v - n)
            });
        taken
    }

    /// Every slot's raw value, read one at a time.
    pub(super) fn snapshot(&self) -> Vec<u64> {
        (0..self.len as u32).map(|i| self.raw(i)).collect()
    }

    /// Sum of the counts over all slots: equals the number of pending
    /// entries when no entry was evicted since the last correction.
    pub fn total(&self) -> u64 {
        (0..self.len as u32).map(|i| self.get(i)).sum()
    }
}

impl Drop for HintArray {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `map` mapped.
        unsafe { libc::munmap(self.base.cast(), self.len * size_of::<u64>()) };
    }
}
