//! The engine's figures of R6.3, all with the default detector ladder:
//! throughput with 1M pending attempts and 100k tracked sources; bytes per
//! pending attempt and per single-failure source; bytes for one source that
//! failed 100,000 pairs over 30 days; the peak heap of a flood of 10 million
//! spoofed SYNs with a slow scanner inside (which must still alert); and a
//! checkpoint of 1M tracked sources (write time, size, exact restore); and
//! the identity rule (R9) on a LAN stream against addresses only, paired.
//!
//! `cargo bench -p slowscan-user --bench engine` (about a minute;
//! `SLOWSCAN_BENCH_IDENTITIES_ONLY=1`: the identity comparison alone). Under
//! `cargo test --benches` it only smoke-tests on small inputs. The figures
//! measured are in BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use slowscan::engine::{
    Alert, DAY_NS, Engine, EngineConfig, EngineState, IdentityConfig, SECOND_NS,
};
use slowscan_common::tcp::{ACK, SYN};
use slowscan_common::{AF_INET, AF_INET6, PacketRecord};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + new - l.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn v4(a: u32) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a.to_be_bytes());
    out
}

const SOURCES: u64 = 100_000;
/// One SYN every 30 µs, half of them never followed up: 1M failing attempts
/// pending within the 60 s handshake timeout.
const SYN_STEP_NS: u64 = 30_000;
const PORTS: [u16; 6] = [22, 80, 443, 445, 3389, 8080];

/// A steady stream: SYNs from 100k sources; every other one is Established
/// by an ACK three SYNs later (1.5 records per SYN). Established SYNs go to
/// random destinations; failing ones (odd `i`) go to one of two destinations
/// per source, as the paper saw (Fig. 6: most hosts fail to 1–2 distinct
/// ports, mostly repeated attempts to one server), so alerts stay rare.
struct Stream {
    i: u64,
    /// Frames as on a LAN mirror (R9): see [`Stream::on_lan`].
    lan: bool,
}

/// The MAC of the router that forwards outside sources onto the segment.
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
/// A new temporary IPv6 address every 2^21 SYNs (about a minute here).
const ROTATE_SYNS: u64 = 1 << 21;

impl Stream {
    fn new(lan: bool) -> Self {
        Self { i: 0, lan }
    }

    /// The same stream as seen on a LAN mirror (R9), by source: 4 in 10 are
    /// IPv4 hosts on the segment (10.0.0.0/8, a MAC each), 4 in 10 IPv4
    /// hosts behind the router (its MAC), 1 in 10 an IPv6 host on the
    /// segment (fd00::/8, a MAC each) whose temporary address changes every
    /// [`ROTATE_SYNS`], and 1 in 10 an outside IPv6 source sending every SYN
    /// from a fresh address of its /64 in 2001:db8::/32, through the router.
    /// 50,000 host MACs in all. Destinations keep the source's family.
    fn on_lan(i: u64, mut r: PacketRecord) -> PacketRecord {
        let src = mix(i ^ 0xabcdef) % SOURCES;
        let dst = u32::from_be_bytes(r.dst_addr[..4].try_into().unwrap()) & 0xffff;
        r.src_mac = [
            0x02,
            0x10,
            0,
            (src >> 16) as u8,
            (src >> 8) as u8,
            src as u8,
        ];
        let v6 = |first: [u8; 4], net: u64, iid: u64| {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&first);
            a[4..8].copy_from_slice(&(net as u32).to_be_bytes());
            a[8..].copy_from_slice(&iid.to_be_bytes());
            a
        };
        match src % 10 {
            0 => {
                r.src_mac = ROUTER_MAC;
                r.src_addr = v6([0x20, 0x01, 0x0d, 0xb8], src, mix(i) | 1);
            }
            1 => r.src_addr = v6([0xfd, 0, 0, 0x10], src, mix(src ^ (i / ROTATE_SYNS)) | 1),
            2..=5 => return r,
            _ => {
                r.src_mac = ROUTER_MAC;
                return r;
            }
        }
        r.family = AF_INET6;
        r.dst_addr = v6([0xfd, 0, 0, 0x20], 0, u64::from(dst) + 1);
        r
    }

    fn record(&self, i: u64) -> PacketRecord {
        let r = Self::syn(i);
        if self.lan { Self::on_lan(i, r) } else { r }
    }

    fn syn(i: u64) -> PacketRecord {
        let h = mix(i);
        let src = mix(i ^ 0xabcdef) % SOURCES;
        let fails = i % 2 == 1;
        let dst = if fails {
            (mix(src ^ i) % 2) + (src << 1)
        } else {
            h
        };
        PacketRecord {
            ts_ns: i * SYN_STEP_NS,
            src_addr: v4(0x0a00_0000 + src as u32),
            dst_addr: v4(0xac10_0000 + (dst & 0xffff) as u32),
            seq: (h >> 32) as u32,
            src_port: 1024 + (i % 60_000) as u16,
            dst_port: PORTS[((if fails { src } else { h >> 16 }) % PORTS.len() as u64) as usize],
            family: AF_INET,
            tcp_flags: SYN,
            ..Default::default()
        }
    }

    fn fill(&mut self, buf: &mut Vec<PacketRecord>, n: usize) {
        buf.clear();
        while buf.len() < n {
            let i = self.i;
            self.i += 1;
            let s = self.record(i);
            buf.push(s);
            if i >= 3 && (i - 3).is_multiple_of(2) {
                let mut a = self.record(i - 3);
                a.ts_ns = s.ts_ns;
                a.tcp_flags = ACK;
                a.seq = a.seq.wrapping_add(1);
                buf.push(a);
            }
        }
    }
}

/// `quick` (`cargo test --benches`): a short smoke run.
fn throughput(c: &mut Criterion, quick: bool) {
    let mut e = Engine::new(EngineConfig::default());
    let mut alerts: Vec<Alert> = Vec::new();
    let mut stream = Stream::new(false);
    let mut buf = Vec::new();
    // Warm up to steady state: 75 s of traffic.
    let warm = if quick {
        10_000
    } else {
        (75 * SECOND_NS / SYN_STEP_NS) as usize * 3 / 2
    };
    stream.fill(&mut buf, warm);
    e.process_batch(&buf, &mut alerts);
    let st = e.stats();
    let mem = e.memory_usage();
    println!(
        "steady state: {} pending, {} sources; {:.1} bytes per pending attempt, {:.1} bytes per tracked source",
        st.pending,
        st.sources,
        mem.pending_bytes as f64 / st.pending as f64,
        mem.source_bytes as f64 / st.sources as f64,
    );
    const BATCH: usize = 100_000;
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    for batched in [true, false] {
        let name = if batched {
            "process_batch_1M_pending_100k_sources"
        } else {
            "process_1M_pending_100k_sources"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    stream.fill(&mut buf, BATCH);
                    alerts.clear();
                    let t = Instant::now();
                    if batched {
                        e.process_batch(black_box(&buf), &mut alerts);
                    } else {
                        for r in &buf {
                            e.process(black_box(r), &mut alerts);
                        }
                    }
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();
    let st = e.stats();
    let mem = e.memory_usage();
    println!(
        "after: {} records, {} pending, {} sources, {} alerts; {:.1} bytes per pending attempt, {:.1} bytes per tracked source",
        st.records,
        st.pending,
        st.sources,
        st.alerts,
        mem.pending_bytes as f64 / st.pending as f64,
        mem.source_bytes as f64 / st.sources as f64,
    );
}

/// R9 on the LAN stream ([`Stream::on_lan`]): the default identity rule
/// against `IdentityConfig::addresses_only()`, two engines fed the same
/// batches in turn (alternating which goes first), so that the machine's
/// load drifts alike for both; the ratio is the median of the per-round
/// ratios.
fn identities_paired(quick: bool) {
    let cfg_off = EngineConfig {
        identity: IdentityConfig::addresses_only(),
        ..EngineConfig::default()
    };
    let mut on = Engine::new(EngineConfig::default());
    let mut off = Engine::new(cfg_off);
    let mut alerts: Vec<Alert> = Vec::new();
    let mut stream = Stream::new(true);
    let mut buf = Vec::new();
    let warm = if quick {
        10_000
    } else {
        (75 * SECOND_NS / SYN_STEP_NS) as usize * 3 / 2
    };
    stream.fill(&mut buf, warm);
    on.process_batch(&buf, &mut alerts);
    off.process_batch(&buf, &mut alerts);
    const BATCH: usize = 100_000;
    let rounds = if quick { 2 } else { 100 };
    let (mut t_on, mut t_off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        stream.fill(&mut buf, BATCH);
        let mut time = |e: &mut Engine| {
            alerts.clear();
            let t = Instant::now();
            e.process_batch(black_box(&buf), &mut alerts);
            t.elapsed().as_secs_f64()
        };
        let (a, b) = if round % 2 == 0 {
            let a = time(&mut on);
            (a, time(&mut off))
        } else {
            let b = time(&mut off);
            (time(&mut on), b)
        };
        t_on.push(BATCH as f64 / a);
        t_off.push(BATCH as f64 / b);
        ratios.push(b / a);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (lo, hi) = (
        ratios.iter().cloned().fold(f64::MAX, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max),
    );
    println!(
        "identities (R9), LAN stream, {rounds} rounds of {BATCH} records, paired: \
         process_batch {:.2} M records/s with identities on, {:.2} M with addresses only; \
         on/off {:.3} (per round {lo:.2}–{hi:.2})",
        med(&mut t_on) / 1e6,
        med(&mut t_off) / 1e6,
        med(&mut ratios),
    );
    for (name, e) in [("identities on", &on), ("addresses only", &off)] {
        let st = e.stats();
        let mem = e.memory_usage();
        println!(
            "identities (R9), {name}: {} pending, {} tracked identities, {} alerts; \
             {:.1} bytes per pending attempt, {:.1} bytes per tracked identity \
             (+ {:.1} of identity state: {} MACs learned, {} of them routers, {} bytes)",
            st.pending,
            st.sources,
            st.alerts,
            mem.pending_bytes as f64 / st.pending.max(1) as f64,
            mem.source_bytes as f64 / st.sources.max(1) as f64,
            mem.identity_bytes as f64 / st.sources.max(1) as f64,
            st.identity_macs,
            st.identity_routers,
            mem.identity_bytes,
        );
    }
}

/// 10M SYNs from random (spoofed) sources, default caps: peak heap.
fn flood_memory(quick: bool) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let mut e = Engine::new(EngineConfig::default());
    let mut alerts = Vec::new();
    let t = Instant::now();
    let n: u64 = if quick { 100_000 } else { 10_000_000 };
    // A slow scanner inside: 30 probes to distinct ports of one host, spread
    // evenly over the flood.
    let scanner = v4(0xc633_6409);
    let every = n / 30;
    for i in 0..n {
        if i % every == every / 2 {
            let r = PacketRecord {
                ts_ns: i * 1_000,
                src_addr: scanner,
                dst_addr: v4(0xcb00_7107),
                seq: 7,
                src_port: 40_000,
                dst_port: 1 + (i / every) as u16,
                family: AF_INET,
                tcp_flags: SYN,
                ..Default::default()
            };
            e.process(&r, &mut alerts);
        }
        let h = mix(i);
        let r = PacketRecord {
            ts_ns: i * 1_000, // 1M SYN/s
            src_addr: v4(h as u32),
            dst_addr: v4(0x0a01_0000 + ((h >> 32) & 0xffff) as u32),
            seq: (h >> 16) as u32,
            src_port: (h >> 48) as u16,
            dst_port: 80,
            family: AF_INET,
            tcp_flags: SYN,
            ..Default::default()
        };
        e.process(&r, &mut alerts);
    }
    e.finish(&mut alerts);
    let el = t.elapsed();
    let mem = e.memory_usage();
    let st = e.stats();
    let peak = PEAK.load(Relaxed) - base;
    println!(
        "flood: {n} spoofed SYNs in {:.2} s ({:.1} M records/s), peak heap {:.0} MiB; pending {}, sources {}, evicted_pending {}, evicted_sources {}, alerts {}",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64() / 1e6,
        peak as f64 / (1 << 20) as f64,
        st.pending,
        st.sources,
        st.evicted_pending,
        st.evicted_sources,
        alerts.len(),
    );
    let st = e.stats();
    println!(
        "flood: {:.1} bytes per pending attempt, {:.1} bytes per tracked (single-failure) source",
        mem.pending_bytes as f64 / st.pending as f64,
        mem.source_bytes as f64 / st.sources as f64,
    );
    assert!(
        peak < 1 << 30,
        "10M spoofed SYNs must stay under 1 GiB (peak {peak} bytes)"
    );
    let found = alerts
        .iter()
        .filter(|a| a.source == std::net::IpAddr::from([198, 51, 100, 9]))
        .count();
    println!(
        "flood: the slow scanner inside raised {found} alert(s); {} alerts in all",
        alerts.len()
    );
    assert!(found > 0, "the scanner inside the flood was not found");
}

/// One source failing 100,000 distinct pairs over 30 days: its bytes.
fn long_scanner_memory() {
    let mut e = Engine::new(EngineConfig::default());
    let before = e.memory_usage().source_bytes;
    let mut alerts = Vec::new();
    let n = 100_000u64;
    for i in 0..n {
        let r = PacketRecord {
            ts_ns: DAY_NS + i * (30 * DAY_NS / n),
            src_addr: v4(0xc633_6409),
            dst_addr: v4(0xcb00_7100 + (i / 60_000) as u32),
            seq: 7,
            src_port: 40_000,
            dst_port: 1 + (i % 60_000) as u16,
            family: AF_INET,
            tcp_flags: SYN,
            ..Default::default()
        };
        e.process(&r, &mut alerts);
    }
    e.finish(&mut alerts);
    let bytes = e.memory_usage().source_bytes - before;
    let st = e.stats();
    let last = alerts.last().map(|a| (a.failed_pairs, a.estimated));
    println!(
        "long scanner: 100,000 failed pairs over 30 days held in {bytes} bytes ({:.1} KiB; sketched sources {}); {} alerts, the last {:?}",
        bytes as f64 / 1024.0,
        st.sketched_sources,
        alerts.len(),
        last
    );
}

/// A checkpoint of 1M tracked sources (one failed pair each, and 1,000 with
/// 50): serialise + write + fsync time, size, and an exact restore.
fn checkpoint_1m(quick: bool) {
    let n: u64 = if quick { 10_000 } else { 1_000_000 };
    let mut e = Engine::new(EngineConfig::default());
    let mut alerts = Vec::new();
    for i in 0..n {
        let h = mix(i);
        let r = PacketRecord {
            ts_ns: DAY_NS + i * 1_000,
            src_addr: v4(h as u32),
            dst_addr: v4(0x0a01_0000 + ((h >> 32) & 0xffff) as u32),
            seq: (h >> 16) as u32,
            src_port: (h >> 48) as u16,
            dst_port: 80,
            family: AF_INET,
            tcp_flags: SYN,
            ..Default::default()
        };
        e.process(&r, &mut alerts);
    }
    for s in 0..1_000u32 {
        for p in 0..50u16 {
            let r = PacketRecord {
                ts_ns: DAY_NS + n * 1_000 + u64::from(s) * 100 + u64::from(p),
                src_addr: v4(0xcb00_7100 ^ s << 8),
                dst_addr: v4(0xc633_6400 + u32::from(p)),
                seq: 1,
                src_port: 40_000,
                dst_port: 22,
                family: AF_INET,
                tcp_flags: SYN,
                ..Default::default()
            };
            e.process(&r, &mut alerts);
        }
    }
    e.advance_to(DAY_NS + n * 1_000 + 200 * SECOND_NS, &mut alerts);
    let sources = e.stats().sources;
    let path = std::env::temp_dir().join(format!("slowscan-bench-state-{}", std::process::id()));
    let t = Instant::now();
    let state = e.checkpoint();
    let bytes = state.to_bytes();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&bytes).unwrap();
        f.sync_all().unwrap();
    }
    let write = t.elapsed();
    let t = Instant::now();
    let back = EngineState::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let (r, _) = Engine::restore(EngineConfig::default(), back, e.now_ns());
    let read = t.elapsed();
    let again = r.checkpoint();
    let exact = again == state;
    std::fs::remove_file(&path).unwrap();
    println!(
        "checkpoint: {sources} tracked sources, {} pending; written and fsynced in {:.2} s, {:.1} MiB on disk; read and restored in {:.2} s; restored exactly: {exact}",
        state.pending.len(),
        write.as_secs_f64(),
        bytes.len() as f64 / (1 << 20) as f64,
        read.as_secs_f64(),
    );
    assert!(exact, "the restored engine's checkpoint differs");
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    if std::env::var_os("SLOWSCAN_BENCH_IDENTITIES_ONLY").is_some() {
        identities_paired(quick);
        return;
    }
    if std::env::var_os("SLOWSCAN_BENCH_NO_FLOOD").is_none() {
        flood_memory(quick);
    }
    long_scanner_memory();
    checkpoint_1m(quick);
    identities_paired(quick);
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, quick);
    c.final_summary();
}
