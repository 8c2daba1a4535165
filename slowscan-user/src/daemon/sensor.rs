//! The [`Sensor`]: everything a running `slowscan run` holds, started in
//! one place, driven by one loop that dispatches each event to a handler
//! (`handlers.rs`), and stopped by one clean shutdown whatever ended it.
use std::time::{Duration, Instant};

use anyhow::Context;
use slowscan_common::PacketRecord;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{info, warn};

use super::{
    DaemonConfig, ENGINE_CLOCK_BIAS_NS, Summary,
    alerts::AlertPath,
    checkpoint::Checkpointer,
    drop_capabilities,
    fleet_link::FleetLink,
    housekeeping::Housekeeper,
    iface::IfaceWatch,
    learning, log_restored, metrics,
    reader::RecordFeed,
    runtime,
    signals::{self, Sig},
    wall_clock_offset_ns,
};
use crate::{
    engine::{Alert, Engine, EngineConfig, EngineState, EngineStats, SECOND_NS, Whitelist},
    kernel::{DataPlane, ProgramOptions, remove_pins},
};

/// How often metrics are published.
pub(super) const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// The loop's tick: time advances (R5.1), retries and checks run.
const TICK: Duration = Duration::from_millis(250);

pub(super) enum Phase {
    Learning { started: Instant, until: Instant },
    Detecting,
}

/// What a handler tells the loop.
pub(super) enum Flow {
    Continue,
    Stop(String),
}

/// Removes the pins and the runtime file (the `DataPlane`'s drop detaches)
/// however the sensor stops.
struct PinGuard(String);

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Err(e) = remove_pins(&self.0) {
            warn!("{e:#}");
        }
        runtime::remove(&self.0);
    }
}

pub struct Sensor {
    pub(super) cfg: DaemonConfig,
    pub(super) started: Instant,
    // Field order is drop order: threads stop before the maps go.
    pub(super) feed: RecordFeed,
    pub(super) housekeeper: Housekeeper,
    pub(super) dp: DataPlane,
    _pins: PinGuard,
    pub(super) iface: IfaceWatch,
    pub(super) engine: Engine,
    pub(super) phase: Phase,
    pub(super) alerts: AlertPath,
    /// Alerts the engine decided, not yet sent.
    pub(super) decided: Vec<Alert>,
    pub(super) checkpointer: Option<Checkpointer>,
    /// The restored state, until detection starts.
    pub(super) saved: Option<EngineState>,
    /// Engine totals of the learning phase.
    pub(super) base: EngineStats,
    /// The `--whitelist` file's entries as last read.
    pub(super) file_whitelist: Whitelist,
    /// Learned this run (R4.1), kept in the kernel map across rereads.
    pub(super) learned: Option<Whitelist>,
    pub(super) whitelist_entries: usize,
    pub(super) learning_interrupted: Option<String>,
    signals: UnboundedReceiver<Sig>,
    /// `slowscan status` / `explain` (None if it could not be bound).
    control: Option<super::control::ControlServer>,
    /// With `--fleet`: the shared counts' client, and the local alerts
    /// held until the store has counted their source's failures (then the
    /// crossing is the fleet's) or cannot (then they are written, scope
    /// "sensor").
    pub(super) fleet: Option<FleetLink>,
    /// Failures counted while learning (none is shared).
    pub(super) failures: Vec<crate::engine::CountedFailure>,
    pub(super) last_publish: Instant,
    pub(super) last_summary: Instant,
}

impl Sensor {
    /// Opens the alert sink, loads and attaches the program, pins its maps,
    /// loads the whitelist and ignore list, drops capabilities, starts the
    /// reader and sweep threads and the first engine.
    pub async fn start(
        mut cfg: DaemonConfig,
        mut saved: Option<EngineState>,
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        // Signals since `install` (before this start) wait in the channel.
        let signals = signals::listen()?;
        let new_alerts_file = super::sink::NewAlertsFile::before_open(&cfg.alerts);
        let alerts = AlertPath::open(
            &cfg.alerts,
            crate::engine::Observer {
                name: cfg.sensor_name.clone(),
                interface: Some(cfg.iface.clone()),
            },
        )?;
        if let Some(addr) = cfg.metrics {
            metrics::install(addr)?;
            info!("metrics on http://{addr}/metrics");
        }
        let mut dp = signals::held(|| {
            DataPlane::load(ProgramOptions {
                prefilter: true,
                mirror: cfg.mirror,
                whitelist_max: cfg.whitelist_max,
                pending_max: cfg.pending_max,
                ring_bytes: cfg.ring_bytes,
            })
        })?;
        info!(
            "kernel pending table: {} entries (--kernel-pending-max): under a flood of R new \
             attempts/s a handshake is recognised if it completes within {} / R s",
            dp.pending_capacity(),
            dp.pending_capacity()
        );
        ::metrics::gauge!("slowscan_kernel_pending_capacity").set(f64::from(dp.pending_capacity()));
        dp.attach(&cfg.iface, cfg.attach)?;
        let addrs = super::addresses_of(&cfg.iface);
        if cfg.mirror && !addrs.is_empty() {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            warn!(
                "--mirror on {}, which has addresses ({}): every frame is dropped after \
                 inspection, so this host receives nothing on it; use --mirror only on a \
                 dedicated mirror/SPAN port",
                cfg.iface,
                list.join(", ")
            );
        }
        let pins = PinGuard(cfg.iface.clone());
        match dp.pin(&cfg.iface) {
            Ok(dir) => info!(
                "maps pinned in {} (for `slowscan whitelist … --iface {}`)",
                dir.display(),
                cfg.iface
            ),
            Err(e) => {
                warn!("maps not pinned, `slowscan whitelist` cannot reach this sensor: {e:#}")
            }
        }
        let file_whitelist = cfg.engine.whitelist.clone().unwrap_or_default();
        if !file_whitelist.is_empty() {
            learning::load_into_kernel(&mut dp, &file_whitelist).with_context(|| {
                format!(
                    "loading the whitelist {} into the kernel",
                    cfg.whitelist_file
                        .as_ref()
                        .map_or_else(|| "?".into(), |p| p.display().to_string())
                )
            })?;
            info!(
                "{} whitelist entries loaded into the kernel map",
                file_whitelist.len()
            );
        }
        if let Some(list) = &cfg.ignore {
            dp.ignore()?
                .load(list)
                .context("loading the ignore list into the kernel")?;
            info!(
                "{} ignored source prefixes loaded into the kernel map (R4.6)",
                list.len()
            );
        }
        if let Err(e) = runtime::write(
            &cfg.iface,
            cfg.whitelist_file.as_deref(),
            cfg.ignore_file.as_deref(),
        ) {
            warn!("`slowscan whitelist`/`ignore` cannot reach this sensor: {e:#}");
        }
        // Attached, pinned, lists loaded: keep only what running, detaching
        // and reattaching still need.
        match drop_capabilities() {
            Ok(kept) => info!("capabilities dropped; kept {kept}"),
            Err(e) => warn!("could not drop capabilities: {e}"),
        }
        let feed = RecordFeed::start(dp.take_records()?)?;
        let timeout_ns = cfg.engine.handshake_timeout_ns;
        let housekeeper = Housekeeper::start(dp.take_sweeper()?, cfg.sweep_every, timeout_ns)?;
        let iface = IfaceWatch::new(&cfg.iface, cfg.attach);

        cfg.engine.wall_clock_offset_ns = wall_clock_offset_ns() - ENGINE_CLOCK_BIAS_NS as i64;
        let (engine, phase) = match cfg.learn_for {
            Some(d) => {
                info!(
                    "learning the whitelist for {} s (R4.1), then {}; what is learned is saved \
                     to {} (also if stopped early)",
                    d.as_secs(),
                    if cfg.learn_only {
                        "stopping"
                    } else {
                        "detecting"
                    },
                    cfg.learn_out
                        .as_ref()
                        .map_or_else(|| "?".into(), |p| p.display().to_string())
                );
                let learn_cfg = EngineConfig {
                    detectors: Vec::new(),
                    learn: Some(cfg.learn.clone()),
                    report: false,
                    whitelist: None,
                    ignore: None,
                    ..cfg.engine.clone()
                };
                let now = Instant::now();
                (
                    Engine::new(learn_cfg),
                    Phase::Learning {
                        started: now,
                        until: now + d,
                    },
                )
            }
            None => (detection_engine(&cfg, &mut saved), Phase::Detecting),
        };
        let mut checkpointer = cfg
            .state
            .clone()
            .map(|path| Checkpointer::new(path, cfg.checkpoint_every, started));
        if let (Some(c), Phase::Detecting) = (&mut checkpointer, &phase) {
            // At once, so a path that cannot be written shows at start. It
            // is no reason not to detect (a full disk, a directory not yet
            // writable, a read-only mount may be fixed while the sensor
            // runs): the checkpointer has logged it and retries, and
            // slowscan_checkpoint_age_seconds grows meanwhile.
            if let Ok(n) = c.write_now(&engine.checkpoint()).await {
                info!(
                    "engine state checkpointed to {} every {} s and at exit ({n} bytes)",
                    c.path.display(),
                    c.every.as_secs_f64()
                );
            }
        }
        let control = match super::control::ControlServer::bind(&cfg.iface) {
            Ok(c) => {
                info!(
                    "control socket {} (for `slowscan status|explain --iface {}`)",
                    c.path().display(),
                    cfg.iface
                );
                Some(c)
            }
            Err(e) => {
                warn!("`slowscan status` cannot reach this sensor: {e:#}");
                None
            }
        };
        let fleet = cfg.fleet.clone().map(FleetLink::start).transpose()?;
        let whitelist_entries = file_whitelist.len();
        new_alerts_file.keep();
        let s = Self {
            started,
            feed,
            housekeeper,
            dp,
            _pins: pins,
            iface,
            engine,
            phase,
            alerts,
            decided: Vec::new(),
            checkpointer,
            saved,
            base: EngineStats::default(),
            file_whitelist,
            learned: None,
            whitelist_entries,
            learning_interrupted: None,
            signals,
            control,
            fleet,
            failures: Vec::new(),
            last_publish: Instant::now(),
            last_summary: Instant::now(),
            cfg,
        };
        if matches!(s.phase, Phase::Detecting) {
            s.log_detecting();
        }
        Ok(s)
    }

    pub(super) fn log_detecting(&self) {
        let e = &self.cfg.engine;
        let detectors: Vec<String> = e.detectors.iter().map(|d| d.name()).collect();
        let mode = e.detectors.first().map_or("sliding", |d| d.window.mode());
        info!(
            "detecting on {}: detectors {} ({mode}; service map {}); handshake timeout {} s; alerts to {}",
            self.cfg.iface,
            detectors.join(", "),
            match &e.services {
                Some(s) => crate::engine::duration_label(s.memory_ns),
                None => "off".into(),
            },
            e.handshake_timeout_ns / SECOND_NS,
            self.alerts.describe()
        );
        info!("identities (R9): {}", identities_label(&e.identity));
    }

    /// The loop: one event at a time, each to its handler, until a handler
    /// says stop; then the clean shutdown.
    pub async fn run(mut self) -> anyhow::Result<Summary> {
        let stop_at = self.cfg.run_for.map(|d| tokio::time::Instant::now() + d);
        let run_for = async move {
            match stop_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(run_for);
        if let Some(name) = signals::stop_received() {
            // It waits in the signal channel: the loop's first turns take it.
            info!("{name} arrived while starting: stopping cleanly");
        }
        // Attempts fail on time alone (R5.1): the tick bounds how late an
        // alert comes beyond the handshake timeout on a quiet link.
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // A handler's error (a learned whitelist that cannot be written or
        // does not fit the kernel map) stops the sensor through the clean
        // shutdown, then is returned.
        let mut failure = None;
        let reason = loop {
            let flow = tokio::select! {
                batch = self.feed.next() => match batch {
                    Some(b) => { self.on_records(b); Ok(Flow::Continue) }
                    None => Ok(Flow::Stop("the ring reader stopped".into())),
                },
                _ = tick.tick() => self.on_tick().await,
                Some(sig) = self.signals.recv() => self.on_signal(sig).await,
                Some(conn) = accept(&self.control) => { self.on_control(conn).await; Ok(Flow::Continue) }
                _ = &mut run_for => Ok(Flow::Stop("--for elapsed".into())),
            };
            let flow = flow.unwrap_or_else(|e| {
                let reason = Flow::Stop(format!("error: {e}"));
                failure = Some(e);
                reason
            });
            self.send_decided();
            if let Flow::Stop(reason) = flow {
                break reason;
            }
            self.checkpoint_if_due();
        };
        let (summary, late) = self.shutdown(reason, failure.is_some()).await?;
        match failure.or(late) {
            Some(e) => {
                eprint!("{summary}");
                Err(e)
            }
            None => Ok(summary),
        }
    }

    /// Records into the engine, in its time base.
    pub(super) fn feed_engine(&mut self, mut recs: Vec<PacketRecord>) {
        for r in recs.iter_mut() {
            r.ts_ns = r.ts_ns.wrapping_add(ENGINE_CLOCK_BIAS_NS);
        }
        self.engine.process_batch(&recs, &mut self.decided);
    }

    /// Every record read so far into the engine, then time up to the
    /// reader's watermark.
    pub(super) fn catch_up(&mut self) {
        let mark = self.feed.watermark_ns();
        while let Some(b) = self.feed.try_next() {
            self.feed_engine(b);
        }
        self.engine
            .advance_to(mark + ENGINE_CLOCK_BIAS_NS, &mut self.decided);
    }

    /// The alerts the engine decided, down the one alert path (R4.1: none
    /// while learning).
    pub(super) fn send_decided(&mut self) {
        if matches!(self.phase, Phase::Learning { .. }) {
            self.decided.clear();
            self.engine.drain_failures(&mut self.failures);
            self.failures.clear();
            return;
        }
        if let Some(f) = &mut self.fleet {
            // The fleet counts this sensor's failures too: a crossing the
            // store counted is the fleet's to claim, once fleet-wide; one
            // it could not count, this sensor's own counts decide.
            f.exchange(&mut self.engine, &mut self.decided, &mut self.alerts);
        }
        for a in self.decided.drain(..) {
            self.alerts.send(&a);
        }
    }

    /// After the alerts the engine decided are sent, so that a restart from
    /// this checkpoint neither repeats nor loses one.
    fn checkpoint_if_due(&mut self) {
        if let (Some(c), Phase::Detecting) = (&mut self.checkpointer, &self.phase)
            && c.due()
        {
            c.start(self.engine.checkpoint());
        }
    }

    /// Records still in the ring, time up to now, what learning cut short
    /// learned (unless `failed`: the error that stopped the sensor is
    /// learning's own), the last alerts and checkpoint, detach. Attempts
    /// still within their handshake timeout stay undecided (they are not
    /// failures yet). Returns with the summary the error of writing what
    /// was learned, if it failed.
    async fn shutdown(
        mut self,
        reason: String,
        failed: bool,
    ) -> anyhow::Result<(Summary, Option<anyhow::Error>)> {
        info!("stopping ({reason})");
        self.feed.stop();
        while let Some(b) = self.feed.next().await {
            self.feed_engine(b);
        }
        self.catch_up();
        let mut late = None;
        // `learned` is set once learning's result is written.
        if matches!(self.phase, Phase::Learning { .. }) && self.learned.is_none() && !failed {
            late = self.on_learning_done(Some(&reason)).err();
        }
        self.send_decided();
        if let Some(f) = self.fleet.take() {
            // What was counted goes to the store before the sensor goes;
            // the crossings it claims are written like the others.
            f.leave(&mut self.engine, &mut self.decided, &mut self.alerts);
            for a in self.decided.drain(..) {
                self.alerts.send(&a);
            }
        }
        self.alerts.finish();
        // After the alerts it decided are sent: a restart never repeats them.
        if let (Some(c), Phase::Detecting) = (&mut self.checkpointer, &self.phase) {
            let st = self.engine.checkpoint();
            match c.write_now(&st).await {
                Ok(n) => info!(
                    "engine state saved to {} ({}, {}, {n} bytes)",
                    c.path.display(),
                    crate::count(st.sources.len() as u64, "source"),
                    crate::count(st.pending.len() as u64, "pending attempt")
                ),
                Err(e) => tracing::error!("saving the engine state at exit: {e:#}"),
            }
        }
        let snap = self.snapshot()?;
        if self.cfg.metrics.is_some() {
            metrics::publish(&snap);
        }
        self.dp.detach().context("detaching the XDP program")?;
        info!("detached from {}", self.cfg.iface);
        let summary = Summary {
            iface: self.cfg.iface.clone(),
            ran_for: self.started.elapsed(),
            stop_reason: reason,
            snapshot: snap,
            report: self.engine.report(),
            learned: self.learned.as_ref().map(Whitelist::len),
            learning_interrupted: self.learning_interrupted.take(),
        };
        Ok((summary, late))
    }
}

/// The detection engine's configuration: `cfg`'s without the whitelist
/// and ignore list, which live in the kernel maps (see below).
pub(super) fn detection_engine_config(cfg: &DaemonConfig) -> EngineConfig {
    EngineConfig {
        whitelist: None,
        ignore: None,
        ..cfg.engine.clone()
    }
}

/// The detection engine: restored from `saved` if there is one. Live, the
/// kernel maps are the whitelist and the ignore list (R4.4, R4.6): a copy
/// in the engine would keep ignoring what `slowscan whitelist remove` or
/// `slowscan ignore remove` gave back.
pub(super) fn detection_engine(cfg: &DaemonConfig, saved: &mut Option<EngineState>) -> Engine {
    let ecfg = detection_engine_config(cfg);
    let Some(state) = saved.take() else {
        return Engine::new(ecfg);
    };
    let (engine, r) = Engine::restore(ecfg, state, super::engine_now_ns());
    log_restored(&r, cfg.state.as_ref());
    engine
}

/// The next control connection, or never without a control socket.
async fn accept(control: &Option<super::control::ControlServer>) -> Option<tokio::net::UnixStream> {
    match control {
        Some(c) => match c.accept().await {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("control socket: {e}");
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// R9 as configured, for the log and `slowscan status`.
pub fn identities_label(c: &crate::engine::IdentityConfig) -> String {
    if !c.macs && c.outside_v6 == 128 && c.outside_v4 == 32 {
        return "per address (--count-by addresses)".into();
    }
    let nets: Vec<String> = c.home_nets.prefixes().map(|p| p.to_string()).collect();
    format!(
        "hosts on the segment by MAC; home networks {}; outside sources by prefix {}",
        nets.join(","),
        c.outside_label()
    )
}
