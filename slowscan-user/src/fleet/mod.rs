//! A fleet of sensors (docs/fleet.md): each sensor pushes the failures its
//! engine counted ([`CountedFailure`]: not outages, not ignored sources) into
//! a shared Redis Cluster (or one Redis server), where a function library
//! counts every source's distinct failed pairs fleet-wide per detector (R6)
//! and applies the same R8 rule as the local engine, atomically on the shard
//! that holds the source. The push that crosses a level claims its alert
//! (SET NX in the same call), so exactly one sensor of the fleet writes it.
//!
//! [`Fleet`] is the client: [`Fleet::push`] is cheap and never blocks (a
//! bounded queue, oldest dropped and counted when full; a pair already
//! pushed in the same dedup bucket is not pushed again); a thread of its own
//! runs tokio, batches the queue per source and pipelines it to each master,
//! reconnects with backoff, follows failovers, and hands back the alerts this
//! sensor claimed ([`Fleet::drain_alerts`]) as data for the sensor's one
//! alert path.

mod store;
mod url;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{Pipeline, Value};

use crate::engine::{
    Alert, CountedFailure, DetectorConfig, EXACT_CAP, HomeNets, Identity, Shape, Target, Window,
};

pub use self::store::{FUNCTION, LIBRARY, StoreMode, key_slot};
use self::store::{Reply, Store, as_bytes, as_int, as_text, one_line};
pub use self::url::FleetUrl;

const MS: u64 = 1_000_000;
/// Pushes a master applied but no replica confirmed are tried this many
/// times (each WAITing `replica_wait`) before they count as done.
const UNACKED_TRIES: u32 = 20;

/// How a [`Fleet`] runs. [`FleetConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub url: FleetUrl,
    /// This sensor's name (`--sensor-name`): in the store's list of the
    /// sensors that contributed to a source, and in the batch ids.
    pub sensor: String,
    /// The detectors (the same for every sensor of a fleet).
    pub detectors: Vec<DetectorConfig>,
    /// Failures held (queued and in flight) while the store is slow or
    /// unreachable; beyond, new failures are dropped (counted).
    pub queue_capacity: usize,
    /// Failures taken from the queue per round of pipelines.
    pub batch_max: usize,
    /// Dedup bucket: a (source, destination, port) already pushed in the
    /// same bucket of this many ns is not pushed again. The store widens
    /// sliding windows by it, so the fleet never counts less than a sensor.
    /// 0: no dedup, and the store's windows are exactly the engine's.
    pub dedup_ns: u64,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// On a master with replicas, how long each pipeline WAITs for one
    /// replica to have it (a push is done, and its alerts handed back, once
    /// a replica has it or this passed).
    pub replica_wait: Duration,
    /// Key prefix in the store (`ss`): keys are `PREFIX:{SOURCE}:…`,
    /// SOURCE the identity's text (see [`FleetConfig::source_label`]).
    pub key_prefix: String,
    /// The site this sensor watches (`--fleet-site`), for fleets whose
    /// sites reuse private address space: addresses inside
    /// [`FleetConfig::home_nets`] are then keyed `SITE/ADDRESS`, so two
    /// sites' 10.0.0.5 are two sources. MACs and sources outside the home
    /// networks stay fleet-wide. None: one address space.
    pub site: Option<String>,
    /// This sensor's home networks (R9; the engine's `--home-nets`).
    pub home_nets: HomeNets,
    /// How long an address stays an alias of the MAC a sensor saw it on
    /// (refreshed while the sensor keeps counting failures from it).
    pub alias_ttl: Duration,
    /// Targets listed in an alert (the latest).
    pub max_targets: usize,
}

/// The one-line errors of the fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Store(String),
}

impl FleetConfig {
    /// Checks the detectors (windows must be bounded: the store forgets a
    /// source's pairs after its longest window) and sets the defaults.
    pub fn new(
        url: FleetUrl,
        sensor: &str,
        detectors: &[DetectorConfig],
    ) -> Result<FleetConfig, FleetError> {
        if sensor.is_empty()
            || sensor.len() > 64
            || !sensor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(FleetError::Config(format!(
                "--sensor-name {sensor:?}: use 1-64 letters, digits, '-', '_', '.' or ':'"
            )));
        }
        if detectors.is_empty() {
            return Err(FleetError::Config(
                "--fleet needs at least one detector".into(),
            ));
        }
        let mut min_window = u64::MAX;
        let mut max_window = 0u64;
        for d in detectors {
            match d.window {
                Window::None => {
                    return Err(FleetError::Config(format!(
                        "--fleet: detector {} has no window; a fleet's store forgets a source after its longest window, so give every detector one (e.g. --detector 30d:20)",
                        d.name()
                    )));
                }
                Window::Sliding(ns) | Window::Tumbling(ns) => {
                    if ns < 1000 * MS {
                        return Err(FleetError::Config(format!(
                            "--fleet: detector {}: windows of a fleet are at least 1 s",
                            d.name()
                        )));
                    }
                    min_window = min_window.min(ns);
                    max_window = max_window.max(ns);
                }
            }
        }
        Ok(FleetConfig {
            url,
            sensor: sensor.to_string(),
            detectors: detectors.to_vec(),
            queue_capacity: 1 << 20,
            batch_max: 16_384,
            // A 64th of the shortest window (56 s for 1h), at most a minute.
            dedup_ns: (min_window / 64).clamp(MS, 60_000 * MS),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            replica_wait: Duration::from_millis(500),
            key_prefix: "ss".into(),
            max_targets: crate::engine::DEFAULT_MAX_TARGETS_IN_ALERT,
            site: None,
            home_nets: HomeNets::default(),
            // A day (a temporary address's preferred lifetime, a DHCP
            // lease), or the longest window if shorter.
            alias_ttl: Duration::from_nanos(max_window.min(crate::engine::DAY_NS)),
        })
    }

    /// Sets the site (`--fleet-site`): 1-64 letters, digits, '-', '_', '.'.
    pub fn with_site(mut self, site: Option<&str>) -> Result<FleetConfig, FleetError> {
        if let Some(s) = site
            && (s.is_empty()
                || s.len() > 64
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(FleetError::Config(format!(
                "--fleet-site {s:?}: use 1-64 letters, digits, '-', '_' or '.'"
            )));
        }
        self.site = site.map(str::to_string);
        Ok(self)
    }

    /// The text an identity is keyed by in the store: its own
    /// (`198.51.100.7`, `02-10-00-00-00-05`, `2001:db8:bad:1::/64`), an
    /// address inside the home networks prefixed by the site when one is set
    /// (`site-a/10.0.0.5`).
    pub fn source_label(&self, id: &Identity) -> String {
        match (id, &self.site) {
            (Identity::Address(ip), Some(site)) => {
                let (f, a) = crate::addr::addr_of(*ip);
                if self.home_nets.contains(f, &a) {
                    format!("{site}/{ip}")
                } else {
                    ip.to_string()
                }
            }
            _ => id.to_string(),
        }
    }

    /// The prefix of an identity's keys: `ss:{LABEL}:`.
    pub fn source_key(&self, id: &Identity) -> String {
        format!("{}:{{{}}}:", self.key_prefix, self.source_label(id))
    }
}

/// An alert this sensor claimed for the fleet: the fleet-wide count of one
/// source's distinct failed pairs crossed a detector's level (R8).
#[derive(Clone, Debug, PartialEq)]
pub struct FleetAlert {
    /// The address of the crossing failure.
    pub source: IpAddr,
    /// What the fleet counted it under (R9): the pushing sensor's identity,
    /// or the MAC its address is an alias of.
    pub identity: Identity,
    /// The addresses the identity used in the window, latest first (at
    /// most 16; the store keeps 64), and how many of them.
    pub addresses: Vec<IpAddr>,
    pub addresses_total: u32,
    /// Index in [`FleetConfig::detectors`].
    pub detector: usize,
    pub config: DetectorConfig,
    /// Fleet-wide distinct failed pairs in the window.
    pub failed_pairs: u32,
    /// Past the exact cap: a HyperLogLog's estimate.
    pub estimated: bool,
    pub alert_seq: u32,
    /// The crossing failure's SYN time (wall clock, Unix ns).
    pub last_failure_ns: i64,
    pub first_failure_ns: i64,
    /// The window's start (sliding: the crossing failure minus the window,
    /// as in the engine's alerts; the store counts D more, see `dedup_ns`).
    pub window_start_ns: i64,
    /// The sensors with a failure of this source in the window, sorted.
    pub sensors: Vec<String>,
    /// The latest failed pairs (at most `max_targets`), oldest first.
    pub targets: Vec<Target>,
    pub distinct_hosts: u32,
    pub distinct_ports: u32,
    pub shape: Shape,
    /// From the crossing failure's [`Fleet::push`] to the claim.
    pub lag: Duration,
    /// Claimed by an earlier try of the same push (its reply was lost).
    pub replayed: bool,
}

impl FleetAlert {
    /// The alert in the engine's form (for the same JSON line), stamped now.
    pub fn to_alert(&self) -> Alert {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Alert {
            timestamp_ns: now,
            source: self.source,
            identity: self.identity,
            addresses: self.addresses.clone(),
            addresses_total: self.addresses_total,
            detector: self.detector,
            failed_pairs: self.failed_pairs,
            estimated: self.estimated,
            threshold: self.config.threshold,
            window: self.config.window,
            window_start_ns: Some(self.window_start_ns),
            first_failure_ns: self.first_failure_ns,
            last_failure_ns: self.last_failure_ns,
            shape: self.shape,
            distinct_hosts: self.distinct_hosts,
            distinct_ports: self.distinct_ports,
            targets: self.targets.clone(),
            alert_seq: self.alert_seq,
        }
    }
}

/// A sensor's own alerts (its engine's), held while the fleet decides: a
/// crossing whose failures the store counted is the fleet's, claimed once
/// fleet-wide (or withheld there by R8); the sensor writes its own alert
/// only when the store did not count them (docs/fleet.md, "In the sensor").
pub struct HeldAlerts {
    held: Vec<(Instant, Alert)>,
    grace: Duration,
}

impl HeldAlerts {
    /// `grace`: how long an alert whose failures are still on their way to a
    /// master that answers is held before it is written anyway (a replica
    /// that never confirms must not silence the sensor).
    pub fn new(grace: Duration) -> HeldAlerts {
        HeldAlerts {
            held: Vec::new(),
            grace,
        }
    }

    pub fn hold(&mut self, alerts: impl IntoIterator<Item = Alert>) {
        let now = Instant::now();
        self.held.extend(alerts.into_iter().map(|a| (now, a)));
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Forgets the held alerts whose source the store counted; moves into
    /// `out` (to be written, scope "sensor") those it will not count soon —
    /// dropped, or the master of the source's slot out of reach — and those
    /// held past the grace; keeps the others.
    pub fn settle(&mut self, fleet: &Fleet, out: &mut Vec<Alert>) {
        let grace = self.grace;
        self.held
            .retain_mut(|(since, a)| match fleet.confirmation(a.identity) {
                Confirmation::Counted => false,
                Confirmation::Pending if since.elapsed() < grace => true,
                Confirmation::Pending | Confirmation::Unreachable => {
                    out.push(a.clone());
                    false
                }
            });
    }

    /// At stop, after the last flush: every held alert the store did not
    /// count into `out`.
    pub fn finish(&mut self, fleet: &Fleet, out: &mut Vec<Alert>) {
        for (_, a) in self.held.drain(..) {
            if fleet.confirmation(a.identity) != Confirmation::Counted {
                out.push(a);
            }
        }
    }
}

/// Who decided an alert: this sensor alone, or the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Sensor,
    Fleet,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Sensor => "sensor",
            Scope::Fleet => "fleet",
        }
    }
}

/// `alert`'s JSON line with the sensor's identity (`observer.*`),
/// `slowscan.scope` and, for a fleet alert, `slowscan.sensors` (the sensors
/// that contributed).
pub fn alert_json(
    alert: &Alert,
    observer: &crate::engine::Observer,
    scope: Scope,
    sensors: Option<&[String]>,
) -> String {
    let line = alert.to_json_line_for(observer);
    let mut v: serde_json::Value = serde_json::from_str(&line).expect("alert serialises");
    if let Some(s) = v.get_mut("slowscan").and_then(|s| s.as_object_mut()) {
        s.insert("scope".into(), scope.as_str().into());
        if let Some(sensors) = sensors {
            s.insert("sensors".into(), sensors.into());
        }
    }
    v.to_string()
}

/// Counters and gauges of a [`Fleet`] (also published as metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetStatus {
    pub mode: Option<StoreMode>,
    /// Masters known, and connected.
    pub masters: usize,
    pub connected: usize,
    /// Failures waiting: queued and in flight.
    pub queued: usize,
    /// Failures the store acknowledged.
    pub pushed: u64,
    /// Failures not pushed: their pair was pushed in the same dedup bucket.
    pub deduplicated: u64,
    /// Failures dropped: the queue was full (or the sensor stopped first).
    pub dropped: u64,
    /// Failed pushes and connections (each retried).
    pub store_errors: u64,
    /// Alerts this sensor claimed.
    pub alerts: u64,
    /// Crossings withheld by the cross-detector rule (R8).
    pub withheld: u64,
    /// The store (or a master) is unreachable or the last push failed: the
    /// sensor's own counts are what it has (local alerts, scope "sensor").
    pub degraded: bool,
    /// An error retrying cannot fix (credentials, permissions).
    pub fatal: Option<String>,
}

struct Item {
    f: CountedFailure,
    at: Instant,
}

struct Queue {
    items: VecDeque<Item>,
    /// (identity, destination, port) → dedup bucket it was last queued in.
    seen: HashMap<(Identity, IpAddr, u16), i64>,
    max_bucket: i64,
    /// Per identity (as this sensor counted it): its failures queued or in
    /// flight (none: absent).
    unconfirmed: HashMap<Identity, u32>,
    /// Identities with a failure the store will never count (dropped), and when.
    lost: HashMap<Identity, Instant>,
}

impl Queue {
    /// `n` failures of `source` left the queue and the flight: counted by
    /// the store, or `lost`.
    fn settled(&mut self, source: Identity, n: usize, lost: bool) {
        if let Some(u) = self.unconfirmed.get_mut(&source) {
            *u = u.saturating_sub(n as u32);
            if *u == 0 {
                self.unconfirmed.remove(&source);
            }
        }
        if lost {
            self.lose(source);
        }
    }

    fn lose(&mut self, source: Identity) {
        let now = Instant::now();
        if self.lost.len() >= DEDUP_MAX {
            self.lost
                .retain(|_, t| now.duration_since(*t) < LOST_MEMORY);
        }
        self.lost.insert(source, now);
    }
}

/// What the store did with the failures of one source pushed so far: what
/// a sensor needs to know to write, or not, its own alert of that source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// The store counted every one: the source's crossings are the fleet's
    /// to claim (once fleet-wide, by whichever push crossed).
    Counted,
    /// Some are queued or in flight to a master that answers.
    Pending,
    /// Some will not be counted soon: dropped (queue full, refused), or
    /// waiting for the master of the source's slot, which does not answer.
    Unreachable,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
    alerts: Mutex<Vec<FleetAlert>>,
    inflight: AtomicUsize,
    /// Slots whose latest push failed (their master down, unknown or
    /// refusing), until one succeeds.
    down_slots: Mutex<HashSet<u16>>,
    pushed: AtomicU64,
    deduplicated: AtomicU64,
    dropped: AtomicU64,
    store_errors: AtomicU64,
    alerts_claimed: AtomicU64,
    withheld: AtomicU64,
    degraded: AtomicBool,
    stop: AtomicBool,
    /// Set by shutdown: stop trying to push after this.
    deadline: Mutex<Option<Instant>>,
    info: Mutex<(Option<StoreMode>, usize, usize, Option<String>)>,
}

/// Entries kept for dedup before the older buckets are forgotten.
const DEDUP_MAX: usize = 1 << 20;
/// How often the topology is asked again while nothing is wrong.
const TOPOLOGY_EVERY: Duration = Duration::from_secs(30);
/// How long a source with a dropped failure stays [`Confirmation::Unreachable`].
const LOST_MEMORY: Duration = Duration::from_secs(60);
/// Failures of one source per function call.
const CALL_MAX: usize = 512;

/// The client handle. Dropping it stops the worker (pushing what it can for
/// up to a second); [`Fleet::shutdown`] chooses the time.
pub struct Fleet {
    shared: Arc<Shared>,
    cfg: Arc<FleetConfig>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fleet {
    /// Starts the worker thread and tries the store once. Bad credentials
    /// or permissions are an error; a store that does not answer is not (the
    /// sensor detects on its own counts and the worker keeps retrying).
    pub fn start(cfg: FleetConfig) -> Result<Fleet, FleetError> {
        let cfg = Arc::new(cfg);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                seen: HashMap::new(),
                max_bucket: i64::MIN,
                unconfirmed: HashMap::new(),
                lost: HashMap::new(),
            }),
            wake: tokio::sync::Notify::new(),
            alerts: Mutex::new(Vec::new()),
            inflight: AtomicUsize::new(0),
            down_slots: Mutex::new(HashSet::new()),
            pushed: AtomicU64::new(0),
            deduplicated: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            alerts_claimed: AtomicU64::new(0),
            withheld: AtomicU64::new(0),
            degraded: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            deadline: Mutex::new(None),
            info: Mutex::new((None, 0, 0, None)),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let shared = shared.clone();
            let cfg = cfg.clone();
            std::thread::Builder::new()
                .name("slowscan-fleet".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    rt.block_on(worker(shared, cfg, tx));
                })
                .map_err(|e| FleetError::Store(format!("starting the fleet thread: {e}")))?
        };
        let fleet = Fleet {
            shared,
            cfg: cfg.clone(),
            thread: Some(thread),
        };
        match rx.recv_timeout(cfg.connect_timeout * 4 + Duration::from_secs(2)) {
            Ok(Err(msg)) => Err(FleetError::Store(msg)),
            Ok(Ok(true)) => Ok(fleet),
            Ok(Ok(false)) | Err(_) => {
                tracing::warn!(
                    "fleet store {} does not answer: detecting on this sensor's own counts meanwhile, retrying",
                    cfg.url
                );
                Ok(fleet)
            }
        }
    }

    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Queues one counted failure (never blocks).
    pub fn push(&self, f: CountedFailure) {
        let mut q = self.shared.queue.lock().unwrap();
        self.enqueue(&mut q, f, Instant::now());
        drop(q);
        self.shared.wake.notify_one();
    }

    /// Queues every failure of `fs` (emptied), under one lock.
    pub fn push_all(&self, fs: &mut Vec<CountedFailure>) {
        if fs.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut q = self.shared.queue.lock().unwrap();
        for f in fs.drain(..) {
            self.enqueue(&mut q, f, now);
        }
        drop(q);
        self.shared.wake.notify_one();
    }

    fn enqueue(&self, q: &mut Queue, f: CountedFailure, at: Instant) {
        if self.cfg.dedup_ns > 0 && self.dedup(q, &f) {
            return;
        }
        // The bound covers what is in flight too (the worker takes from the
        // queue under this lock and counts it there).
        // Full: the new failure is dropped (what is held stays in time order
        // and is pushed first when the store is back).
        if q.items.len() + self.shared.inflight.load(Ordering::Relaxed) >= self.cfg.queue_capacity {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            q.lose(f.identity);
            return;
        }
        *q.unconfirmed.entry(f.identity).or_default() += 1;
        q.items.push_back(Item { f, at });
    }

    /// Whether `f` repeats a pair queued in the same dedup bucket.
    fn dedup(&self, q: &mut Queue, f: &CountedFailure) -> bool {
        let bucket = f.at_ns.div_euclid(self.cfg.dedup_ns as i64);
        let key = (f.identity, f.destination, f.port);
        if q.seen.get(&key) == Some(&bucket) {
            self.shared.deduplicated.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if q.seen.len() >= DEDUP_MAX {
            let keep = q.max_bucket;
            q.seen.retain(|_, b| *b >= keep);
            if q.seen.len() >= DEDUP_MAX {
                q.seen.clear();
            }
        }
        q.seen.insert(key, bucket);
        q.max_bucket = q.max_bucket.max(bucket);
        false
    }

    /// Moves the alerts this sensor claimed since the last call into `out`.
    pub fn drain_alerts(&self, out: &mut Vec<FleetAlert>) {
        out.append(&mut self.shared.alerts.lock().unwrap());
    }

    /// True while the store (or one of its masters) is unreachable or the
    /// latest push failed: the sensor should write its own alerts (scope
    /// "sensor") meanwhile.
    pub fn degraded(&self) -> bool {
        self.shared.degraded.load(Ordering::Relaxed)
    }

    /// Whether the store counted every failure this sensor pushed under
    /// `source` (its identity as the engine counted it) so far (judged by
    /// the source's own slot: a master down elsewhere does not matter).
    pub fn confirmation(&self, source: Identity) -> Confirmation {
        let q = self.shared.queue.lock().unwrap();
        if q.lost
            .get(&source)
            .is_some_and(|t| t.elapsed() < LOST_MEMORY)
        {
            return Confirmation::Unreachable;
        }
        if !q.unconfirmed.contains_key(&source) {
            return Confirmation::Counted;
        }
        drop(q);
        let slot = key_slot(self.cfg.source_key(&source).as_bytes());
        let fatal = self.shared.info.lock().unwrap().3.is_some();
        if fatal || self.shared.down_slots.lock().unwrap().contains(&slot) {
            Confirmation::Unreachable
        } else {
            Confirmation::Pending
        }
    }

    pub fn status(&self) -> FleetStatus {
        let s = &self.shared;
        let queued = s.queue.lock().unwrap().items.len() + s.inflight.load(Ordering::Relaxed);
        let info = s.info.lock().unwrap().clone();
        FleetStatus {
            mode: info.0,
            masters: info.1,
            connected: info.2,
            queued,
            pushed: s.pushed.load(Ordering::Relaxed),
            deduplicated: s.deduplicated.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            store_errors: s.store_errors.load(Ordering::Relaxed),
            alerts: s.alerts_claimed.load(Ordering::Relaxed),
            withheld: s.withheld.load(Ordering::Relaxed),
            degraded: s.degraded.load(Ordering::Relaxed),
            fatal: info.3,
        }
    }

    /// Waits until everything queued was pushed (true), or `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.status().queued == 0 {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            self.shared.wake.notify_one();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Pushes what it can within `timeout`, then stops the worker; what is
    /// left is counted as dropped. Returns the final status.
    pub fn shutdown(mut self, timeout: Duration) -> FleetStatus {
        self.stop(timeout);
        self.status()
    }

    fn stop(&mut self, timeout: Duration) {
        *self.shared.deadline.lock().unwrap() = Some(Instant::now() + timeout);
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Duration::from_secs(1));
        }
    }
}

/// One function call: failures of one source, in time order; or the
/// publication of an alias (an address seen on-link under a MAC).
struct Call {
    /// The identity this sensor counted the failures under.
    source: Identity,
    /// What the store counts them under: `source`, or the MAC its address
    /// is an alias of (the store redirected the call).
    counted_as: Identity,
    /// Each failure's address.
    addrs: Vec<IpAddr>,
    /// An alias's SET, not a push.
    alias: bool,
    slot: u16,
    cmd: redis::Cmd,
    /// Enqueue time of each failure (for the lag of the one that crosses).
    at: Vec<Instant>,
    retry: bool,
    attempts: u32,
}

fn pair_bytes(dst: IpAddr, port: u16) -> Vec<u8> {
    let mut v = match dst {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    v.extend_from_slice(&port.to_be_bytes());
    v
}

fn pair_from(b: &[u8]) -> Option<Target> {
    let (addr, port) = b.split_at_checked(b.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match addr.len() {
        4 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?)),
        _ => return None,
    };
    Some(Target { ip, port })
}

/// The detectors as the function takes them: `WINDOW_MS THRESHOLD NAME|…`
/// (tumbling windows negative).
fn detector_args(cfg: &FleetConfig) -> String {
    let v: Vec<String> = cfg
        .detectors
        .iter()
        .map(|d| {
            let w = match d.window {
                Window::Sliding(ns) => (ns / MS) as i64,
                Window::Tumbling(ns) => -((ns / MS) as i64),
                Window::None => unreachable!("FleetConfig::new refuses windows of none"),
            };
            format!("{w} {} {}", d.threshold, d.name())
        })
        .collect();
    v.join("|")
}

/// Argument positions in a push: FCALL NAME 1 KEY SENSOR BATCH RETRY SLACK
/// CAP DETECTORS RESOLVE ADDRS (PAIR T)….
const ARG_KEY: usize = 3;
const ARG_RETRY: usize = 6;
const ARG_RESOLVE: usize = 10;
const ARG_ADDRS: usize = 11;

/// "ADDR T_MS,…": the distinct addresses of a call's failures, each with
/// its latest failure.
fn addrs_arg(items: &[(IpAddr, i64)]) -> String {
    let mut latest: Vec<(IpAddr, i64)> = Vec::new();
    for &(a, t) in items {
        match latest.iter_mut().find(|x| x.0 == a) {
            Some(x) => x.1 = x.1.max(t),
            None => latest.push((a, t)),
        }
    }
    let v: Vec<String> = latest.iter().map(|(a, t)| format!("{a} {t}")).collect();
    v.join(",")
}

fn build_calls(cfg: &FleetConfig, items: Vec<Item>, batch: &str, dets: &str) -> Vec<Call> {
    let mut by_source: HashMap<Identity, Vec<Item>> = HashMap::new();
    for it in items {
        by_source.entry(it.f.identity).or_default().push(it);
    }
    let slack = (cfg.dedup_ns / MS).to_string();
    let cap = EXACT_CAP.to_string();
    let mut calls = Vec::with_capacity(by_source.len());
    for (source, mut v) in by_source {
        v.sort_by_key(|it| it.f.at_ns);
        let key = cfg.source_key(&source);
        let slot = key_slot(key.as_bytes());
        // An address may be an alias of a MAC another sensor saw it on: the
        // store looks that up first. A MAC or a prefix names its addresses.
        let resolve = matches!(source, Identity::Address(_));
        for (i, chunk) in v.chunks(CALL_MAX).enumerate() {
            // Each call its own push id: a retry hands back the claims of
            // that call only.
            let id = match i {
                0 => batch.to_string(),
                i => format!("{batch}/{i}"),
            };
            let addrs: Vec<IpAddr> = chunk.iter().map(|it| it.f.source).collect();
            let addrs_text = if resolve {
                String::new()
            } else {
                let at: Vec<(IpAddr, i64)> = chunk
                    .iter()
                    .map(|it| (it.f.source, it.f.at_ns.div_euclid(MS as i64)))
                    .collect();
                addrs_arg(&at)
            };
            let mut cmd = redis::cmd("FCALL");
            cmd.arg(FUNCTION)
                .arg(1)
                .arg(&key)
                .arg(&cfg.sensor)
                .arg(&id)
                .arg(0)
                .arg(&slack)
                .arg(&cap)
                .arg(dets)
                .arg(u8::from(resolve))
                .arg(&addrs_text);
            for it in chunk {
                cmd.arg(pair_bytes(it.f.destination, it.f.port))
                    .arg(it.f.at_ns.div_euclid(MS as i64));
            }
            calls.push(Call {
                source,
                counted_as: source,
                addrs,
                alias: false,
                slot,
                cmd,
                at: chunk.iter().map(|it| it.at).collect(),
                retry: false,
                attempts: 0,
            });
        }
    }
    calls
}

/// The alias of `addr` (its keys' `i`): the MAC identity it was seen on.
fn alias_call(cfg: &FleetConfig, addr: IpAddr, mac: Identity) -> Call {
    let source = Identity::Address(addr);
    let key = format!("{}i", cfg.source_key(&source));
    let slot = key_slot(key.as_bytes());
    let mut cmd = redis::cmd("SET");
    cmd.arg(&key)
        .arg(mac.to_string())
        .arg("PX")
        .arg(cfg.alias_ttl.as_millis().max(1) as u64);
    Call {
        source,
        counted_as: source,
        addrs: Vec::new(),
        alias: true,
        slot,
        cmd,
        at: Vec::new(),
        retry: false,
        attempts: 0,
    }
}

/// `call`'s command with argument `i` replaced.
fn set_arg(call: &mut Call, i: usize, value: &[u8]) {
    let mut cmd = redis::cmd("FCALL");
    for (k, a) in call.cmd.args_iter().enumerate() {
        if let redis::Arg::Simple(b) = a {
            if k == i {
                cmd.arg(value);
            } else if k > 0 {
                cmd.arg(b);
            }
        }
    }
    call.cmd = cmd;
}

/// The retry flag is argument 6: FCALL NAME 1 KEY SENSOR BATCH RETRY ….
fn mark_retry(call: &mut Call) {
    if !call.retry && !call.alias {
        call.retry = true;
        set_arg(call, ARG_RETRY, b"1");
    }
}

/// The store says the call's address is an alias of `to` (a MAC): the same
/// failures, pushed there (nothing was counted under the address).
fn redirect(cfg: &FleetConfig, call: &mut Call, to: &str) -> bool {
    let Ok(id) = to.parse::<Identity>() else {
        return false;
    };
    if matches!(id, Identity::Address(_)) || id == call.counted_as {
        return false;
    }
    // The call's failure times, from its arguments (PAIR T pairs).
    let args: Vec<Vec<u8>> = call
        .cmd
        .args_iter()
        .filter_map(|a| match a {
            redis::Arg::Simple(b) => Some(b.to_vec()),
            _ => None,
        })
        .collect();
    let times: Vec<i64> = args[ARG_ADDRS + 1..]
        .chunks(2)
        .filter_map(|c| std::str::from_utf8(c.get(1)?).ok()?.parse().ok())
        .collect();
    let at: Vec<(IpAddr, i64)> = call.addrs.iter().copied().zip(times).collect();
    let key = cfg.source_key(&id);
    call.slot = key_slot(key.as_bytes());
    call.counted_as = id;
    set_arg(call, ARG_KEY, key.as_bytes());
    set_arg(call, ARG_RESOLVE, b"0");
    set_arg(call, ARG_ADDRS, addrs_arg(&at).as_bytes());
    true
}

fn parse_reply(
    cfg: &FleetConfig,
    call: &Call,
    v: &Value,
    now: Instant,
    out: &mut Vec<FleetAlert>,
) -> Option<u64> {
    let Value::Array(items) = v else {
        return None;
    };
    let withheld = as_int(items.first()?)? as u64;
    for c in &items[1..] {
        let Value::Array(c) = c else { continue };
        if c.len() < 11 {
            continue;
        }
        let num = |i: usize| as_int(&c[i]).unwrap_or(0);
        let det = num(0) as usize;
        let Some(config) = cfg.detectors.get(det).copied() else {
            continue;
        };
        let j = (num(6).max(0) as usize).min(call.at.len().saturating_sub(1));
        let mut sensors: Vec<String> = match &c[8] {
            Value::Array(s) => s.iter().filter_map(as_text).collect(),
            _ => Vec::new(),
        };
        sensors.sort();
        let mut pairs: Vec<(i64, Target)> = Vec::new();
        if let Value::Array(p) = &c[9] {
            for x in p.chunks(2) {
                if let (Some(b), Some(t)) = (as_bytes(&x[0]), x.get(1).and_then(as_int))
                    && let Some(tg) = pair_from(b)
                {
                    pairs.push((t, tg));
                }
            }
        }
        let hosts: HashSet<IpAddr> = pairs.iter().map(|(_, p)| p.ip).collect();
        let ports: HashSet<u16> = pairs.iter().map(|(_, p)| p.port).collect();
        pairs.sort_by_key(|(t, _)| *t);
        let skip = pairs.len().saturating_sub(cfg.max_targets);
        let source = call
            .addrs
            .get(j)
            .copied()
            .or(call.source.address())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut addresses: Vec<IpAddr> = match c.get(11) {
            Some(Value::Array(a)) => a.iter().filter_map(|x| as_text(x)?.parse().ok()).collect(),
            _ => Vec::new(),
        };
        if addresses.is_empty() {
            addresses.push(source);
        }
        let addresses_total = addresses.len() as u32;
        addresses.truncate(crate::engine::identity::ADDRESSES_KEPT);
        out.push(FleetAlert {
            source,
            identity: call.counted_as,
            addresses,
            addresses_total,
            detector: det,
            config,
            failed_pairs: num(1) as u32,
            estimated: num(3) != 0,
            alert_seq: num(2) as u32,
            last_failure_ns: num(4) * MS as i64,
            // As the engine says it: a sliding window ends at the failure.
            window_start_ns: match config.window {
                Window::Sliding(w) => num(4) * MS as i64 - w as i64,
                _ => num(5) * MS as i64,
            },
            first_failure_ns: num(7) * MS as i64,
            sensors,
            targets: pairs[skip..].iter().map(|(_, p)| *p).collect(),
            distinct_hosts: hosts.len() as u32,
            distinct_ports: ports.len() as u32,
            shape: Shape::classify(hosts.len(), ports.len()),
            lag: now.saturating_duration_since(call.at[j]),
            replayed: num(10) != 0,
        });
    }
    Some(withheld)
}

async fn worker(
    shared: Arc<Shared>,
    cfg: Arc<FleetConfig>,
    started: std::sync::mpsc::Sender<Result<bool, String>>,
) {
    let mut store = Store::new(cfg.url.clone(), cfg.connect_timeout, cfg.response_timeout);
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
            ^ u64::from(std::process::id()) << 40
    );
    let dets = detector_args(&cfg);
    let mut backoff = cfg.backoff_min;
    let mut inflight: Vec<Call> = Vec::new();
    let mut batch_seq = 0u64;
    let mut started = Some(started);
    let mut fatal_logged = false;
    // Aliases published: address → (MAC, when).
    let mut aliases: HashMap<IpAddr, (Identity, Instant)> = HashMap::new();

    let publish = |store: &Store, shared: &Shared, inflight: &[Call]| {
        let n: usize = inflight.iter().map(|c| c.at.len()).sum();
        shared.inflight.store(n, Ordering::Relaxed);
        let mut info = shared.info.lock().unwrap();
        info.0 = store.mode;
        info.1 = store.masters();
        info.2 = store.connected();
        drop(info);
        let queued = shared.queue.lock().unwrap().items.len() + n;
        metrics::gauge!("slowscan_fleet_queue_length").set(queued as f64);
        metrics::gauge!("slowscan_fleet_connected_masters").set(store.connected() as f64);
        metrics::counter!("slowscan_fleet_dropped_total")
            .absolute(shared.dropped.load(Ordering::Relaxed));
        metrics::counter!("slowscan_fleet_deduplicated_total")
            .absolute(shared.deduplicated.load(Ordering::Relaxed));
        metrics::gauge!("slowscan_fleet_degraded").set(
            if shared.degraded.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
    };

    // Per slot: when its calls may be tried again, and the next backoff. A
    // master that is down holds back only the calls of its slots; the
    // others go on (new failures keep being taken while they wait).
    let mut slot_retry: HashMap<u16, (Instant, Duration)> = HashMap::new();
    let mut next_refresh = Instant::now();
    let mut next_topology = Instant::now() + TOPOLOGY_EVERY;
    loop {
        let stopping = shared.stop.load(Ordering::Relaxed);
        if stopping {
            let past = shared
                .deadline
                .lock()
                .unwrap()
                .is_some_and(|d| Instant::now() >= d);
            let empty = inflight.is_empty() && shared.queue.lock().unwrap().items.is_empty();
            if empty || past {
                let mut q = shared.queue.lock().unwrap();
                let left = q.items.len() + inflight.iter().map(|c| c.at.len()).sum::<usize>();
                q.items.clear();
                let sources: Vec<Identity> = q.unconfirmed.drain().map(|(s, _)| s).collect();
                for s in sources {
                    q.lose(s);
                }
                drop(q);
                if left > 0 {
                    shared.dropped.fetch_add(left as u64, Ordering::Relaxed);
                    tracing::warn!("fleet: {left} failures not pushed before the sensor stopped");
                }
                inflight.clear();
                publish(&store, &shared, &inflight);
                break;
            }
        }
        // The topology again now and then, all being well: replicas added
        // (or reconnected) since are then waited for.
        if !store.stale && Instant::now() >= next_topology {
            next_topology = Instant::now() + TOPOLOGY_EVERY;
            if !matches!(store.refresh().await, Ok(true)) {
                store.stale = true;
            }
        }
        if store.stale && Instant::now() >= next_refresh {
            match store.refresh().await {
                Ok(ok) => {
                    if let Some(tx) = started.take() {
                        let _ = tx.send(Ok(ok));
                    }
                    if !ok || store.stale {
                        shared.store_errors.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("slowscan_fleet_store_errors_total").increment(1);
                        shared.degraded.store(true, Ordering::Relaxed);
                        next_refresh = Instant::now() + backoff;
                        backoff = (backoff * 2).min(cfg.backoff_max);
                    } else {
                        backoff = cfg.backoff_min;
                    }
                }
                Err(store::Fatal(msg)) => {
                    if let Some(tx) = started.take() {
                        let _ = tx.send(Err(msg.clone()));
                    }
                    if !fatal_logged {
                        tracing::error!("{msg}");
                        fatal_logged = true;
                    }
                    shared.info.lock().unwrap().3 = Some(msg);
                    shared.degraded.store(true, Ordering::Relaxed);
                    shared.store_errors.fetch_add(1, Ordering::Relaxed);
                    next_refresh = Instant::now() + cfg.backoff_max;
                }
            }
        }
        let now = Instant::now();
        let waiting = |c: &Call| slot_retry.get(&c.slot).is_some_and(|r| r.0 > now);
        // New failures, while what can be sent now is under a batch.
        let ready: usize = inflight
            .iter()
            .filter(|c| !waiting(c))
            .map(|c| c.at.len())
            .sum();
        if ready < cfg.batch_max {
            let items: Vec<Item> = {
                let mut q = shared.queue.lock().unwrap();
                let n = q.items.len().min(cfg.batch_max - ready);
                let held: usize = inflight.iter().map(|c| c.at.len()).sum();
                shared.inflight.store(held + n, Ordering::Relaxed);
                q.items.drain(..n).collect()
            };
            if !items.is_empty() {
                batch_seq += 1;
                let batch = format!("{}#{run_id}:{batch_seq}", cfg.sensor);
                // Addresses this sensor counted under a MAC: published as
                // aliases (before the batch's pushes, in the same round), so
                // the store counts another sensor's routed failures from
                // them under that MAC too.
                let now = Instant::now();
                for it in &items {
                    let Identity::Mac(_) = it.f.identity else {
                        continue;
                    };
                    if !aliasable(it.f.source) {
                        continue;
                    }
                    let fresh = aliases.get(&it.f.source).is_some_and(|(m, t)| {
                        *m == it.f.identity && now.duration_since(*t) < cfg.alias_ttl / 8
                    });
                    if !fresh {
                        if aliases.len() >= DEDUP_MAX {
                            aliases.clear();
                        }
                        aliases.insert(it.f.source, (it.f.identity, now));
                        inflight.push(alias_call(&cfg, it.f.source, it.f.identity));
                    }
                }
                inflight.extend(build_calls(&cfg, items, &batch, &dets));
            }
        }
        let due: Vec<usize> = (0..inflight.len())
            .filter(|&i| !waiting(&inflight[i]))
            .collect();
        if due.is_empty() {
            let healthy = inflight.is_empty() && !store.stale;
            shared.degraded.store(!healthy, Ordering::Relaxed);
            publish(&store, &shared, &inflight);
            if stopping && inflight.is_empty() {
                continue;
            }
            // Until new failures come, the next retry, or the next refresh.
            let mut until = now + Duration::from_millis(250);
            if let Some(r) = slot_retry.values().map(|r| r.0).filter(|&t| t > now).min() {
                until = until.min(r);
            }
            if store.stale {
                until = until.min(next_refresh.max(now + Duration::from_millis(1)));
            }
            if stopping {
                until = until.min(now + Duration::from_millis(20));
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep_until(until.into()) => {}
            }
            continue;
        }
        let (ok, failed) = push_round(&cfg, &shared, &mut store, &mut inflight, &due).await;
        let now = Instant::now();
        for slot in ok {
            slot_retry.remove(&slot);
        }
        for slot in &failed {
            let e = slot_retry.entry(*slot).or_insert((now, cfg.backoff_min));
            e.0 = now + e.1;
            e.1 = (e.1 * 2).min(cfg.backoff_max);
        }
        if !failed.is_empty() {
            shared.degraded.store(true, Ordering::Relaxed);
            if next_refresh < now {
                next_refresh = now + cfg.backoff_min;
            }
        }
        *shared.down_slots.lock().unwrap() = slot_retry.keys().copied().collect();
        publish(&store, &shared, &inflight);
    }
}

/// One round: the calls `due` (indices in `inflight`, in order), one
/// pipeline per master, all masters at once. Calls that succeeded leave
/// `inflight`; the others stay, marked for retry. Returns the slots that
/// succeeded and those that failed (a master down, unknown or refusing).
async fn push_round(
    cfg: &FleetConfig,
    shared: &Shared,
    store: &mut Store,
    inflight: &mut Vec<Call>,
    due: &[usize],
) -> (HashSet<u16>, HashSet<u16>) {
    let mut by_node: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut failed: HashSet<u16> = HashSet::new();
    let mut ok: HashSet<u16> = HashSet::new();
    for &i in due {
        let c = &inflight[i];
        match store.node_of(c.slot) {
            Some(n) => by_node.entry(n).or_default().push(i),
            None => {
                failed.insert(c.slot);
            }
        }
    }
    if !failed.is_empty() {
        store.stale = true;
    }
    // One pipeline per master, all at once. On a master with replicas the
    // pipeline is followed by WAIT 1 on the same connection: a push counts as
    // done once a replica has it, so a failover loses no acknowledged
    // failure and no claimed crossing (what WAIT does not confirm is pushed
    // again; the function makes a repeated push change nothing and hands
    // back the claims it made the first time).
    let mut set = tokio::task::JoinSet::new();
    for (node, idx) in by_node {
        let mut pipe = Pipeline::with_capacity(idx.len());
        pipe.ignore_errors();
        for &i in &idx {
            pipe.add_command(inflight[i].cmd.clone());
        }
        let conn = store.conn(node);
        let replicas = store.replicas(node);
        let wait = cfg.replica_wait;
        set.spawn(async move {
            let Some(mut c) = conn else {
                let e = redis::RedisError::from(std::io::Error::other("not connected"));
                return (node, idx, Err(e), Ok(true));
            };
            let r = c.send_packed_commands(&pipe, 0, idx.len()).await;
            let acked = if r.is_ok() && replicas > 0 {
                redis::cmd("WAIT")
                    .arg(1)
                    .arg(wait.as_millis() as u64)
                    .query_async::<i64>(&mut c)
                    .await
                    .map(|n| n >= 1)
                    .map_err(|e| one_line(&e.to_string()))
            } else {
                Ok(true)
            };
            (node, idx, r, acked)
        });
    }
    let mut done = vec![false; inflight.len()];
    let mut errors = 0u64;
    while let Some(r) = set.join_next().await {
        let Ok((node, idx, r, acked)) = r else {
            continue;
        };
        let replies = store.replies(node, r, idx.len());
        let acked = match acked {
            Ok(a) => {
                if !a {
                    tracing::debug!(
                        "fleet: no replica of {} acknowledged a push within {:?}",
                        store.addr(node),
                        cfg.replica_wait
                    );
                }
                Some(a)
            }
            Err(e) => {
                tracing::debug!("fleet: WAIT on {} failed: {e}", store.addr(node));
                store.mark_down(node);
                errors += 1;
                None
            }
        };
        for (i, rep) in idx.into_iter().zip(replies) {
            let call = &mut inflight[i];
            call.attempts += 1;
            // The address is an alias of a MAC: nothing was counted, the
            // same failures go there (next round, at once).
            if let Reply::Ok(v) = &rep
                && let Some(to) = alias_of(v)
            {
                let was = call.slot;
                if redirect(cfg, call, &to) {
                    call.attempts = 0;
                    ok.insert(was);
                    continue;
                }
            }
            match rep {
                Reply::Ok(_) if call.alias && acked.is_some() => {
                    ok.insert(call.slot);
                    done[i] = true;
                }
                Reply::Ok(_) if acked.is_none() => {
                    failed.insert(call.slot);
                    mark_retry(call);
                }
                // Applied on the master, not yet on a replica (a busy
                // replica): pushed again (a repeat changes nothing), so a
                // failover meanwhile loses nothing; after UNACKED_TRIES the
                // push counts as done (a replica that never answers must
                // not stop the fleet).
                Reply::Ok(_) if acked == Some(false) && call.attempts < UNACKED_TRIES => {
                    mark_retry(call);
                }
                Reply::Ok(v) => {
                    finish(cfg, shared, call, &v);
                    ok.insert(call.slot);
                    done[i] = true;
                }
                Reply::Server(e) => {
                    failed.insert(call.slot);
                    errors += 1;
                    let l = e.to_lowercase();
                    if l.contains("function not found") {
                        store.reload(node).await;
                    } else {
                        store.stale = true;
                    }
                    if call.attempts >= 20
                        && ![
                            "moved",
                            "ask",
                            "clusterdown",
                            "tryagain",
                            "loading",
                            "readonly",
                        ]
                        .iter()
                        .any(|w| l.contains(w))
                    {
                        if call.alias {
                            tracing::warn!(
                                "fleet: the store keeps refusing the alias of {} ({})",
                                call.source,
                                one_line(&e)
                            );
                            done[i] = true;
                            continue;
                        }
                        tracing::warn!(
                            "fleet: the store keeps refusing a push of {} ({}): dropping its {} failures",
                            call.source,
                            one_line(&e),
                            call.at.len()
                        );
                        shared
                            .dropped
                            .fetch_add(call.at.len() as u64, Ordering::Relaxed);
                        shared
                            .queue
                            .lock()
                            .unwrap()
                            .settled(call.source, call.at.len(), true);
                        done[i] = true;
                    } else {
                        mark_retry(call);
                    }
                }
                Reply::Down(e) => {
                    failed.insert(call.slot);
                    errors += 1;
                    tracing::debug!("fleet: push to {} failed: {e}", store.addr(node));
                    mark_retry(call);
                }
            }
        }
    }
    if errors > 0 {
        shared.store_errors.fetch_add(errors, Ordering::Relaxed);
        metrics::counter!("slowscan_fleet_store_errors_total").increment(errors);
    }
    let mut k = 0;
    inflight.retain(|_| {
        k += 1;
        !done[k - 1]
    });
    ok.retain(|s| !failed.contains(s));
    (ok, failed)
}

/// `{-1, IDENTITY}`: the pushed address is an alias of IDENTITY.
fn alias_of(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return None;
    };
    (items.len() == 2 && as_int(&items[0]) == Some(-1))
        .then(|| as_text(&items[1]))
        .flatten()
}

/// Link-local addresses are one link's: never aliased fleet-wide.
fn aliasable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_link_local() && !a.is_unspecified(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) != 0xfe80 && !a.is_unspecified(),
    }
}

fn finish(cfg: &FleetConfig, shared: &Shared, call: &Call, v: &Value) {
    let mut alerts = Vec::new();
    let withheld = parse_reply(cfg, call, v, Instant::now(), &mut alerts).unwrap_or(0);
    let n = call.at.len() as u64;
    shared.pushed.fetch_add(n, Ordering::Relaxed);
    metrics::counter!("slowscan_fleet_pushed_total").increment(n);
    if withheld > 0 {
        shared.withheld.fetch_add(withheld, Ordering::Relaxed);
        metrics::counter!("slowscan_fleet_alerts_withheld_total").increment(withheld);
    }
    if !alerts.is_empty() {
        for a in &alerts {
            metrics::histogram!("slowscan_fleet_push_to_alert_seconds").record(a.lag.as_secs_f64());
        }
        shared
            .alerts_claimed
            .fetch_add(alerts.len() as u64, Ordering::Relaxed);
        metrics::counter!("slowscan_fleet_alerts_total").increment(alerts.len() as u64);
        shared.alerts.lock().unwrap().append(&mut alerts);
    }
    shared
        .queue
        .lock()
        .unwrap()
        .settled(call.source, call.at.len(), false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        for (ip, port) in [
            ("198.51.100.7".parse().unwrap(), 443u16),
            ("2001:db8::1".parse().unwrap(), 22),
        ] {
            let b = pair_bytes(ip, port);
            assert_eq!(pair_from(&b), Some(Target { ip, port }));
        }
        assert_eq!(pair_from(&[1, 2, 3]), None);
    }

    #[test]
    fn config_refuses_unbounded_windows_and_bad_names() {
        let url = FleetUrl::parse("redis://127.0.0.1:7000").unwrap();
        let none = [DetectorConfig {
            window: Window::None,
            threshold: 9,
        }];
        let e = FleetConfig::new(url.clone(), "s1", &none).unwrap_err();
        assert!(e.to_string().contains("has no window"), "{e}");
        let e = FleetConfig::new(url.clone(), "bad name", &DetectorConfig::default_ladder())
            .unwrap_err();
        assert!(e.to_string().contains("--sensor-name"), "{e}");
        let c = FleetConfig::new(url, "s1", &DetectorConfig::default_ladder()).unwrap();
        assert_eq!(c.dedup_ns, 3_600_000 * MS / 64);
    }

    #[test]
    fn keys_are_identities_and_sites_scope_home_addresses() {
        let url = FleetUrl::parse("redis://127.0.0.1:7000").unwrap();
        let c = FleetConfig::new(url, "s1", &DetectorConfig::default_ladder()).unwrap();
        let mac: Identity = "02:10:00:00:00:05".parse().unwrap();
        let pfx: Identity = "2001:db8:bad:1::/64".parse().unwrap();
        let home = Identity::Address("10.0.0.5".parse().unwrap());
        let out = Identity::Address("198.51.100.7".parse().unwrap());
        assert_eq!(c.source_key(&mac), "ss:{02-10-00-00-00-05}:");
        assert_eq!(c.source_key(&pfx), "ss:{2001:db8:bad:1::/64}:");
        assert_eq!(c.source_key(&home), "ss:{10.0.0.5}:");
        let c = c.with_site(Some("site-1")).unwrap();
        assert_eq!(c.source_key(&home), "ss:{site-1/10.0.0.5}:");
        assert_eq!(c.source_key(&out), "ss:{198.51.100.7}:");
        assert_eq!(c.source_key(&mac), "ss:{02-10-00-00-00-05}:");
        assert!(c.clone().with_site(Some("a b")).is_err());
        assert_eq!(c.alias_ttl, Duration::from_secs(86_400));
        assert!(!aliasable("fe80::1".parse().unwrap()));
        assert!(aliasable("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn redirect_moves_a_call_to_the_mac_with_its_addresses() {
        let cfg = FleetConfig::new(
            FleetUrl::parse("redis://127.0.0.1:7000").unwrap(),
            "s1",
            &DetectorConfig::default_ladder(),
        )
        .unwrap();
        let src: IpAddr = "2001:db8:10:1::a2".parse().unwrap();
        let f = CountedFailure {
            source: src,
            identity: Identity::Address(src),
            destination: "2001:db8:20::1".parse().unwrap(),
            port: 22,
            at_ns: 1_700_000_000_123_456_789,
        };
        let mut calls = build_calls(
            &cfg,
            vec![Item {
                f,
                at: Instant::now(),
            }],
            "s1#1:1",
            &detector_args(&cfg),
        );
        let args = |c: &Call| -> Vec<Vec<u8>> {
            c.cmd
                .args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => b.to_vec(),
                    _ => vec![],
                })
                .collect()
        };
        assert_eq!(args(&calls[0])[ARG_RESOLVE], b"1");
        assert_eq!(args(&calls[0])[ARG_ADDRS], b"");
        assert!(redirect(&cfg, &mut calls[0], "02-10-00-00-00-05"));
        let a = args(&calls[0]);
        assert_eq!(a[ARG_KEY], b"ss:{02-10-00-00-00-05}:");
        assert_eq!(a[ARG_RESOLVE], b"0");
        assert_eq!(a[ARG_ADDRS], b"2001:db8:10:1::a2 1700000000123");
        assert_eq!(calls[0].slot, key_slot(b"ss:{02-10-00-00-00-05}:"));
        assert_eq!(calls[0].source, Identity::Address(src));
        // Never to another address, nor twice.
        assert!(!redirect(&cfg, &mut calls[0], "02-10-00-00-00-05"));
        assert!(!redirect(&cfg, &mut calls[0], "198.51.100.1"));
    }

    #[test]
    fn retry_flag_rewrites_only_its_argument() {
        let cfg = FleetConfig::new(
            FleetUrl::parse("redis://127.0.0.1:7000").unwrap(),
            "s1",
            &DetectorConfig::default_ladder(),
        )
        .unwrap();
        let f = CountedFailure {
            source: "198.51.100.9".parse().unwrap(),
            identity: crate::engine::Identity::Address("198.51.100.9".parse().unwrap()),
            destination: "198.51.100.10".parse().unwrap(),
            port: 22,
            at_ns: 1_700_000_000_123_456_789,
        };
        let mut calls = build_calls(
            &cfg,
            vec![Item {
                f,
                at: Instant::now(),
            }],
            "s1#1:1",
            &detector_args(&cfg),
        );
        let before = calls[0].cmd.get_packed_command();
        mark_retry(&mut calls[0]);
        let after = calls[0].cmd.get_packed_command();
        assert_eq!(before.len(), after.len());
        let args: Vec<Vec<u8>> = calls[0]
            .cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => vec![],
            })
            .collect();
        assert_eq!(args[0], b"FCALL");
        assert_eq!(args[3], b"ss:{198.51.100.9}:");
        assert_eq!(args[5], b"s1#1:1");
        assert_eq!(args[6], b"1");
        assert_eq!(args.last().unwrap(), b"1700000000123");
    }
}
