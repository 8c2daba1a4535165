//! The detection engine: the paper's method (docs/method.md R4–R8) over a stream
//! of [`PacketRecord`]s. It knows nothing about where records come from, so
//! replay and live give the same answers; time comes only from the records
//! (and [`Engine::advance_to`]).
//!
//! # Handshake resolution (R5)
//! An Attempt (R1, [`tcp::is_attempt`]) opens a pending entry keyed by its
//! [`FlowKey`], holding its sequence number S and first-SYN time. It is
//! *Established* iff a later record on the same FlowKey has `ts ≥` the SYN
//! time, `ts ≤` the deadline, [`tcp::is_follow_up`] flags and sequence S + 1
//! (mod 2^32). Replies are never consulted (R3). A follow-up seen before any
//! SYN does nothing. A retransmitted SYN (same FlowKey and S) is the same
//! attempt; its deadline stays first SYN + handshake timeout (R5.1). A SYN with
//! a new S closes the earlier attempt as Failed and opens a new one. An attempt
//! is *Failed* when time passes its deadline (`now > deadline`: a follow-up
//! stamped exactly at the deadline still establishes). Attempts marked
//! [`STATUS_UNTRACKED`] by the kernel are only counted as `untracked`. Only
//! attempts and candidate follow-ups change state, so the engine gives the
//! same answers on the full stream and on the kernel pre-filter's output (SYNs
//! plus the first follow-up matching S + 1 after each).
//!
//! Time: the engine clock is the largest record time seen. Small disorder
//! (records from several CPUs) is tolerated: nothing panics and nothing is
//! lost; a late record is judged against its own timestamp.
//!
//! # Decided attempts
//! Inputs that already know an attempt's outcome (flow records, Zeek conn
//! logs) enter through [`Engine::decided_attempt`], where handshake
//! resolution ends: everything after it — whitelist, ignore list, service
//! map, identities, detectors, alerts — is shared with packets.
//!
//! # Counting (R6, R6.3)
//! Failures are counted in SYN order (closed attempts wait in the deadline
//! queue behind older pending ones), per source identity (R9, [`identity`]:
//! a host's MAC, a routed address, an outside prefix), as distinct
//! (destination IP, destination port) pairs in each detector's window. The
//! time of a failure is its SYN time (made monotone: a failure whose SYN is
//! older than one already counted, possible only with disordered input, takes
//! the later time). Detectors sharing a [`Window`] share one count.
//! * `Sliding(W)` (the default): failures with SYN time in `(t − W, t]`, t
//!   being the SYN time of the failure being counted — phase-free.
//! * `Tumbling(W)` (R6.1, the paper's): windows aligned to multiples of W
//!   since the Unix epoch in wall-clock time (record time +
//!   `wall_clock_offset_ns`); a new window starts the count afresh.
//! * `None`: never cleared.
//!
//! Failures to a live service (R4.5, [`services`]) are outages and count
//! toward no detector; sources in the ignore list (R4.6) are not analysed.
//! Per-source memory is bounded: exact up to [`EXACT_CAP`] pairs, then a
//! sliding HyperLogLog (see `counting`).
//!
//! # Alerts (R8)
//! Per (source, detector): an alert when the count first exceeds the
//! threshold, then at each doubling; a count back at or below the threshold
//! re-arms. Across the detectors of one source, an alert is withheld when one
//! with at least half its count was already written inside its window (see
//! `counting` for the rule). A slow scan of n targets therefore raises about
//! log2(n / threshold) alerts, never a flood.
//!
//! The alert's `@timestamp` is when the deciding failure was decided: its
//! deadline when it timed out, otherwise (closed by a new SYN, evicted, end of
//! input) the engine clock when it was counted; plus `wall_clock_offset_ns`.
//!
//! # Bounded memory
//! `max_pending` caps pending attempts: when full, the oldest is decided
//! Failed early (`evicted_pending`). `max_sources` caps tracked sources (see
//! `counting`). Sources and pairs out of every window are forgotten by a
//! sweep every [`SWEEP_EVERY_NS`] of engine time. The `report` state (replay
//! only) is not bounded.
//!
//! # Checkpoints
//! [`Engine::checkpoint`] and [`Engine::restore`] carry the failure state,
//! pending attempts and totals across a restart, in wall-clock time (see
//! `state.rs` for what is kept and what restore drops).

mod alert;
mod counting;
mod handshake;
pub mod identity;
mod index;
mod report;
pub mod services;
mod state;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use slowscan_common::{FlowKey, PacketRecord, STATUS_UNTRACKED, WhitelistKey, tcp};

pub use self::alert::{Alert, ECS_VERSION, Observer, Shape, Target};
pub use self::identity::{HomeNets, Identity, IdentityConfig};
pub use self::report::{Report, SourceTotals};
pub use self::state::{EngineState, Restored, STATE_FORMAT, StateError};
use crate::addr::canonical;
pub use crate::addr::ip_from;
pub use crate::ignore::IgnoreList;
pub use crate::rfc3339;
pub use crate::whitelist::{LearnConfig, Whitelist};

pub use self::counting::EXACT_CAP;
use self::counting::{Counting, Pair, SourceKey};
use self::handshake::{Attempt, Pending, Popped};
use self::identity::Identities;
use self::index::Stage;
use self::report::ReportState;
use self::services::ServiceMap;
pub use self::services::ServiceMapConfig;

pub const SECOND_NS: u64 = 1_000_000_000;
pub const HOUR_NS: u64 = 3600 * SECOND_NS;
pub const DAY_NS: u64 = 24 * HOUR_NS;
/// The longest window a detector may have (R6.3).
pub const MAX_WINDOW_NS: u64 = 90 * DAY_NS;
/// How often (engine time) sources and services out of every window are
/// forgotten.
pub const SWEEP_EVERY_NS: u64 = 300 * SECOND_NS;

/// R5.1: default handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT_NS: u64 = 60 * SECOND_NS;
/// Default cap on pending attempts (≈ 84–97 MB at the measured 80–92 bytes
/// per attempt).
pub const DEFAULT_MAX_PENDING: usize = 1 << 20;
/// Default cap on tracked sources (≈ 90 MB at the measured bytes per
/// single-failure source). With both defaults a flood of 10 million spoofed
/// SYNs from random sources stays well under 1 GiB (`benches/engine.rs`).
pub const DEFAULT_MAX_SOURCES: usize = 1 << 20;
pub const DEFAULT_MAX_TARGETS_IN_ALERT: usize = 32;

/// The default detectors (R6.3), all sliding: the paper's hour with its
/// recommended threshold (R6.2), then a day, a week and a month, whose
/// thresholds were chosen on long synthetic networks (docs/detectors.md): the
/// paper's pace (12 probes 300 s apart) down to one probe a day for a month
/// alert, while a host with up to 8 distinct failed pairs in 30 days does not.
pub const DEFAULT_LADDER: [(u64, u32); 4] = [
    (HOUR_NS, 9),
    (DAY_NS, 16),
    (7 * DAY_NS, 18),
    (30 * DAY_NS, 20),
];

/// R6.1 time window; lengths in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    /// Never cleared.
    None,
    /// Cleared when the window elapses (the paper's).
    Tumbling(u64),
    /// Failures within the last W.
    Sliding(u64),
}

impl Window {
    /// `"none"`, `"tumbling"` or `"sliding"`.
    pub fn mode(&self) -> &'static str {
        match self {
            Window::None => "none",
            Window::Tumbling(_) => "tumbling",
            Window::Sliding(_) => "sliding",
        }
    }

    pub fn length_ns(&self) -> Option<u64> {
        match *self {
            Window::None => None,
            Window::Tumbling(ns) | Window::Sliding(ns) => Some(ns),
        }
    }

    /// The length as users write it: `30d`, `1h`, `90s`, `1.5s`, `none`.
    pub fn length_label(&self) -> String {
        match self.length_ns() {
            None => "none".into(),
            Some(ns) => duration_label(ns),
        }
    }
}

/// `30d`, `36h`, `1h`, `10m`, `90s`, `1.5s`: the largest unit that divides.
pub fn duration_label(ns: u64) -> String {
    for (unit, len) in [
        ("d", DAY_NS),
        ("h", HOUR_NS),
        ("m", 60 * SECOND_NS),
        ("s", SECOND_NS),
    ] {
        if ns >= len && ns.is_multiple_of(len) {
            return format!("{}{unit}", ns / len);
        }
    }
    format!("{}s", ns as f64 / 1e9)
}

/// One (window, threshold) cell: alert when a source's distinct failed pairs
/// in the window exceed `threshold` (R6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DetectorConfig {
    pub window: Window,
    pub threshold: u32,
}

impl DetectorConfig {
    /// `1h:9`, `30d:24`, `none:9` (the mode is the window's).
    pub fn name(&self) -> String {
        format!("{}:{}", self.window.length_label(), self.threshold)
    }

    /// [`DEFAULT_LADDER`] as detectors.
    pub fn default_ladder() -> Vec<DetectorConfig> {
        DEFAULT_LADDER
            .iter()
            .map(|&(w, threshold)| DetectorConfig {
                window: Window::Sliding(w),
                threshold,
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// R5.1: an attempt not Established this long after its first SYN failed.
    pub handshake_timeout_ns: u64,
    /// Several (window, threshold) detectors over one pass; detectors with the
    /// same window share one counting state.
    pub detectors: Vec<DetectorConfig>,
    /// Cap on pending attempts (≥ 1).
    pub max_pending: usize,
    /// Cap on tracked sources (≥ 1).
    pub max_sources: usize,
    /// Added to record times to make wall-clock times: 0 for replay (capture
    /// times are wall clock), realtime − monotonic live.
    pub wall_clock_offset_ns: i64,
    /// Bound on the targets sample in an alert.
    pub max_targets_in_alert: usize,
    /// R4.4: records to whitelisted (destination, port) are ignored entirely.
    pub whitelist: Option<Whitelist>,
    /// R4.5: the continuous service map (`None`: off).
    pub services: Option<ServiceMapConfig>,
    /// R4.6: sources never analysed.
    pub ignore: Option<IgnoreList>,
    /// R4.1–R4.3: learn a whitelist from Established attempts.
    pub learn: Option<LearnConfig>,
    /// Keep per-source totals for [`Engine::report`] (unbounded; for replay).
    pub report: bool,
    /// R8 across detectors: withhold an alert when one with at least half
    /// its count was written inside its window (off for `replay --sweep`,
    /// whose cells count every detector's alerts, as Table 4 does).
    pub dedup_across_detectors: bool,
    /// Keep every counted failure for [`Engine::drain_failures`] (a fleet of
    /// sensors shares them; the caller must drain them regularly).
    pub export_failures: bool,
    /// R9: who a source is (home networks, outside prefixes, MACs).
    pub identity: IdentityConfig,
}

/// An Attempt whose outcome its input already decided (a flow record, a
/// conn.log line): it enters the engine where handshake resolution (R5)
/// ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecidedAttempt {
    pub flow: FlowKey,
    /// Its SYN's time, in engine time (the input's clock).
    pub syn_ts_ns: u64,
    pub established: bool,
    /// The initiator's MAC, when the input has it (zero otherwise, R9).
    pub src_mac: [u8; 6],
}

/// A Failed attempt counted toward the detectors (R6): not an outage (R4.5),
/// not from an ignored source (R4.6). What a fleet of sensors shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CountedFailure {
    /// The address of the attempt.
    pub source: IpAddr,
    /// What it was counted under (R9).
    pub identity: Identity,
    pub destination: IpAddr,
    pub port: u16,
    /// Its SYN time (the time R6 counts it at), wall-clock Unix ns.
    pub at_ns: i64,
}

impl Default for EngineConfig {
    /// 60 s handshake timeout (R5.1), the default ladder of sliding detectors
    /// ([`DEFAULT_LADDER`]), the service map on with a 30-day memory (R4.5).
    fn default() -> Self {
        Self {
            handshake_timeout_ns: DEFAULT_HANDSHAKE_TIMEOUT_NS,
            detectors: DetectorConfig::default_ladder(),
            max_pending: DEFAULT_MAX_PENDING,
            max_sources: DEFAULT_MAX_SOURCES,
            wall_clock_offset_ns: 0,
            max_targets_in_alert: DEFAULT_MAX_TARGETS_IN_ALERT,
            whitelist: None,
            services: Some(ServiceMapConfig::default()),
            ignore: None,
            learn: None,
            report: false,
            dedup_across_detectors: true,
            export_failures: false,
            identity: IdentityConfig::default(),
        }
    }
}

/// Counters (monotonic) and gauges (`pending`, `sources`, `sketched_sources`,
/// `services`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineStats {
    /// Records processed.
    pub records: u64,
    /// Records ignored because their destination is whitelisted (R4.4).
    pub whitelisted_records: u64,
    /// Records ignored because their source is in the ignore list (R4.6).
    pub ignored_records: u64,
    /// Attempts opened (R5; retransmissions and untracked excluded).
    pub attempts: u64,
    pub established: u64,
    /// Failed attempts (includes `evicted_pending` and `outage_failures`).
    pub failed: u64,
    /// Failed attempts to a live service (R4.5): counted toward no detector.
    pub outage_failures: u64,
    /// Attempts marked untracked by the kernel (neither Failed nor Established).
    pub untracked: u64,
    /// Retransmitted SYNs (same FlowKey and sequence number, R5.1).
    pub retransmissions: u64,
    /// Pending attempts decided Failed early because `max_pending` was reached.
    pub evicted_pending: u64,
    /// Sources forgotten because `max_sources` was reached.
    pub evicted_sources: u64,
    /// Sources forgotten because no failed pair was left in any window.
    pub expired_sources: u64,
    /// Live services forgotten because `max_services` was reached.
    pub evicted_services: u64,
    /// Attempts now pending (gauge).
    pub pending: u64,
    /// Sources now tracked (gauge).
    pub sources: u64,
    /// Sources whose failed pairs exceed the exact cap, held in a sketch (gauge).
    pub sketched_sources: u64,
    /// Live services now known (gauge).
    pub services: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts withheld by the cross-detector rule (R8).
    pub alerts_suppressed: u64,
    /// Attempts that entered already decided (flow records, conn logs).
    pub decided_attempts: u64,
    /// MACs not learned because the identity table was full (R9).
    pub macs_dropped: u64,
    /// MACs learned, hosts and routers (gauge, R9).
    pub identity_macs: u64,
    /// Of them, MACs now taken for a router's (gauge, R9).
    pub identity_routers: u64,
}

/// One tracked source, for `slowscan status` and `slowscan explain`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceStatus {
    /// What the failures are counted under (R9).
    pub identity: Identity,
    /// The identity's address, or the latest it used.
    pub ip: IpAddr,
    /// Distinct addresses the identity used, most recent first (bounded),
    /// and how many in all.
    pub addresses: Vec<IpAddr>,
    pub addresses_total: u32,
    /// Every detector with the source's count in its window.
    pub detectors: Vec<(DetectorConfig, u32)>,
    /// Counts are a sketch's estimates, and `failed_pairs` a sample.
    pub estimated: bool,
    /// (destination, port, latest failure: wall-clock Unix ns), latest first.
    pub failed_pairs: Vec<(IpAddr, u16, i64)>,
}

/// A source in one detector's window, for `slowscan status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetectorSource {
    pub identity: Identity,
    pub ip: IpAddr,
    /// Distinct failed pairs in the window (estimated when `estimated`).
    pub failed_pairs: u32,
    pub estimated: bool,
    /// Of the pairs known (a sample when estimated).
    pub shape: Shape,
    /// SYN times of the first and latest failure in the window (wall-clock
    /// Unix ns), of the pairs known.
    pub first_failure_ns: Option<i64>,
    pub last_failure_ns: Option<i64>,
}

/// Bytes the engine holds, by structure (allocated capacity).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    /// Pending attempts: slab, hash index, deadline queue.
    pub pending_bytes: usize,
    /// Tracked sources: slab, index, eviction FIFO, pair sets and sketches.
    pub source_bytes: usize,
    /// The service map (R4.5).
    pub service_bytes: usize,
    /// MACs learned and identities' recent addresses (R9).
    pub identity_bytes: usize,
}

/// The detection engine. See the module documentation for the rules.
pub struct Engine {
    timeout: u64,
    max_pending: usize,
    offset: i64,
    whitelist: Option<Whitelist>,
    ignore: Option<IgnoreList>,
    learn: Option<LearnConfig>,
    learned: Option<Whitelist>,
    services: Option<ServiceMap>,
    pending: Pending,
    /// `EngineConfig::detectors` (checkpoints name them).
    detectors: Vec<DetectorConfig>,
    counting: Counting,
    identities: Identities,
    report: Option<ReportState>,
    /// Largest record time seen.
    now: u64,
    /// Largest failure time counted (keeps window time monotone).
    count_clock: u64,
    /// Engine time of the next sweep of sources and services.
    next_sweep: u64,
    /// Counted failures not yet drained (with `export_failures`).
    exported: Option<Vec<CountedFailure>>,
    st: EngineStats,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        let learned = cfg.learn.as_ref().map(|_| Whitelist::new());
        Engine {
            timeout: cfg.handshake_timeout_ns,
            max_pending: cfg.max_pending.max(1),
            offset: cfg.wall_clock_offset_ns,
            whitelist: cfg.whitelist.filter(|w| !w.is_empty()),
            ignore: cfg.ignore.filter(|i| !i.is_empty()),
            learn: cfg.learn,
            learned,
            services: cfg.services.map(ServiceMap::new),
            pending: Pending::new(),
            detectors: cfg.detectors.clone(),
            counting: Counting::new(
                &cfg.detectors,
                cfg.max_sources,
                cfg.wall_clock_offset_ns,
                cfg.max_targets_in_alert,
                cfg.dedup_across_detectors,
            ),
            identities: Identities::new(cfg.identity, cfg.max_sources),
            report: cfg.report.then(ReportState::default),
            now: 0,
            count_clock: 0,
            next_sweep: 0,
            exported: cfg.export_failures.then(Vec::new),
            st: EngineStats::default(),
        }
    }

    /// Moves the failures counted since the last call into `out` (with
    /// `EngineConfig::export_failures`; otherwise nothing).
    pub fn drain_failures(&mut self, out: &mut Vec<CountedFailure>) {
        if let Some(v) = &mut self.exported {
            out.append(v);
        }
    }

    /// Feed one attempt its input already decided (see the module
    /// documentation); alerts it decides are pushed to `out`. Its time moves
    /// the engine clock as a record's would.
    pub fn decided_attempt(&mut self, d: &DecidedAttempt, out: &mut Vec<Alert>) {
        self.st.decided_attempts += 1;
        if d.syn_ts_ns > self.now {
            self.now = d.syn_ts_ns;
            self.expire(out);
        }
        let key = d.flow;
        if let Some(wl) = &self.whitelist
            && wl.contains(&dest_key(&key))
        {
            // R4.4, checked here as the kernel would have.
            self.st.whitelisted_records += 1;
            return;
        }
        if let Some(ig) = &self.ignore
            && ig.contains(key.family, &key.src_addr)
        {
            self.st.ignored_records += 1;
            return;
        }
        self.st.attempts += 1;
        if let Some(r) = &mut self.report {
            r.attempt(address_key(&key));
        }
        self.identities
            .observe(&d.src_mac, key.family, &key.src_addr, d.syn_ts_ns);
        if d.established {
            self.established(&key, d.syn_ts_ns, d.syn_ts_ns);
        } else {
            let a = Attempt::new(key, 0, d.syn_ts_ns, d.src_mac);
            let at = self.now.max(d.syn_ts_ns);
            self.failed(a, at, out);
        }
    }

    /// Feed one record; alerts decided by it (or by time advancing to its ts)
    /// are pushed to `out`.
    #[inline]
    pub fn process(&mut self, rec: &PacketRecord, out: &mut Vec<Alert>) {
        self.process_hashed(rec, None, out);
    }

    /// [`Engine::process`] for each record in order, with the same results,
    /// faster: hash-index buckets and entries are prefetched a few records
    /// ahead, so the cache misses of large tables overlap.
    pub fn process_batch(&mut self, recs: &[PacketRecord], out: &mut Vec<Alert>) {
        const AHEAD: usize = 8;
        const RING: usize = 16;
        let mut hashes = [0u64; RING];
        let candidate =
            |r: &PacketRecord| tcp::is_attempt(r.tcp_flags) || tcp::is_follow_up(r.tcp_flags);
        for (i, r) in recs.iter().enumerate().take(AHEAD) {
            if candidate(r) {
                hashes[i % RING] = self.pending.hash(&r.flow());
                self.pending.prefetch_at(Stage::Bucket, hashes[i % RING]);
            }
        }
        for (i, rec) in recs.iter().enumerate() {
            if let Some(r) = recs.get(i + AHEAD)
                && candidate(r)
            {
                let h = self.pending.hash(&r.flow());
                hashes[(i + AHEAD) % RING] = h;
                self.pending.prefetch_at(Stage::Bucket, h);
            }
            if let Some(r) = recs.get(i + AHEAD / 2)
                && tcp::is_follow_up(r.tcp_flags)
            {
                self.pending
                    .prefetch_at(Stage::Entry, hashes[(i + AHEAD / 2) % RING]);
                // A follow-up usually Establishes: its service (R4.5).
                if let Some(svc) = &self.services {
                    svc.prefetch_at(Stage::Bucket, svc.hash(&dest_key(&r.flow())));
                }
            }
            let hash = candidate(rec).then_some(hashes[i % RING]);
            self.process_hashed(rec, hash, out);
        }
    }

    #[inline]
    fn process_hashed(&mut self, rec: &PacketRecord, hash: Option<u64>, out: &mut Vec<Alert>) {
        self.st.records += 1;
        if rec.ts_ns > self.now {
            self.now = rec.ts_ns;
            self.expire(out);
        }
        if let Some(wl) = &self.whitelist
            && wl.contains(&rec.whitelist_key())
        {
            // R4.4: not analysed at all.
            self.st.whitelisted_records += 1;
            return;
        }
        if let Some(ig) = &self.ignore
            && ig.contains(rec.family, &rec.src_addr)
        {
            // R4.6: an ignored source is never counted.
            self.st.ignored_records += 1;
            return;
        }
        let flags = rec.tcp_flags;
        if tcp::is_attempt(flags) {
            if rec.status & STATUS_UNTRACKED != 0 {
                self.st.untracked += 1;
            } else {
                self.on_attempt(rec, hash, out);
            }
        } else if tcp::is_follow_up(flags) {
            self.on_follow_up(rec, hash);
        }
        self.prefetch_expiry();
    }

    /// Prefetches, in stages, what the next expiries will touch: the
    /// attempts at the front of the deadline queue, then their index buckets
    /// and their sources' buckets, then the sources themselves.
    #[inline]
    fn prefetch_expiry(&self) {
        self.pending.prefetch_queued(24);
        if let Some(a) = self.pending.queued(12) {
            self.pending
                .prefetch_at(Stage::Bucket, self.pending.hash(&a.key));
            if let Some(svc) = &self.services {
                svc.prefetch_at(Stage::Bucket, svc.hash(&dest_key(&a.key)));
            }
            self.counting
                .prefetch_at(Stage::Bucket, self.counting.hash(&address_key(&a.key)));
        }
        if let Some(a) = self.pending.queued(6) {
            self.counting
                .prefetch_at(Stage::Entry, self.counting.hash(&address_key(&a.key)));
        }
        if let Some(a) = self.pending.queued(3) {
            self.counting
                .prefetch_at(Stage::Detail, self.counting.hash(&address_key(&a.key)));
            if let Some(svc) = &self.services {
                svc.prefetch_at(Stage::Entry, svc.hash(&dest_key(&a.key)));
            }
        }
        if let Some(a) = self.pending.queued(1) {
            self.counting
                .prefetch_at(Stage::Pairs, self.counting.hash(&address_key(&a.key)));
        }
    }

    /// Advance time without a record (live: a timer tick) — fails attempts
    /// whose handshake deadline passed.
    pub fn advance_to(&mut self, now_ns: u64, out: &mut Vec<Alert>) {
        if now_ns > self.now {
            self.now = now_ns;
            self.expire(out);
        }
    }

    /// End of input (end of a capture): every still-pending attempt is decided
    /// Failed now.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        while let Some(p) = self.pending.pop_decided(self.now, self.timeout, true) {
            self.decided(p, false, out);
        }
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            pending: self.pending.pending() as u64,
            sources: self.counting.sources() as u64,
            sketched_sources: self.counting.sketched as u64,
            evicted_sources: self.counting.evicted,
            expired_sources: self.counting.expired,
            alerts_suppressed: self.counting.suppressed,
            services: self.services.as_ref().map_or(0, |s| s.len() as u64),
            evicted_services: self.services.as_ref().map_or(0, |s| s.evicted),
            macs_dropped: self.identities.macs_dropped,
            identity_macs: self.identities.macs() as u64,
            identity_routers: self.identities.routers(self.now) as u64,
            ..self.st
        }
    }

    /// Totals and (with `EngineConfig::report`) per-source totals so far.
    pub fn report(&self) -> Report {
        Report {
            attempts: self.st.attempts,
            established: self.st.established,
            failed: self.st.failed,
            untracked: self.st.untracked,
            sources: self
                .report
                .as_ref()
                .map(|r| r.sources())
                .unwrap_or_default(),
        }
    }

    /// The whitelist learned so far when `EngineConfig::learn` is set (it
    /// starts empty, whatever `EngineConfig::whitelist` holds).
    pub fn learned(&self) -> Option<Whitelist> {
        self.learned.clone()
    }

    /// What the engine holds about one source: its count in every window
    /// and its failed pairs, latest first (`None`: not tracked). An address
    /// is looked up as itself, then as the identity it was last counted
    /// under (a MAC or prefix, R9), then as the identity it would be
    /// counted under now.
    pub fn source_status(&self, id: Identity) -> Option<SourceStatus> {
        if let Some(v) = self.counting.view(&id.key()) {
            return Some(self.status_of(v));
        }
        let ip = id.address()?;
        if let Some(k) = self.identities.holder_of(ip)
            && let Some(v) = self.counting.view(&k)
        {
            return Some(self.status_of(v));
        }
        let (family, addr) = crate::addr::addr_of(ip);
        let k = self.identities.resolve(&[0; 6], family, &addr, self.now);
        self.counting.view(&k).map(|v| self.status_of(v))
    }

    /// [`Engine::source_status`] of every tracked source, highest count in
    /// any window first, at most `n`.
    pub fn top_sources(&self, n: usize) -> Vec<SourceStatus> {
        let mut v: Vec<_> = self.counting.views().collect();
        v.sort_unstable_by_key(|s| std::cmp::Reverse(s.counts.iter().copied().max()));
        v.truncate(n);
        v.into_iter().map(|s| self.status_of(s)).collect()
    }

    /// The `n` sources with the most failed pairs in detector `d`'s window
    /// now, with the shape and first and latest failure of those pairs.
    pub fn top_sources_for(&self, d: usize, n: usize) -> Vec<DetectorSource> {
        let Some(det) = self.detectors.get(d) else {
            return Vec::new();
        };
        let windows = self.counting.windows();
        let Some(g) = windows.iter().position(|w| *w == det.window) else {
            return Vec::new();
        };
        let start = counting::window_start(det.window, self.count_clock, self.offset);
        let mut v: Vec<counting::SourceView> = self
            .counting
            .views()
            .filter(|s| s.counts.get(g).copied().unwrap_or(0) > 0)
            .collect();
        v.sort_unstable_by_key(|s| std::cmp::Reverse(s.counts[g]));
        v.truncate(n);
        v.into_iter()
            .map(|s| {
                let inside: Vec<_> = s.pairs.iter().filter(|(_, t)| *t >= start).collect();
                let hosts: std::collections::HashSet<_> =
                    inside.iter().map(|(p, _)| p.addr).collect();
                let ports: std::collections::HashSet<_> =
                    inside.iter().map(|(p, _)| p.port).collect();
                let wall = |t: u64| rfc3339::wall(t, self.offset);
                let (identity, ip, _, _) = self.identity_of(&s.key);
                DetectorSource {
                    identity,
                    ip,
                    failed_pairs: s.counts[g],
                    estimated: s.estimated,
                    shape: Shape::classify(hosts.len(), ports.len()),
                    first_failure_ns: inside.iter().map(|(_, t)| *t).min().map(wall),
                    last_failure_ns: inside.iter().map(|(_, t)| *t).max().map(wall),
                }
            })
            .collect()
    }

    /// An identity, its address or latest address, its recent addresses
    /// and how many in all.
    fn identity_of(&self, k: &SourceKey) -> (Identity, IpAddr, Vec<IpAddr>, u32) {
        let id = Identity::of_key(k);
        if let Some(ip) = id.address() {
            return (id, ip, vec![ip], 1);
        }
        let (list, total) = self
            .identities
            .addresses(k)
            .map_or((Vec::new(), 0), |r| (r.since(0), r.total));
        let ip = list.first().copied().unwrap_or_else(|| match id {
            Identity::Prefix(p) => p.addr(),
            _ => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        });
        (id, ip, list, total)
    }

    fn status_of(&self, v: counting::SourceView) -> SourceStatus {
        let windows = self.counting.windows();
        let wall = |t| rfc3339::wall(t, self.offset);
        let (identity, ip, addresses, addresses_total) = self.identity_of(&v.key);
        SourceStatus {
            identity,
            ip,
            addresses,
            addresses_total,
            detectors: self
                .detectors
                .iter()
                .map(|d| {
                    let g = windows.iter().position(|w| *w == d.window).unwrap_or(0);
                    (*d, v.counts.get(g).copied().unwrap_or(0))
                })
                .collect(),
            estimated: v.estimated,
            failed_pairs: v
                .pairs
                .iter()
                .map(|(p, t)| (p.ip(), p.port, wall(*t)))
                .collect(),
        }
    }

    /// The detectors, in configuration order.
    pub fn detectors(&self) -> &[DetectorConfig] {
        &self.detectors
    }

    /// The engine clock: the largest record time seen (or advanced to).
    pub fn now_ns(&self) -> u64 {
        self.now
    }

    /// Allocated bytes held for pending attempts and tracked sources.
    pub fn memory_usage(&self) -> MemoryUsage {
        MemoryUsage {
            pending_bytes: self.pending.allocated_bytes(),
            source_bytes: self.counting.allocated_bytes(),
            service_bytes: self.services.as_ref().map_or(0, |s| s.allocated_bytes()),
            identity_bytes: self.identities.allocated_bytes(),
        }
    }

    fn on_attempt(&mut self, rec: &PacketRecord, hash: Option<u64>, out: &mut Vec<Alert>) {
        let key = rec.flow();
        let hash = hash.unwrap_or_else(|| self.pending.hash(&key));
        let mut closed = false;
        if let Some((slot, a)) = self.pending.find(hash, &key) {
            let live = a.is_live_at(rec.ts_ns, self.timeout);
            if live && a.seq == rec.seq {
                // R5.1: a retransmission is the same attempt.
                self.st.retransmissions += 1;
                return;
            }
            // R5.1: a SYN with a new sequence number closes the earlier
            // attempt as Failed (so does any SYN after its deadline, when its
            // expiry is still queued behind a disordered record).
            self.pending.close(hash, slot);
            closed = true;
        }
        while self.pending.live() >= self.max_pending {
            match self.pending.pop_decided(self.now, self.timeout, true) {
                Some(p) => self.decided(p, true, out),
                None => break,
            }
        }
        self.pending
            .open(hash, key, rec.seq, rec.ts_ns, rec.src_mac);
        self.st.attempts += 1;
        if let Some(r) = &mut self.report {
            r.attempt(address_key(&key));
        }
        // R9: learned from attempts only (the pre-filter passes them all).
        self.identities
            .observe(&rec.src_mac, key.family, &key.src_addr, rec.ts_ns);
        if closed {
            self.expire(out);
        }
    }

    fn on_follow_up(&mut self, rec: &PacketRecord, hash: Option<u64>) {
        if self.pending.pending() == 0 {
            return;
        }
        let key = rec.flow();
        let hash = hash.unwrap_or_else(|| self.pending.hash(&key));
        let Some((slot, a)) = self.pending.find(hash, &key) else {
            return;
        };
        // R5: same 5-tuple and direction, ts ≥ SYN time, seq S + 1 (mod 2^32).
        if !tcp::is_next_seq(a.seq, rec.seq)
            || rec.ts_ns < a.syn_ts
            || !a.is_live_at(rec.ts_ns, self.timeout)
        {
            return;
        }
        let a = self.pending.resolve(hash, slot);
        self.established(&key, a.syn_ts, rec.ts_ns);
    }

    /// An Established attempt (R5, or decided so by its input).
    fn established(&mut self, key: &FlowKey, syn_ts: u64, at: u64) {
        self.st.established += 1;
        if let Some(svc) = &mut self.services {
            // R4.5: the destination is a live service.
            svc.established(dest_key(key), syn_ts);
        }
        if let Some(r) = &mut self.report {
            r.established(address_key(key));
        }
        if let (Some(learn), Some(learned)) = (&self.learn, &mut self.learned)
            && learn.is_eligible(key.dst_port)
        {
            // R4.2–R4.3: an Established connection to an eligible port.
            learned.record_established(dest_key(key), rfc3339::wall(at, self.offset));
        }
    }

    fn expire(&mut self, out: &mut Vec<Alert>) {
        while let Some(p) = self.pending.pop_decided(self.now, self.timeout, false) {
            self.decided(p, false, out);
        }
        if self.now >= self.next_sweep {
            self.sweep();
        }
    }

    /// Forgets sources and services out of every window. Every attempt still
    /// queued has its SYN after `now − timeout` (the deadline queue was just
    /// drained), so no failure is counted before that any more; the failure
    /// clock moves there, which keeps that true for disordered input too.
    fn sweep(&mut self) {
        self.next_sweep = self.now.saturating_add(SWEEP_EVERY_NS);
        let t = self.count_clock.max(self.now.saturating_sub(self.timeout));
        self.count_clock = t;
        self.counting.sweep(t);
        let longest = self.counting.longest_window_start(t);
        self.identities.sweep(longest, self.now);
        if let Some(svc) = &mut self.services {
            svc.expire(t);
        }
    }

    fn decided(&mut self, p: Popped, evicting: bool, out: &mut Vec<Alert>) {
        let (a, decided_at) = match p {
            Popped::TimedOut(a) => (a, a.deadline(self.timeout)),
            Popped::Closed(a) => (a, self.now),
            Popped::Forced(a) => {
                if evicting {
                    self.st.evicted_pending += 1;
                }
                (a, self.now)
            }
        };
        self.failed(a, decided_at, out);
    }

    /// Counts one Failed attempt (R6) and raises the alerts it decides (R8).
    fn failed(&mut self, a: Attempt, decided_at: u64, out: &mut Vec<Alert>) {
        self.st.failed += 1;
        let pair = Pair::new(a.key.family, &a.key.dst_addr, a.key.dst_port);
        if let Some(r) = &mut self.report {
            r.failed(address_key(&a.key), pair);
        }
        if let Some(svc) = &self.services
            && svc.is_live(&dest_key(&a.key), a.syn_ts)
        {
            // R4.5: an outage of a live service, not reconnaissance.
            self.st.outage_failures += 1;
            return;
        }
        let t = a.syn_ts.max(self.count_clock);
        self.count_clock = t;
        // R9: who the source is, as of this attempt.
        let src = self
            .identities
            .resolve(&a.mac, a.key.family, &a.key.src_addr, a.syn_ts);
        let ip = ip_from(a.key.family, &a.key.src_addr);
        self.identities.used(&src, ip, t);
        if let Some(v) = &mut self.exported {
            v.push(CountedFailure {
                source: ip,
                identity: Identity::of_key(&src),
                destination: pair.ip(),
                port: pair.port,
                at_ns: rfc3339::wall(t, self.offset),
            });
        }
        let before = out.len();
        self.counting
            .record_failure(src, pair, t, rfc3339::wall(decided_at, self.offset), out);
        self.st.alerts += (out.len() - before) as u64;
        if out.len() > before {
            self.name_sources(&src, ip, &mut out[before..]);
        }
    }

    /// Alerts name the deciding attempt's address and the addresses the
    /// identity used in the window (R9).
    fn name_sources(&self, src: &SourceKey, ip: IpAddr, alerts: &mut [Alert]) {
        let recent = self.identities.addresses(src);
        for a in alerts {
            a.source = ip;
            match recent {
                Some(r) if a.identity.address().is_none() => {
                    let since = a
                        .window_start_ns
                        .map_or(0, |w| engine_time_of(w, self.offset));
                    a.addresses = r.since(since);
                    a.addresses_total = r.total.max(a.addresses.len() as u32);
                }
                _ => {
                    a.addresses = vec![ip];
                    a.addresses_total = 1;
                }
            }
        }
    }
}

/// The destination of a flow as a service (R4.5) key.
#[inline]
fn dest_key(k: &FlowKey) -> WhitelistKey {
    WhitelistKey::new(k.family, canonical(k.family, &k.dst_addr), k.dst_port)
}

/// The source address as a key (per-address totals, prefetching).
fn address_key(k: &FlowKey) -> SourceKey {
    SourceKey {
        addr: canonical(k.family, &k.src_addr),
        family: k.family,
        len: if k.family == slowscan_common::AF_INET {
            32
        } else {
            128
        },
    }
}

/// Wall-clock ns back to engine time (clamped at 0).
fn engine_time_of(wall_ns: i64, offset: i64) -> u64 {
    (i128::from(wall_ns) - i128::from(offset)).clamp(0, i128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests;
