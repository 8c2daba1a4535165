//! The pre-filter's pending table (an LRU hash map) seen from userspace:
//! a batched walk (BPF_MAP_LOOKUP_BATCH: thousands of entries per syscall,
//! by hash bucket, so entries that come and go during the walk neither
//! restart it nor repeat), the sweep of attempts past their handshake
//! timeout, the correction of hint counts the LRU left behind, and the count
//! of attempts the LRU forgot.
//!
//! **Forgotten** = `pending_inserted − pending_resolved − swept − entries`:
//! attempts the table took and then lost without their follow-up being seen
//! or their timeout passing — LRU evictions under a flood. Counters are read
//! before (inserted) and after (resolved) the walk that counts the entries,
//! so activity during the walk can only make one estimate low, never high;
//! the published figure is the highest estimate so far.
//!
//! **Stale hints.** An evicted entry never releases its hint count; left
//! alone, a long flood would raise every slot and bulk data would lose its
//! fast path (never a record: a stale count only costs a lookup). Each sweep
//! takes stale counts back: per slot, the count in a snapshot taken before
//! the walk, minus the entries the walk saw there, minus the releases since
//! the snapshot (the slot's high half), applied in one atomic update. Every
//! entry live throughout the walk is seen by it, an entry deleted during it
//! is matched by its release, and an entry inserted during it raised its
//! count after the snapshot (a pause separates the snapshot from the walk,
//! and the walk from the update, so no kernel program is between a raise and
//! its insert, or a delete and its release, across them). So a count is
//! never taken below the entries that hash to its slot.
use std::{
    os::fd::{AsFd, AsRawFd},
    time::Duration,
};

use anyhow::{Context, bail};
use aya::maps::{Map, MapData, PerCpuArray};
use slowscan_common::{Counter, CounterBlock, FlowKey, HINT_SLOTS, PendingValue, hint_count};

use super::{Counters, HintArray};

/// Entries asked for per BPF_MAP_LOOKUP_BATCH call.
const CHUNK: u32 = 8192;
/// Separates the hint snapshot from the walk and the walk from the update,
/// far longer than any kernel program run.
const PAUSE: Duration = Duration::from_millis(1);

/// What the sweeps learned about the pending table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingStats {
    /// Entries in the table at the last sweep, after it.
    pub entries: u64,
    /// Entries the sweeps removed (handshake timeout passed), in total.
    pub swept: u64,
    /// Attempts the table forgot before their follow-up or timeout (LRU
    /// evictions), in total; see the module documentation.
    pub forgotten: u64,
    /// Stale hint counts (of evicted entries) taken back, in total.
    pub stale_hints_released: u64,
}

/// `union bpf_attr` for the BPF_MAP_*_BATCH commands.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_NOEXIST: u64 = 1;

/// The pending table's map data (an LRU hash map; a plain hash map is
/// accepted too).
pub fn map_data(map: &Map) -> anyhow::Result<&MapData> {
    match map {
        Map::LruHashMap(d) | Map::HashMap(d) => Ok(d),
        _ => bail!("the PENDING map is not a hash map"),
    }
}

/// Every entry of the table, by hash bucket (BPF_MAP_LOOKUP_BATCH). An entry
/// present for the whole walk appears exactly once.
pub fn entries(map: &MapData) -> anyhow::Result<Vec<(FlowKey, PendingValue)>> {
    let fd = map.fd().as_fd().as_raw_fd();
    let mut out = Vec::new();
    let mut chunk = CHUNK as usize;
    let mut keys = vec![FlowKey::default(); chunk];
    let mut values = vec![PendingValue::default(); chunk];
    // The hash map's batch token is a bucket index.
    let mut token_in: u32 = 0;
    let mut token_out: u32 = 0;
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &raw const token_in as u64 },
            out_batch: &raw mut token_out as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: the attr points at buffers of `count` keys and values of the
        // map's key and value sizes (checked when the map was typed) and at
        // the u32 batch tokens of a hash map.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &raw mut attr,
                size_of::<BatchAttr>(),
            )
        };
        let err = (r < 0).then(std::io::Error::last_os_error);
        let n = (attr.count as usize).min(chunk);
        out.extend(keys[..n].iter().copied().zip(values[..n].iter().copied()));
        match err {
            None => {}
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            // A bucket holds more entries than asked for: ask for more.
            Some(e) if e.raw_os_error() == Some(libc::ENOSPC) && n == 0 => {
                chunk *= 2;
                keys.resize(chunk, FlowKey::default());
                values.resize(chunk, PendingValue::default());
                continue;
            }
            Some(e) => bail!("walking the kernel pending table (BPF_MAP_LOOKUP_BATCH): {e}"),
        }
        token_in = token_out;
        first = false;
    }
}

/// The pending table's sweeper: owns its own handles on the PENDING and
/// COUNTERS maps and its own mapping of HINTS, so it can run on a thread of
/// its own (`DataPlane::take_sweeper`). Use one sweeper per table: the
/// forgotten count relies on it seeing every sweep.
pub struct PendingSweeper {
    pending: MapData,
    counters: Map,
    hints: HintArray,
    stats: PendingStats,
}

impl PendingSweeper {
    /// Handles of its own on `pending` (an LRU hash map) and `counters`
    /// (duplicated file descriptors), and `hints` mapped again.
    pub(super) fn new(pending: &Map, counters: &Map, hints: &Map) -> anyhow::Result<Self> {
        let dup = |m: &MapData, name: &str| -> anyhow::Result<MapData> {
            let fd = m
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .with_context(|| format!("duplicating the {name} map's descriptor"))?;
            MapData::from_fd(fd).with_context(|| format!("opening the {name} map again"))
        };
        let counters = match counters {
            Map::PerCpuArray(d) => Map::PerCpuArray(dup(d, "COUNTERS")?),
            _ => bail!("the COUNTERS map is not a per-CPU array"),
        };
        Ok(Self {
            pending: dup(map_data(pending)?, "PENDING")?,
            counters,
            hints: HintArray::map(hints)?,
            stats: PendingStats::default(),
        })
    }

    /// What the sweeps so far learned.
    pub fn stats(&self) -> PendingStats {
        self.stats
    }

    /// Every entry of the table (a batched walk).
    pub fn entries(&self) -> anyhow::Result<Vec<(FlowKey, PendingValue)>> {
        entries(&self.pending)
    }

    fn counters(&self) -> anyhow::Result<Counters> {
        let m: PerCpuArray<&MapData, CounterBlock> = PerCpuArray::try_from(&self.counters)?;
        Counters::read(&m)
    }

    /// Expires entries older than `timeout_ns` at `now_ns` (their handshake
    /// can no longer succeed, R5.1), takes back stale hint counts, updates
    /// [`Self::stats`]. Returns the number of entries removed.
    pub fn sweep(&mut self, now_ns: u64, timeout_ns: u64) -> anyhow::Result<usize> {
        let snapshot = self.hints.snapshot();
        std::thread::sleep(PAUSE);
        let inserted = self.counters()?.get(Counter::PendingInserted);
        let seen = entries(&self.pending)?;
        std::thread::sleep(PAUSE);
        let resolved = self.counters()?.get(Counter::PendingResolved);

        let stats = &mut self.stats;
        let forgotten = i128::from(inserted)
            - i128::from(resolved)
            - i128::from(stats.swept)
            - seen.len() as i128;
        stats.forgotten = stats.forgotten.max(forgotten.max(0) as u64);

        let mut live = vec![0u64; HINT_SLOTS as usize];
        for (k, v) in &seen {
            live[k.hint_slot(v.seq) as usize] += 1;
        }
        for (i, (&before, &live)) in snapshot.iter().zip(live.iter()).enumerate() {
            let count = hint_count(before);
            if count <= live {
                continue;
            }
            let releases_before = before >> 32;
            stats.stale_hints_released += self.hints.take_back(i as u32, |releases_now| {
                let released = releases_now.wrapping_sub(releases_before) & 0xffff_ffff;
                count.saturating_sub(live + released)
            });
        }

        let fd = self.pending.fd().as_fd().as_raw_fd();
        let mut swept = 0;
        for (k, v) in &seen {
            if v.ts_ns.saturating_add(timeout_ns) >= now_ns {
                continue;
            }
            // Taken out with its value as it is now, so the hint released is
            // the one of the attempt actually removed. Already gone means the
            // follow-up came (or the LRU took it) meanwhile.
            let Some(gone) = lookup_and_delete(fd, k)? else {
                continue;
            };
            let slot = k.hint_slot(gone.seq);
            // A retransmission refreshed it since the walk: put it back (its
            // hint count stays), unless the kernel re-inserted it meanwhile.
            if gone.ts_ns.saturating_add(timeout_ns) >= now_ns && insert_new(fd, k, &gone)? {
                continue;
            }
            self.hints.release(slot);
            swept += 1;
        }
        self.stats.swept += swept as u64;
        self.stats.entries = (seen.len() - swept) as u64;
        Ok(swept)
    }
}

/// `union bpf_attr` for the BPF_MAP_*_ELEM commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;

fn elem_syscall(cmd: libc::c_long, attr: &mut ElemAttr) -> std::io::Result<()> {
    // SAFETY: the callers' attr points at a FlowKey and a PendingValue, the
    // map's key and value types.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            size_of::<ElemAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Inserts `key` if absent (BPF_NOEXIST); false if it is present.
fn insert_new(fd: i32, key: &FlowKey, value: &PendingValue) -> anyhow::Result<bool> {
    let mut attr = ElemAttr {
        map_fd: fd as u32,
        key: std::ptr::from_ref(key) as u64,
        value: std::ptr::from_ref(value) as u64,
        flags: BPF_NOEXIST,
        ..ElemAttr::default()
    };
    match elem_syscall(BPF_MAP_UPDATE_ELEM, &mut attr) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => bail!("putting a refreshed entry back into the kernel pending table: {e}"),
    }
}

/// Removes `key` and returns the value it had (None if absent), atomically
/// (hash maps: Linux 5.14+).
fn lookup_and_delete(fd: i32, key: &FlowKey) -> anyhow::Result<Option<PendingValue>> {
    let mut value = PendingValue::default();
    let mut attr = ElemAttr {
        map_fd: fd as u32,
        key: std::ptr::from_ref(key) as u64,
        value: (&raw mut value) as u64,
        ..ElemAttr::default()
    };
    match elem_syscall(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut attr) {
        Ok(()) => Ok(Some(value)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => bail!("removing an expired entry from the kernel pending table: {e}"),
    }
}
