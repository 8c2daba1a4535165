//! The live sensor (`slowscan run`): the XDP data plane on an interface feeds
//! the detection engine; alerts go to their own sink, logs to stderr.
//!
//! Loop (one tokio thread): records from the ring buffer go to the engine as
//! they arrive; every 250 ms the engine clock advances to CLOCK_MONOTONIC (the
//! clock of the kernel's `bpf_ktime_get_ns`), so attempts whose handshake
//! timeout passed are decided Failed (R5.1) even when no traffic comes; every
//! few seconds the kernel pre-filter table is swept and metrics published.
//! SIGINT/SIGTERM (or `--for`) detach the program, remove the pins and print
//! a final summary.
//!
//! Learning (R4.1): with `learn_for`, a first engine learns destinations with
//! Established connections on eligible ports (R4.2, R4.3); at the end they go
//! into the kernel whitelist map (R4.4) and detection starts with a fresh
//! engine.
//!
//! State (`state`): the detection engine starts from the checkpoint on disk,
//! if any (read before attaching: a bad file stops the start), and is
//! checkpointed every `checkpoint_every` (serialised and written off the
//! loop's thread) and at SIGINT/SIGTERM/`--for` (see [`checkpoint`]). The
//! engine runs on CLOCK_MONOTONIC + [`ENGINE_CLOCK_BIAS_NS`], so failure
//! times from before a reboot, restored from a checkpoint, stay representable.

pub mod checkpoint;
pub mod metrics;
pub mod runtime;
pub mod sink;

use std::{
    fmt,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::engine::{EngineState, Restored, rfc3339};

use anyhow::{Context, bail};
use slowscan_common::{Counter, PacketRecord};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::{
    engine::{Alert, Engine, EngineConfig, EngineStats, LearnConfig, Report, SECOND_NS, Whitelist},
    kernel::{AttachMode, Counters, DataPlane, ProgramOptions, remove_pins},
    whitelist::ip_of,
};

pub use sink::AlertSink;

/// Everything `slowscan run` needs.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub iface: String,
    pub attach: AttachMode,
    /// Dedicated mirror/SPAN port: the program drops every frame after
    /// inspection.
    pub mirror: bool,
    /// Detectors, handshake timeout, caps. `whitelist` is the file's (also
    /// loaded into the kernel map); `wall_clock_offset_ns` is set at start.
    pub engine: EngineConfig,
    /// `-` for stdout, else a file appended to.
    pub alerts: PathBuf,
    /// Prometheus endpoint, None = off.
    pub metrics: Option<SocketAddr>,
    /// Learn a whitelist for this long first (R4.1), then detect.
    pub learn_for: Option<Duration>,
    pub learn: LearnConfig,
    /// Where to save the learned whitelist, if anywhere.
    pub learn_out: Option<PathBuf>,
    /// The `--whitelist` file, kept in step by `slowscan whitelist …` so that a
    /// restart keeps live changes (recorded in the sensor's runtime file).
    pub whitelist_file: Option<PathBuf>,
    /// Stop once learning is done (`slowscan learn --iface`) instead of detecting.
    pub learn_only: bool,
    /// Log a one-line summary this often.
    pub summary_every: Option<Duration>,
    /// Stop by itself after this long.
    pub run_for: Option<Duration>,
    /// How often the kernel pre-filter table is swept and metrics published.
    pub sweep_every: Duration,
    /// Engine state file: loaded at start if present, checkpointed.
    pub state: Option<PathBuf>,
    /// Ignore the state file at start (it is overwritten by the next checkpoint).
    pub state_reset: bool,
    /// How often the engine state is checkpointed.
    pub checkpoint_every: Duration,
    /// R4.6: sources never counted, loaded into the kernel ignore maps at
    /// start (right after the whitelist).
    pub ignore: Option<crate::ignore::IgnoreList>,
    /// The file `ignore` came from, if any: kept in step by `slowscan
    /// ignore …` (recorded in the sensor's runtime file).
    pub ignore_file: Option<PathBuf>,
}

/// What the daemon knows at one moment: for metrics, periodic and final
/// summaries.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub kernel: Counters,
    /// Ring items of the wrong size (build mismatch).
    pub bad_items: u64,
    /// Engine statistics over the whole run (learning and detection phases
    /// added up; gauges are the current engine's).
    pub engine: EngineStats,
    pub alerts_sent: u64,
    pub memory_bytes: usize,
    pub learning: bool,
    pub kernel_pending: Option<usize>,
    /// Pending attempts the kernel's LRU table forgot (see `kernel::PendingStats`).
    pub kernel_forgotten: u64,
    pub whitelist_entries: usize,
}

impl Snapshot {
    pub fn records_lost(&self) -> u64 {
        self.kernel.get(Counter::RingFull) + self.bad_items
    }
}

impl fmt::Display for Snapshot {
    /// One line: `attempts=… established=… failed=… …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.engine;
        write!(
            f,
            "records={} attempts={} established={} failed={} untracked={} retransmissions={} pending={} sources={} \
             alerts={} records_lost={} frames={}",
            e.records,
            e.attempts,
            e.established,
            e.failed,
            e.untracked,
            e.retransmissions,
            e.pending,
            e.sources,
            self.alerts_sent,
            self.records_lost(),
            self.kernel.get(Counter::Frames),
        )
    }
}

/// The final summary printed on stderr at exit.
pub struct Summary {
    pub iface: String,
    pub ran_for: Duration,
    pub stop_reason: &'static str,
    pub snapshot: Snapshot,
    pub report: Report,
    pub learned: Option<usize>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.snapshot;
        let e = &s.engine;
        writeln!(
            f,
            "slowscan summary: {} on {} for {:.1} s ({})",
            if s.alerts_sent == 1 {
                "1 alert".to_string()
            } else {
                format!("{} alerts", s.alerts_sent)
            },
            self.iface,
            self.ran_for.as_secs_f64(),
            self.stop_reason
        )?;
        writeln!(
            f,
            "  engine: records={} attempts={} established={} failed={} untracked={} retransmissions={} \
             whitelisted_records={} evicted_pending={} evicted_sources={} pending={} sources={}",
            e.records,
            e.attempts,
            e.established,
            e.failed,
            e.untracked,
            e.retransmissions,
            e.whitelisted_records,
            e.evicted_pending,
            e.evicted_sources,
            e.pending,
            e.sources
        )?;
        writeln!(
            f,
            "  kernel: {} pending_forgotten={} records_lost={}",
            s.kernel,
            s.kernel_forgotten,
            s.records_lost()
        )?;
        if let Some(n) = self.learned {
            writeln!(f, "  learned whitelist: {n} destinations")?;
        }
        if !self.report.sources.is_empty() {
            writeln!(f, "  per source (detection phase):")?;
            for (ip, t) in &self.report.sources {
                writeln!(
                    f,
                    "    {ip}: attempts={} established={} failed={} failed_pairs={}",
                    t.attempts, t.established, t.failed, t.failed_pairs
                )?;
            }
        }
        Ok(())
    }
}

/// The interfaces that exist here (`/sys/class/net`), sorted.
pub fn interfaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Fails with the list of existing interfaces when `iface` is not one.
pub fn check_interface(iface: &str) -> anyhow::Result<()> {
    let all = interfaces();
    if !all.iter().any(|i| i == iface) {
        bail!(
            "interface {iface} does not exist (ip link lists: {})",
            all.join(", ")
        );
    }
    Ok(())
}

/// Fails unless the process may load and attach an XDP program.
pub fn check_privileges() -> anyhow::Result<()> {
    use caps::{CapSet, Capability};
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    let bpf = has(Capability::CAP_BPF) || has(Capability::CAP_SYS_ADMIN);
    if !(bpf && has(Capability::CAP_NET_ADMIN)) {
        bail!(
            "slowscan run must run as root: loading and attaching an XDP program needs CAP_BPF (or CAP_SYS_ADMIN) \
             and CAP_NET_ADMIN (try sudo)"
        );
    }
    Ok(())
}

/// Reduces the effective and permitted capability sets to CAP_BPF (map
/// operations, the learned whitelist) and CAP_NET_ADMIN (detaching); without
/// CAP_BPF in the kernel's list, CAP_SYS_ADMIN stands in for it. Returns the
/// names kept.
pub fn drop_capabilities() -> Result<String, caps::errors::CapsError> {
    use caps::{CapSet, Capability, CapsHashSet};
    let all = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let bpf = if all.contains(&Capability::CAP_BPF) {
        Capability::CAP_BPF
    } else {
        Capability::CAP_SYS_ADMIN
    };
    let keep: CapsHashSet = [bpf, Capability::CAP_NET_ADMIN].into_iter().collect();
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    caps::clear(None, CapSet::Inheritable)?;
    let _ = caps::clear(None, CapSet::Ambient);
    Ok(format!("{bpf} and CAP_NET_ADMIN"))
}

/// CLOCK_MONOTONIC in ns: the clock of kernel record timestamps.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// realtime − monotonic now: added to kernel record times gives wall clock.
pub fn wall_clock_offset_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// Added to CLOCK_MONOTONIC (kernel record times) to make the engine's time:
/// 2^62 ns (146 years), so that times before this boot, restored from a
/// checkpoint, are still positive.
pub const ENGINE_CLOCK_BIAS_NS: u64 = 1 << 62;

/// The engine clock now: CLOCK_MONOTONIC + [`ENGINE_CLOCK_BIAS_NS`].
pub fn engine_now_ns() -> u64 {
    monotonic_ns() + ENGINE_CLOCK_BIAS_NS
}

/// Feeds (and empties) `recs` to the engine, in its time base.
fn feed(engine: &mut Engine, recs: &mut Vec<PacketRecord>, alerts: &mut Vec<Alert>) {
    for r in recs.iter_mut() {
        r.ts_ns = r.ts_ns.wrapping_add(ENGINE_CLOCK_BIAS_NS);
    }
    engine.process_batch(recs, alerts);
    recs.clear();
}

/// The detection engine: restored from `saved` if there is one.
fn detection_engine(
    cfg: EngineConfig,
    saved: &mut Option<EngineState>,
    path: Option<&PathBuf>,
) -> Engine {
    // Live, the kernel map is the whitelist (R4.4): a copy in the engine would
    // keep ignoring a destination after `slowscan whitelist remove`.
    let cfg = EngineConfig {
        whitelist: None,
        // Likewise the kernel's ignore maps (R4.6): `slowscan ignore remove`
        // must take effect.
        ignore: None,
        ..cfg
    };
    let Some(state) = saved.take() else {
        return Engine::new(cfg);
    };
    let (engine, r) = Engine::restore(cfg, state, engine_now_ns());
    log_restored(&r, path);
    engine
}

fn log_restored(r: &Restored, path: Option<&PathBuf>) {
    let now = clock_ns(libc::CLOCK_REALTIME);
    info!(
        "engine state restored from {} (format {}{}, saved {}, {:.0} s ago): {} sources, {} pending attempts, \
         {} live services; dropped {} attempts whose handshake deadline passed while stopped and {} sources \
         out of every window",
        path.map_or_else(|| "?".into(), |p| p.display().to_string()),
        r.format,
        if r.format != crate::engine::STATE_FORMAT {
            ", migrated"
        } else {
            ""
        },
        rfc3339::format(r.saved_at_ns),
        (now - r.saved_at_ns) as f64 / 1e9,
        r.sources,
        r.pending,
        r.services,
        r.pending_dropped,
        r.sources_dropped,
    );
    for d in &r.new_detectors {
        warn!(
            "detector {} ({}) is not in the saved state: it starts armed, counting the saved failed pairs",
            d.name(),
            d.window.mode()
        );
    }
}

/// Checkpoints written off the loop's thread, one at a time.
struct Checkpointer {
    path: PathBuf,
    every: Duration,
    last: Instant,
    writing: Option<tokio::task::JoinHandle<anyhow::Result<usize>>>,
}

impl Checkpointer {
    /// Due, and the previous write has finished.
    fn due(&mut self) -> bool {
        if self.writing.as_ref().is_some_and(|h| !h.is_finished()) {
            return false;
        }
        self.last.elapsed() >= self.every
    }

    async fn collect(&mut self) {
        if let Some(h) = self.writing.take() {
            match h.await {
                Ok(Ok(n)) => tracing::debug!(
                    "engine state checkpointed to {} ({n} bytes)",
                    self.path.display()
                ),
                Ok(Err(e)) => warn!("checkpointing the engine state: {e:#}"),
                Err(e) => warn!("checkpointing the engine state: {e}"),
            }
        }
    }

    async fn start(&mut self, state: EngineState) {
        self.collect().await;
        self.last = Instant::now();
        let path = self.path.clone();
        self.writing = Some(tokio::task::spawn_blocking(move || {
            checkpoint::save(&path, &state)
        }));
    }

    /// The final checkpoint, written now.
    async fn finish(&mut self, state: &EngineState) -> anyhow::Result<usize> {
        self.collect().await;
        checkpoint::save(&self.path, state)
    }
}

/// Checks, loads, attaches and runs until a signal or `run_for`; returns the
/// final summary. The program is detached and its pins removed on every exit
/// path after attaching.
pub fn run(cfg: DaemonConfig) -> anyhow::Result<Summary> {
    check_interface(&cfg.iface)?;
    check_privileges()?;
    // Before attaching: a bad state file stops the start.
    let saved = match &cfg.state {
        Some(p) => checkpoint::load(p, cfg.state_reset)?,
        None => None,
    };
    if let Some(p) = &cfg.state {
        match (&saved, cfg.state_reset) {
            (_, true) => info!(
                "--state-reset: starting afresh; {} will be overwritten",
                p.display()
            ),
            (None, false) => info!("no engine state at {} yet: starting afresh", p.display()),
            (Some(_), false) => {}
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run_async(cfg, saved))
}

/// Removes the pins and the runtime file (and detaches, through
/// `DataPlane`'s drop) however the daemon exits.
struct PinGuard(String);

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Err(e) = remove_pins(&self.0) {
            warn!("{e:#}");
        }
        runtime::remove(&self.0);
    }
}

enum Phase {
    Learning { until: Instant },
    Detecting,
}

async fn run_async(
    mut cfg: DaemonConfig,
    mut saved: Option<EngineState>,
) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let mut sink = AlertSink::open(&cfg.alerts)?;
    if let Some(addr) = cfg.metrics {
        metrics::install(addr)?;
        info!("metrics on http://{addr}/metrics");
    }

    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: true,
        mirror: cfg.mirror,
    })?;
    dp.attach(&cfg.iface, cfg.attach)?;
    let _pins = PinGuard(cfg.iface.clone());
    match dp.pin(&cfg.iface) {
        Ok(dir) => info!(
            "maps pinned in {} (for `slowscan whitelist … --iface {}`)",
            dir.display(),
            cfg.iface
        ),
        Err(e) => warn!("maps not pinned, `slowscan whitelist` cannot reach this sensor: {e:#}"),
    }
    if let Some(wl) = &cfg.engine.whitelist {
        load_into_kernel(&mut dp, wl)?;
        info!("{} whitelist entries loaded into the kernel map", wl.len());
    }
    if let Some(list) = &cfg.ignore {
        load_ignore_into_kernel(&mut dp, list)?;
    }
    if let Err(e) = runtime::write(
        &cfg.iface,
        cfg.whitelist_file.as_deref(),
        cfg.ignore_file.as_deref(),
    ) {
        warn!("`slowscan whitelist`/`ignore` will not keep the sensor's files in step: {e:#}");
    }
    // Attached, pinned, whitelist loaded: keep only what running and
    // detaching still need.
    match drop_capabilities() {
        Ok(kept) => info!("capabilities dropped; kept {kept}"),
        Err(e) => warn!("could not drop capabilities: {e}"),
    }
    let mut reader = dp
        .take_records()?
        .into_async()
        .context("registering the ring buffer with tokio")?;

    cfg.engine.wall_clock_offset_ns = wall_clock_offset_ns() - ENGINE_CLOCK_BIAS_NS as i64;
    let timeout_ns = cfg.engine.handshake_timeout_ns;
    let (mut engine, mut phase) = match cfg.learn_for {
        Some(d) => {
            info!(
                "learning the whitelist for {} s (R4.1), then detecting",
                d.as_secs()
            );
            let learn_cfg = EngineConfig {
                detectors: Vec::new(),
                learn: Some(cfg.learn.clone()),
                report: false,
                ..cfg.engine.clone()
            };
            (
                Engine::new(learn_cfg),
                Phase::Learning {
                    until: Instant::now() + d,
                },
            )
        }
        None => (
            detection_engine(cfg.engine.clone(), &mut saved, cfg.state.as_ref()),
            Phase::Detecting,
        ),
    };
    let mut checkpointer = cfg.state.clone().map(|path| Checkpointer {
        path,
        every: cfg.checkpoint_every,
        last: Instant::now(),
        writing: None,
    });
    if let (Some(c), Phase::Detecting) = (&mut checkpointer, &phase) {
        // At once: the file is known writable (and holds the restored state).
        let n = c.finish(&engine.checkpoint()).await?;
        info!(
            "engine state checkpointed to {} every {} s and at exit ({n} bytes)",
            c.path.display(),
            c.every.as_secs_f64()
        );
    }
    let detectors: Vec<String> = cfg.engine.detectors.iter().map(|d| d.name()).collect();
    let mode = cfg
        .engine
        .detectors
        .first()
        .map_or("sliding", |d| d.window.mode());
    info!(
        "detecting on {}: detectors {} ({mode}; service map {}); handshake timeout {} s; alerts to {}",
        cfg.iface,
        detectors.join(", "),
        match &cfg.engine.services {
            Some(s) => crate::engine::duration_label(s.memory_ns),
            None => "off".into(),
        },
        timeout_ns / SECOND_NS,
        sink.describe()
    );

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let stop_at = cfg.run_for.map(|d| tokio::time::Instant::now() + d);
    let stop_sleep = async move {
        match stop_at {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_sleep);
    // Attempts fail on time alone (R5.1): a quarter-second tick bounds how late
    // an alert comes beyond the handshake timeout on a quiet link.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let mut recs: Vec<PacketRecord> = Vec::with_capacity(4096);
    let mut alerts: Vec<Alert> = Vec::new();
    let mut alerts_sent = 0u64;
    let mut base = EngineStats::default();
    let mut learned: Option<usize> = None;
    let mut last_sweep = Instant::now();
    let mut last_summary = Instant::now();
    let mut kernel_pending = None;
    let mut whitelist_entries = cfg.engine.whitelist.as_ref().map_or(0, Whitelist::len);

    let stop_reason = loop {
        tokio::select! {
            r = reader.read(&mut recs) => {
                r.context("reading the record ring buffer")?;
                feed(&mut engine, &mut recs, &mut alerts);
            }
            _ = tick.tick() => {
                // Records already in the ring first, so a follow-up that came
                // before `now` is never judged after its attempt's deadline.
                reader.get_mut().drain(&mut recs);
                feed(&mut engine, &mut recs, &mut alerts);
                engine.advance_to(engine_now_ns(), &mut alerts);
                if let Phase::Learning { until } = phase
                    && Instant::now() >= until
                {
                    let wl = engine.learned().unwrap_or_default();
                    load_into_kernel(&mut dp, &wl)?;
                    info!("learning done: {} destinations whitelisted in the kernel map (R4.4)", wl.len());
                    if let Some(p) = &cfg.learn_out {
                        wl.save(p)?;
                        info!("learned whitelist saved to {}", p.display());
                    }
                    learned = Some(wl.len());
                    whitelist_entries += wl.len();
                    if cfg.learn_only {
                        break "learning done";
                    }
                    base = add_stats(base, engine.stats());
                    let mut merged = cfg.engine.whitelist.clone().unwrap_or_default();
                    for (k, e) in wl.iter() {
                        merged.insert(*k, *e);
                    }
                    engine = detection_engine(
                        EngineConfig { whitelist: Some(merged), ..cfg.engine.clone() },
                        &mut saved,
                        cfg.state.as_ref(),
                    );
                    phase = Phase::Detecting;
                    info!("detecting");
                }
                if last_sweep.elapsed() >= cfg.sweep_every {
                    last_sweep = Instant::now();
                    match dp.sweep_pending(monotonic_ns(), timeout_ns) {
                        Ok(n) if n > 0 => tracing::debug!("swept {n} stale pre-filter entries"),
                        Ok(_) => {}
                        Err(e) => warn!("sweeping the kernel pre-filter table: {e:#}"),
                    }
                    kernel_pending = Some(dp.pending_stats().entries as usize);
                    if cfg.metrics.is_some() {
                        let snap = snapshot(&dp, reader.get_mut().bad_items, &engine, base, alerts_sent, &phase, kernel_pending, whitelist_entries)?;
                        metrics::publish(&snap);
                    }
                }
                if let Some(every) = cfg.summary_every
                    && last_summary.elapsed() >= every
                {
                    last_summary = Instant::now();
                    let snap = snapshot(&dp, reader.get_mut().bad_items, &engine, base, alerts_sent, &phase, kernel_pending, whitelist_entries)?;
                    info!("summary: {snap}");
                }
                dp.flush_kernel_log();
            }
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = &mut stop_sleep => break "--for elapsed",
        }
        if matches!(phase, Phase::Learning { .. }) {
            // R4.1: the learning period raises no alerts (it has no detectors).
            alerts.clear();
        }
        for a in alerts.drain(..) {
            sink.send(&a)?;
            alerts_sent += 1;
            info!(
                "ALERT {} {}: {} failed pairs > threshold {} ({} hosts, {} ports)",
                a.source,
                shape_name(&a),
                a.failed_pairs,
                a.threshold,
                a.distinct_hosts,
                a.distinct_ports
            );
        }
        // After the alerts the engine decided are sent, so that a restart
        // from this checkpoint neither repeats nor loses one.
        if let (Some(c), Phase::Detecting) = (&mut checkpointer, &phase)
            && c.due()
        {
            c.start(engine.checkpoint()).await;
        }
    };
    info!("stopping ({stop_reason})");

    // Records still in the ring, then time up to now; attempts still within
    // their handshake timeout stay undecided (they are not failures yet).
    reader.get_mut().drain(&mut recs);
    feed(&mut engine, &mut recs, &mut alerts);
    engine.advance_to(engine_now_ns(), &mut alerts);
    if matches!(phase, Phase::Detecting) {
        for a in alerts.drain(..) {
            sink.send(&a)?;
            alerts_sent += 1;
        }
    }
    // After the alerts it decided are sent: a restart never repeats them.
    if let (Some(c), Phase::Detecting) = (&mut checkpointer, &phase) {
        let st = engine.checkpoint();
        match c.finish(&st).await {
            Ok(n) => info!(
                "engine state saved to {} ({} sources, {} pending attempts, {n} bytes)",
                c.path.display(),
                st.sources.len(),
                st.pending.len()
            ),
            Err(e) => tracing::error!("saving the engine state at exit: {e:#}"),
        }
    }
    let snap = snapshot(
        &dp,
        reader.get_mut().bad_items,
        &engine,
        base,
        alerts_sent,
        &phase,
        dp.pending_len().ok(),
        whitelist_entries,
    )?;
    if cfg.metrics.is_some() {
        metrics::publish(&snap);
    }
    dp.detach().context("detaching the XDP program")?;
    info!("detached from {}", cfg.iface);
    Ok(Summary {
        iface: cfg.iface.clone(),
        ran_for: start.elapsed(),
        stop_reason,
        snapshot: snap,
        report: engine.report(),
        learned,
    })
}

fn shape_name(a: &Alert) -> &'static str {
    match a.shape {
        crate::engine::Shape::Horizontal => "horizontal",
        crate::engine::Shape::Vertical => "vertical",
        crate::engine::Shape::Mixed => "mixed",
    }
}

/// R4.6: the ignore list into the kernel maps; from the next frame on, its
/// sources' traffic produces no record.
pub fn load_ignore_into_kernel(
    dp: &mut DataPlane,
    list: &crate::ignore::IgnoreList,
) -> anyhow::Result<()> {
    dp.ignore()?
        .load(list)
        .context("loading the ignore list into the kernel")?;
    info!(
        "{} ignored source prefixes loaded into the kernel map (R4.6)",
        list.len()
    );
    Ok(())
}

fn load_into_kernel(dp: &mut DataPlane, wl: &Whitelist) -> anyhow::Result<()> {
    let mut map = dp.whitelist()?;
    for k in wl.sorted_keys() {
        map.insert(k)
            .with_context(|| format!("whitelisting {}:{}", ip_of(&k), k.port))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn snapshot(
    dp: &DataPlane,
    bad_items: u64,
    engine: &Engine,
    base: EngineStats,
    alerts_sent: u64,
    phase: &Phase,
    kernel_pending: Option<usize>,
    whitelist_entries: usize,
) -> anyhow::Result<Snapshot> {
    let mem = engine.memory_usage();
    Ok(Snapshot {
        kernel: dp.counters().context("reading the kernel counters")?,
        bad_items,
        engine: add_stats(base, engine.stats()),
        alerts_sent,
        memory_bytes: mem.pending_bytes + mem.source_bytes,
        learning: matches!(phase, Phase::Learning { .. }),
        kernel_pending,
        kernel_forgotten: dp.pending_stats().forgotten,
        whitelist_entries,
    })
}

/// Counters of two engine phases added up; gauges are `b`'s.
fn add_stats(a: EngineStats, b: EngineStats) -> EngineStats {
    EngineStats {
        records: a.records + b.records,
        whitelisted_records: a.whitelisted_records + b.whitelisted_records,
        ignored_records: a.ignored_records + b.ignored_records,
        attempts: a.attempts + b.attempts,
        established: a.established + b.established,
        failed: a.failed + b.failed,
        outage_failures: a.outage_failures + b.outage_failures,
        untracked: a.untracked + b.untracked,
        retransmissions: a.retransmissions + b.retransmissions,
        evicted_pending: a.evicted_pending + b.evicted_pending,
        evicted_sources: a.evicted_sources + b.evicted_sources,
        expired_sources: a.expired_sources + b.expired_sources,
        evicted_services: a.evicted_services + b.evicted_services,
        alerts: a.alerts + b.alerts,
        alerts_suppressed: a.alerts_suppressed + b.alerts_suppressed,
        ..b
    }
}
